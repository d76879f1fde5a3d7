import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import type { Readable } from 'node:stream';
import { HotspareError } from '../core/errors.js';
import { spawnTool } from '../platform/tool-process.js';

/** The client's packet limit for restore and replay: a large BLOB row is one statement. */
const CLIENT_MAX_ALLOWED_PACKET = '1G';

/**
 * One `mariadb` client process fed on stdin (the server's own tool, as an operator would run
 * it by hand). Credentials come from a defaults file, never the command line.
 */
export class MariadbClient {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #exited: Promise<number | null>;
  readonly #stderr: () => string;

  /**
   * `force`: a failed statement does not end the session (`--force`); finishTolerant() then
   * returns what the client printed instead of failing.
   */
  constructor(defaultsFile: string, readonly what: string, options: { initCommand?: string; force?: boolean } = {}) {
    const init = options.initCommand === undefined ? [] : [`--init-command=${options.initCommand}`];
    const force = options.force === true ? ['--force'] : [];
    const tool = spawnTool('mariadb', [`--defaults-file=${defaultsFile}`, '--binary-mode', `--max-allowed-packet=${CLIENT_MAX_ALLOWED_PACKET}`, '--batch', ...force, ...init], 'pipe');
    this.#child = tool.child;
    this.#exited = tool.exited;
    this.#stderr = tool.stderr;
    this.#child.stdout.resume();
    this.#child.stdin.on('error', () => undefined);
  }

  /** The client has exited (a failed statement ends it). */
  get exited(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null;
  }

  /** Copies a stream into the client's stdin (without ending it); `onBytes` sees each chunk's size. */
  async feed(source: Readable | AsyncIterable<Buffer>, onBytes?: (bytes: number) => void): Promise<void> {
    const stdin = this.#child.stdin;
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (this.exited) break;
      onBytes?.(chunk.length);
      // A client that died meanwhile fails the write (EPIPE): the copy ends, and finish() says
      // what the client said.
      if (!stdin.write(chunk)) await Promise.race([once(stdin, 'drain'), this.#exited]).catch(() => undefined);
    }
  }

  /** Ends stdin and waits for the exit code. */
  async #end(): Promise<number | null> {
    this.#child.stdin.end();
    try {
      return await this.#exited;
    } catch (err) {
      throw new HotspareError('TOOL_MISSING', `cannot run mariadb: ${String(err)}`, { hint: 'install the MariaDB client tools on the standby' });
    }
  }

  /** Ends stdin and waits; returns the client's error output (empty when every statement ran). */
  async finishTolerant(): Promise<string> {
    await this.#end();
    return this.#stderr().trim();
  }

  /** Ends stdin and waits; throws RESTORE_FAILED with the client's message when it failed. */
  async finish(): Promise<void> {
    const code = await this.#end();
    if (code !== 0) {
      const said = this.#stderr().trim();
      throw new HotspareError('RESTORE_FAILED', `${this.what}: mariadb exited with ${code}: ${shortened(said)}`, { hint: restoreFailedHint(said) });
    }
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }
}

/** Server errors a restore meets for want of a privilege (the promote user's grant). */
const PRIVILEGE_ERRORS = /\bERROR (1044|1045|1142|1143|1227|1410|1698)\b/;
/** CREATE USER (or ROLE) of an account that exists: ER_CANNOT_USER. */
const ACCOUNT_EXISTS = /\bERROR 1396\b/;

/**
 * The hint for a client that failed, by what the server said: the two an operator meets first
 * (a promote user without GRANT OPTION; the accounts a failed attempt left, which --replace does
 * not drop) say what to do, instead of "fix the cause".
 */
export function restoreFailedHint(said: string): string {
  const again = 'then run promote again with --replace';
  if (PRIVILEGE_ERRORS.test(said)) {
    return `the promote user lacks a privilege the restore needs (the archive's GRANTs need GRANT OPTION): on the standby, GRANT ALL PRIVILEGES ON *.* TO that user WITH GRANT OPTION, ${again}`;
  }
  if (ACCOUNT_EXISTS.test(said)) {
    return `an account the archive creates exists on the target already, often left by an earlier promotion attempt (--replace drops databases, not accounts): DROP USER it on the standby, ${again}`;
  }
  return `the target is partly restored; fix the cause and ${again}`;
}

/** Of the client's output, a message shows this much at most: its ERROR lines first. */
const SAID_CHARS_MAX = 2_000;

/**
 * The client's output for a message: with --force it echoes each failed statement whole (a
 * row of a 72 KB base line, say) before its ERROR line, which then sat at the end of a line of
 * 72 KB on stderr. The ERROR lines come first, then what is left of the rest, cut short.
 */
export function shortened(said: string): string {
  if (said.length <= SAID_CHARS_MAX) return said;
  const lines = said.split('\n');
  const errors = lines.filter((l) => /^ERROR \d+/.test(l));
  const rest = lines.filter((l) => !/^ERROR \d+/.test(l)).join('\n');
  const head = errors.join('\n').slice(0, SAID_CHARS_MAX);
  const room = Math.max(0, SAID_CHARS_MAX - head.length);
  return `${head}${room > 0 ? `\n${rest.slice(0, room)}` : ''} ... (${said.length} characters in all)`;
}
