import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { DEFAULT_HOOK_TIMEOUT_SECONDS, HOOK_TIMEOUT_SECONDS_MAX } from '../config/defaults.js';
import type { Logger } from '../platform/logger.js';
import { listSpoolSources } from './spool-restore.js';
import { shellWord } from '../core/shell-word.js';
import { childLogger } from '../platform/logger.js';

export interface RestorePoint {
  /**
   * The promotion's point (ms since the epoch), the instant the database and the files were both
   * restored as of: `--until`'s, to the end of its second; for `--until-gtid`/`--until-position`,
   * the end of the last applied commit's second; to the end, the latest of the last commit and
   * every restored source's newest change (the files may hold a change newer than the last
   * commit: the point is then after that commit, or the restored state would not be the
   * primary's as of the point).
   */
  timeMs: number;
  /** Commit time of the last transaction applied (ms since the epoch), when there is one. */
  commitTimeMs?: number | undefined;
  /** Last applied binlog position and GTID, when promotion has them. */
  file?: string | undefined;
  position?: number | undefined;
  gtid?: string | undefined;
}

/**
 * How a hook reaches the promoted server without credentials of its own in its command: the
 * --target URL and its parts, never its password (the hook authenticates with its own client
 * defaults, e.g. ~/.my.cnf of the user promote runs as).
 */
export interface HookTarget {
  /** The --target URL as given, without its password. */
  url: string;
  user: string;
  host?: string | undefined;
  port?: number | undefined;
  socketPath?: string | undefined;
}

export interface HookResult {
  source: string;
  run: string;
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  /**
   * The HOTSPARE_* variables it ran with (no password among them), so that a failed hook can be
   * run again by hand as it ran (hookCommandLine).
   */
  env: Record<string, string>;
}

/** How much of a hook's output goes into the log. */
const HOOK_OUTPUT_LOG_BYTES_MAX = 16 * 1024;
/** After a hook exits, its last output still in the pipes is read for this long at most. */
const HOOK_OUTPUT_DRAIN_MS = 200;

/**
 * Runs the post-promotion hooks recorded with each spool source (`spool[].hooks` in the
 * agent's config, stored in files/<source>/source.json), in source order, each through
 * `/bin/sh -c` with the restore point, the source and the target in its environment
 * (hookEnvironment; README, Spool directories, lists each variable). A failing hook is logged
 * and reported; the next ones still run (each hook is one service's business).
 */
export async function runPromotionHooks(options: {
  archiveDir: string;
  restorePoint: RestorePoint;
  filesRoot?: string | undefined;
  /** The promoted server (absent: no HOTSPARE_TARGET* variables). */
  target?: HookTarget | undefined;
  /** Sources left as they were on the target (not restored): their hooks see HOTSPARE_SOURCE_RESTORED=0. */
  notRestored?: ReadonlySet<string>;
  logger: Logger;
}): Promise<HookResult[]> {
  const results: HookResult[] = [];
  const point = options.restorePoint;
  for (const meta of await listSpoolSources(options.archiveDir)) {
    for (const hook of meta.hooks) {
      const log = childLogger(options.logger, { component: 'promotion-hook', source: meta.name });
      const hotspareEnv = hookEnvironment({
        restorePoint: point,
        source: meta.name,
        restored: options.notRestored?.has(meta.name) !== true,
        sourcePath: options.filesRoot === undefined ? meta.path : join(options.filesRoot, meta.name),
        archiveDir: options.archiveDir,
        target: options.target,
      });
      const env: NodeJS.ProcessEnv = { ...process.env, ...hotspareEnv };
      // A source.json from the archive is not the config: its timeout is bounded here too (a
      // missing or huge one would make the timer fire at once and kill the hook at its start).
      const timeoutS = Number.isFinite(hook.timeoutSeconds) && hook.timeoutSeconds > 0 ? Math.min(hook.timeoutSeconds, HOOK_TIMEOUT_SECONDS_MAX) : DEFAULT_HOOK_TIMEOUT_SECONDS;
      const result = await runOne(hook.run, timeoutS * 1000, env);
      const entry: HookResult = { source: meta.name, run: hook.run, exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, env: hotspareEnv };
      const fields = { run: hook.run, exitCode: result.exitCode, signal: result.signal, output: result.output };
      if (result.exitCode === 0) log.info(fields, 'post-promotion hook succeeded');
      else {
        log.error(
          { ...fields, env: hotspareEnv, code: 'HOOK_FAILED', hint: `once the cause is fixed, run it by hand as it ran: ${hookCommandLine(entry)}` },
          result.timedOut ? `post-promotion hook timed out after ${timeoutS} s` : 'post-promotion hook failed',
        );
      }
      results.push(entry);
    }
  }
  return results;
}

/**
 * The HOTSPARE_* variables a hook gets. Paths are absolute: a hook may change its folder, and
 * promote's own folder (where a relative --archive or --files-root was meant) is not the hook's
 * business. The target's password is never among them.
 */
export function hookEnvironment(options: {
  restorePoint: RestorePoint;
  source: string;
  restored: boolean;
  sourcePath: string;
  archiveDir: string;
  target?: HookTarget | undefined;
}): Record<string, string> {
  const point = options.restorePoint;
  const target = options.target;
  return {
    HOTSPARE_RESTORE_POINT_TIME: new Date(point.timeMs).toISOString(),
    HOTSPARE_RESTORE_POINT_MS: String(point.timeMs),
    HOTSPARE_RESTORE_POINT_COMMIT_TIME: point.commitTimeMs === undefined ? '' : new Date(point.commitTimeMs).toISOString(),
    HOTSPARE_RESTORE_POINT_FILE: point.file ?? '',
    HOTSPARE_RESTORE_POINT_POSITION: point.position === undefined ? '' : String(point.position),
    HOTSPARE_RESTORE_POINT_GTID: point.gtid ?? '',
    HOTSPARE_SOURCE_NAME: options.source,
    HOTSPARE_SOURCE_RESTORED: options.restored ? '1' : '0',
    HOTSPARE_SOURCE_PATH: resolve(options.sourcePath),
    HOTSPARE_ARCHIVE: resolve(options.archiveDir),
    ...(target === undefined
      ? {}
      : {
          HOTSPARE_TARGET: target.url,
          HOTSPARE_TARGET_USER: target.user,
          // A socket is a local server: `localhost` is what the client tools take with --socket.
          HOTSPARE_TARGET_HOST: target.socketPath !== undefined ? 'localhost' : (target.host ?? ''),
          HOTSPARE_TARGET_PORT: target.socketPath !== undefined || target.port === undefined ? '' : String(target.port),
          HOTSPARE_TARGET_SOCKET: target.socketPath ?? '',
        }),
  };
}

/**
 * A command line that runs a hook again as promote ran it, ready to paste into a shell:
 * `env HOTSPARE_...=... /bin/sh -c 'RUN'` (the rest of the environment is the shell's own).
 */
export function hookCommandLine(hook: Pick<HookResult, 'run' | 'env'>): string {
  const assignments = Object.entries(hook.env).map(([name, value]) => shellWord(`${name}=${value}`));
  return ['env', ...assignments, '/bin/sh', '-c', shellWord(hook.run)].join(' ');
}

function runOne(command: string, timeoutMs: number, env: NodeJS.ProcessEnv): Promise<{ exitCode: number | null; signal: string | null; timedOut: boolean; output: string }> {
  return new Promise((resolve) => {
    // Its own process group: a timeout kills what the hook started too, not only the shell.
    const child = spawn('/bin/sh', ['-c', command], { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let output = '';
    const collect = (chunk: Buffer): void => {
      if (output.length < HOOK_OUTPUT_LOG_BYTES_MAX) output += chunk.toString('utf8').slice(0, HOOK_OUTPUT_LOG_BYTES_MAX - output.length);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    let timedOut = false;
    let settled = false;
    const finish = (result: { exitCode: number | null; signal: string | null; output: string }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unforward();
      // A daemon the hook started in the background may hold the pipes open: its output is not
      // waited for (the hook itself has ended). The pipes are drained without keeping promote
      // alive; closing them would kill it with SIGPIPE at its next write (once promote exits it
      // will be, so a hook that starts a daemon redirects the daemon's output).
      for (const pipe of [child.stdout, child.stderr]) {
        pipe.removeListener('data', collect);
        pipe.resume();
        (pipe as unknown as { unref?: () => void }).unref?.();
      }
      resolve({ ...result, timedOut });
    };
    /** Signals the hook's whole process group; false when it has ended. */
    const signalGroup = (signal: NodeJS.Signals): boolean => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, signal);
        return true;
      } catch {
        return false;
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      if (!signalGroup('SIGKILL')) child.kill('SIGKILL');
    }, timeoutMs);
    // Its own process group no longer gets the terminal's Ctrl-C (or a service manager's
    // SIGTERM to promote): passed on to the group, then promote ends as the signal asks.
    const forward = (signal: NodeJS.Signals): void => {
      signalGroup(signal);
      unforward();
      process.kill(process.pid, signal);
    };
    const unforward = (): void => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
    };
    process.once('SIGINT', forward);
    process.once('SIGTERM', forward);
    child.on('error', (err) => finish({ exitCode: null, signal: null, output: `${output}${err.message}` }));
    // 'close' waits for every holder of the pipes; 'exit' is the hook's own end. The output
    // still in the pipes when it exits gets a moment to arrive.
    child.on('close', (exitCode, signal) => finish({ exitCode, signal, output }));
    child.on('exit', (exitCode, signal) => {
      // Ended in time: the timeout must not kill the group (a daemon the hook started) now.
      clearTimeout(timer);
      setTimeout(() => finish({ exitCode, signal, output }), HOOK_OUTPUT_DRAIN_MS).unref();
    });
  });
}
