import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection, type Connection } from 'mysql2/promise';
import { freePort } from './free-port.js';

const execFileAsync = promisify(execFile);

/** How long a fresh server may take to answer before the harness gives up. */
const SERVER_START_TIMEOUT_MS = 60_000;
const SERVER_STOP_TIMEOUT_MS = 30_000;
const CONNECT_POLL_INTERVAL_MS = 100;

export interface MariadbServerOptions {
  /** Folder that holds the datadir, socket and logs; a new temporary folder when absent. */
  baseDir?: string;
  serverId: number;
  /** Binlog on (ROW, CRC32) for a primary; off for a standby. */
  binlog: boolean;
  /** Extra `--option=value` arguments for mariadbd. */
  extraArgs?: readonly string[];
}

/**
 * A throwaway MariaDB server for tests, the demo and the benchmarks: its own datadir, a
 * private socket, a free port on 127.0.0.1. It only ever stops processes it started itself,
 * and it stops them when the Node process exits, whatever way it exits.
 */
export class MariadbServer {
  readonly baseDir: string;
  readonly datadir: string;
  readonly socketPath: string;
  /**
   * The server's own temporary folder: /tmp is shared with other processes that clean it, and
   * a temporary table that vanished there failed mariadb-install-db and large INSERT ... SELECTs.
   */
  readonly tmpdir: string;
  readonly serverId: number;
  port = 0;
  #process: ChildProcess | undefined;
  /** startCommand was handed out: a server this harness did not spawn itself may run on its datadir. */
  #startedByCommand = false;
  readonly #args: string[];
  /** This run's extra arguments (restart). */
  #runArgs: readonly string[] = [];
  readonly #ownsBaseDir: boolean;

  private constructor(options: MariadbServerOptions) {
    this.#ownsBaseDir = options.baseDir === undefined;
    this.baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), 'hotspare-mariadb-'));
    this.datadir = join(this.baseDir, 'data');
    this.socketPath = join(this.baseDir, 'mysqld.sock');
    this.tmpdir = join(this.baseDir, 'tmp');
    this.serverId = options.serverId;
    this.#args = [
      `--server-id=${options.serverId}`,
      ...(options.binlog
        ? ['--log-bin=mysql-bin', '--binlog-format=ROW', '--binlog-checksum=CRC32', '--binlog-row-metadata=FULL']
        : []),
      ...(options.extraArgs ?? []),
    ];
  }

  /** Creates the datadir and starts the server; resolves once it answers queries. */
  static async start(options: MariadbServerOptions): Promise<MariadbServer> {
    const server = new MariadbServer(options);
    mkdirSync(server.tmpdir, { recursive: true });
    if (!existsSync(join(server.datadir, 'mysql'))) await server.#install();
    server.port = await freePort();
    await server.#launch();
    return server;
  }

  get running(): boolean {
    return this.#childRunning || this.#commandStartedPid() !== undefined;
  }

  get pid(): number | undefined {
    return this.#childRunning ? this.#process?.pid : this.#commandStartedPid();
  }

  get #childRunning(): boolean {
    return this.#process !== undefined && this.#process.exitCode === null && this.#process.signalCode === null;
  }

  /**
   * A shell command that starts this server again, in the background, on the same datadir,
   * socket and port: what `promote --target-start` runs after it stopped the server. Such a
   * server is not this harness's child; it is found by its pid file (in this harness's own
   * folder, and checked against its command line), so stop, destroy and process exit still
   * stop it, and only it. `extraArgs` come last, so they override the server's own (say,
   * `--read-only=OFF` for a standby started with `--read-only=ON`).
   */
  startCommand(options: { extraArgs?: readonly string[] } = {}): string {
    this.#startedByCommand = true;
    liveServers.add(this);
    const quote = (a: string): string => `'${a.replaceAll("'", "'\\''")}'`;
    return `mariadbd ${[...this.#launchArgs(), ...(options.extraArgs ?? [])].map(quote).join(' ')} </dev/null >/dev/null 2>&1 &`;
  }

  /** The pid of a server a startCommand started, when one runs on this datadir. */
  #commandStartedPid(): number | undefined {
    if (!this.#startedByCommand) return undefined;
    let pid: number;
    try {
      pid = Number(readFileSync(this.#pidFile, 'utf8').trim());
      if (!Number.isInteger(pid) || pid <= 0) return undefined;
      // The pid file may be stale and its number reused: only a mariadbd on this datadir is ours.
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      return cmdline.includes(`--datadir=${this.datadir}`) ? pid : undefined;
    } catch {
      return undefined;
    }
  }

  get #pidFile(): string {
    return join(this.baseDir, 'mysqld.pid');
  }

  /** mysql://root@127.0.0.1:PORT, for commands that take a MYSQL_URL. */
  get url(): string {
    return `mysql://root@127.0.0.1:${this.port}`;
  }

  /** A root connection over the private socket. */
  connect(options: { database?: string; multipleStatements?: boolean } = {}): Promise<Connection> {
    return createConnection({
      socketPath: this.socketPath,
      user: 'root',
      ...(options.database !== undefined ? { database: options.database } : {}),
      multipleStatements: options.multipleStatements ?? false,
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
  }

  /** Stops the server cleanly (SIGTERM) and waits for it to exit. */
  async stop(): Promise<void> {
    await this.#signalAndWait('SIGTERM');
  }

  /** Kills the server with SIGKILL, as a crash would. */
  async kill(): Promise<void> {
    await this.#signalAndWait('SIGKILL');
  }

  /**
   * Starts the server again on the same datadir and port; `extraArgs` for this run only, after
   * the server's own (the last of an option wins: `--skip-log-bin`, another `--log-bin=NAME`).
   */
  async restart(options: { extraArgs?: readonly string[] } = {}): Promise<void> {
    if (this.running) await this.stop();
    this.#runArgs = options.extraArgs ?? [];
    await this.#launch();
  }

  /** Stops the server and removes its folder (when the harness created it). */
  async destroy(): Promise<void> {
    await this.stop();
    if (this.#ownsBaseDir) rmSync(this.baseDir, { recursive: true, force: true });
  }

  async #install(): Promise<void> {
    try {
      await execFileAsync('mariadb-install-db', [
        '--no-defaults',
        `--datadir=${this.datadir}`,
        `--tmpdir=${this.tmpdir}`,
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
        `--user=${process.getuid?.() === 0 ? 'root' : (process.env['USER'] ?? 'root')}`,
      ]);
    } catch (err) {
      throw new Error(`mariadb-install-db failed (is mariadb-server installed?): ${(err as Error).message}`);
    }
  }

  #launchArgs(): string[] {
    return [
      '--no-defaults',
      `--datadir=${this.datadir}`,
      `--tmpdir=${this.tmpdir}`,
      `--socket=${this.socketPath}`,
      `--port=${this.port}`,
      '--bind-address=127.0.0.1',
      `--pid-file=${this.#pidFile}`,
      `--log-error=${join(this.baseDir, 'error.log')}`,
      '--skip-name-resolve',
      '--innodb-buffer-pool-size=64M',
      '--innodb-log-file-size=64M',
      '--max-allowed-packet=256M',
      ...(process.getuid?.() === 0 ? ['--user=root'] : []),
      ...this.#args,
      ...this.#runArgs,
    ];
  }

  async #launch(): Promise<void> {
    const child = spawn('mariadbd', this.#launchArgs(), { stdio: 'ignore', detached: false });
    this.#process = child;
    liveServers.add(this);
    child.once('exit', () => {
      if (!this.#startedByCommand) liveServers.delete(this);
    });
    await this.#waitUntilReady(child);
  }

  async #waitUntilReady(child: ChildProcess): Promise<void> {
    const deadline = Date.now() + SERVER_START_TIMEOUT_MS;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`mariadbd exited during start; see ${join(this.baseDir, 'error.log')}`);
      }
      try {
        const conn = await this.connect();
        await conn.end();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`mariadbd did not answer within ${SERVER_START_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, CONNECT_POLL_INTERVAL_MS));
      }
    }
  }

  /** Signals a server that startCommand started (found by its pid file) and waits until it is gone. */
  async #stopCommandStarted(signal: NodeJS.Signals): Promise<void> {
    const pid = this.#commandStartedPid();
    if (pid === undefined) return;
    process.kill(pid, signal);
    const deadline = Date.now() + SERVER_STOP_TIMEOUT_MS;
    while (this.#commandStartedPid() === pid) {
      if (Date.now() > deadline) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, CONNECT_POLL_INTERVAL_MS));
    }
  }

  async #signalAndWait(signal: NodeJS.Signals): Promise<void> {
    await this.#stopCommandStarted(signal);
    const child = this.#process;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), SERVER_STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }
}

/** Servers still running; killed when the process exits so no test leaves one behind. */
const liveServers = new Set<MariadbServer>();
process.once('exit', () => {
  for (const server of liveServers) {
    const pid = server.pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/** Writes a file of `[client]` options so the server's own CLI tools reach a sandbox server. */
export function writeClientDefaults(server: MariadbServer, path: string): void {
  writeFileSync(path, `[client]\nuser=root\nsocket=${server.socketPath}\n`);
}
