import { spawn, type ChildProcessByStdio, type ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Readable } from 'node:stream';

/** Keep at most this much of a tool's stderr, for the error message. */
export const TOOL_STDERR_BYTES_MAX = 4096;

/** A running MariaDB tool: the child, its exit, and the start of what it said on stderr. */
export interface ToolProcess<C> {
  readonly child: C;
  /** The exit code; rejects when the tool could not be started (not installed). */
  readonly exited: Promise<number | null>;
  stderr(): string;
}

/**
 * Spawns a server tool (`mariadb`, `mariadb-dump`, `mariadb-binlog`) with stdout and stderr
 * piped; stderr is kept up to TOOL_STDERR_BYTES_MAX so a failure can say what the tool said.
 */
export function spawnTool(command: string, args: readonly string[], stdin: 'pipe', signal?: AbortSignal): ToolProcess<ChildProcessWithoutNullStreams>;
export function spawnTool(command: string, args: readonly string[], stdin?: 'ignore', signal?: AbortSignal): ToolProcess<ChildProcessByStdio<null, Readable, Readable>>;
/** With `signal`, an abort kills the tool (SIGTERM) and `exited` rejects with an AbortError. */
export function spawnTool(command: string, args: readonly string[], stdin: 'pipe' | 'ignore' = 'ignore', signal?: AbortSignal): ToolProcess<ChildProcessWithoutNullStreams | ChildProcessByStdio<null, Readable, Readable>> {
  const child = spawn(command, args, { stdio: [stdin, 'pipe', 'pipe'], ...(signal === undefined ? {} : { signal }) }) as ChildProcessWithoutNullStreams;
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    if (stderr.length < TOOL_STDERR_BYTES_MAX) stderr += chunk.toString('utf8');
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  // Callers await `exited` after reading the output: an abort (or a missing tool) rejects it at
  // once, turns before that, and unobserved until then it would end the process as unhandled.
  exited.catch(() => undefined);
  return { child, exited, stderr: () => stderr };
}
