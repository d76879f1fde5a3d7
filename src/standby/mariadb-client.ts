import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { HotspareError } from '../core/errors.js';

/** Keep at most this much of a tool's stderr for the error message. */
const TOOL_STDERR_BYTES_MAX = 4096;
/** The client's packet limit for restore and replay: a large BLOB row is one statement. */
const CLIENT_MAX_ALLOWED_PACKET = '1G';

/**
 * One `mariadb` client process fed on stdin (the server's own tool, as an operator would run
 * it by hand). Credentials come from a defaults file, never the command line.
 */
export class MariadbClient {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exited: Promise<number | null>;
  #stderr = '';

  constructor(defaultsFile: string, readonly what: string, options: { initCommand?: string } = {}) {
    const init = options.initCommand === undefined ? [] : [`--init-command=${options.initCommand}`];
    this.#child = spawn('mariadb', [`--defaults-file=${defaultsFile}`, '--binary-mode', `--max-allowed-packet=${CLIENT_MAX_ALLOWED_PACKET}`, '--batch', ...init], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.#child.stdout.resume();
    this.#child.stderr.on('data', (chunk: Buffer) => {
      if (this.#stderr.length < TOOL_STDERR_BYTES_MAX) this.#stderr += chunk.toString('utf8');
    });
    this.#child.stdin.on('error', () => undefined);
    this.#exited = new Promise((resolve, reject) => {
      this.#child.once('error', reject);
      this.#child.once('close', (code) => resolve(code));
    });
  }

  /** Copies a stream into the client's stdin (without ending it); `onBytes` sees each chunk's size. */
  async feed(source: Readable | AsyncIterable<Buffer>, onBytes?: (bytes: number) => void): Promise<void> {
    const stdin = this.#child.stdin;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (this.#child.exitCode !== null) break;
      onBytes?.(chunk.length);
      if (!stdin.write(chunk)) await Promise.race([once(stdin, 'drain'), this.#exited]);
    }
  }

  /** Ends stdin and waits; throws RESTORE_FAILED with the client's message when it failed. */
  async finish(): Promise<void> {
    this.#child.stdin.end();
    let code: number | null;
    try {
      code = await this.#exited;
    } catch (err) {
      throw new HotspareError('TOOL_MISSING', `cannot run mariadb: ${String(err)}`, { hint: 'install the MariaDB client tools on the standby' });
    }
    if (code !== 0) {
      throw new HotspareError('RESTORE_FAILED', `${this.what}: mariadb exited with ${code}: ${this.#stderr.trim()}`, {
        hint: 'the target is partly restored; fix the cause and run promote again with --replace',
      });
    }
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}
