import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { within } from '../../src/platform/within.js';
import { trackChild } from './live-children.js';

const ROOT = new URL('../..', import.meta.url).pathname;
/** How long a hotspare command may take to exit after SIGTERM or SIGINT before a test calls it hung. */
const STOP_TIMEOUT_MS = 30_000;

/** A `hotspare` command run as a child process, with its stderr (JSON log lines) collected. */
export class HotspareProcess {
  readonly child: ChildProcess;
  stderr = '';
  stdout = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly args: string[],
    env: NodeJS.ProcessEnv = {},
  ) {
    this.child = spawn(process.execPath, [join(ROOT, 'bin/hotspare.js'), ...args], {
      cwd: ROOT,
      env: { ...process.env, HOTSPARE_LOG_LEVEL: 'debug', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.child.stdout?.on('data', (chunk: Buffer) => {
      this.stdout += chunk.toString();
    });
    this.exited = exitedWithOutput(this.child);
    trackChild(this.child);
  }

  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[] {
    // Only whole lines: the last may still be arriving.
    return this.stderr
      .split('\n')
      .slice(0, -1)
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /**
   * Sends a signal and waits for the exit. A process still running `withinMs` after a signal
   * other than SIGKILL is killed, and the wait fails with the tail of its log: a command that
   * does not stop is a failure of its own, not a test timeout that says nothing.
   */
  async kill(signal: NodeJS.Signals = 'SIGKILL', withinMs = STOP_TIMEOUT_MS): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.exited;
    this.child.kill(signal);
    if (signal === 'SIGKILL') return this.exited;
    const exited = await within(this.exited, withinMs);
    if (exited !== undefined) return exited.value;
    this.child.kill('SIGKILL');
    await this.exited;
    throw new Error(`hotspare ${this.args.join(' ')} did not exit within ${withinMs} ms of ${signal}; its log ends:\n${this.stderr.slice(-4000)}`);
  }
}

/** Runs a hotspare command to completion. */
export async function runHotspare(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new HotspareProcess(args, env);
  const code = await p.exited;
  return { code, stdout: p.stdout, stderr: p.stderr };
}

/** Writes an agent config for a sandbox primary into `dir` and returns its path. */
export function writeAgentConfig(
  dir: string,
  primary: { port: number },
  replicas: unknown[],
  extra: Record<string, unknown> = {},
): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'agent.json');
  writeFileSync(
    path,
    JSON.stringify(
      {
        primary: { host: '127.0.0.1', port: primary.port, user: 'root', password: '', serverId: 4242 },
        stateDir: join(dir, 'state'),
        replicas,
        ...extra,
      },
      null,
      2,
    ),
  );
  return path;
}

export { waitFor } from './wait.js';

/** How long after 'exit' a child's output streams may take to end before the exit counts anyway. */
const OUTPUT_CLOSE_WAIT_MS = 2_000;

/**
 * The child's exit code once its output has been read to the end: 'exit' may come before the
 * last bytes of stdout and stderr, 'close' after them. A grandchild that inherited the pipes
 * could hold 'close' off, so the exit counts on its own after OUTPUT_CLOSE_WAIT_MS.
 */
export function exitedWithOutput(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    child.once('close', (code) => resolve(code));
    child.once('exit', (code) => setTimeout(() => resolve(code), OUTPUT_CLOSE_WAIT_MS).unref());
  });
}
