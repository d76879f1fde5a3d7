import { spawn } from 'node:child_process';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { access, chmod, lchown, lstat, mkdir, open, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { createGunzip } from 'node:zlib';
import { ArchiveLayout } from '../archive/archive-layout.js';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';
import { DEFAULT_PHYSICAL_BASE_STDERR_BYTES_MAX, DEFAULT_PHYSICAL_EXTRACT_THREADS, DEFAULT_PHYSICAL_SYNC_CONCURRENCY, DEFAULT_TARGET_POLL_INTERVAL_MS, DEFAULT_TARGET_START_TIMEOUT_MS, DEFAULT_TARGET_STOP_TIMEOUT_MS } from '../config/defaults.js';
import { errorMessage, HotspareError } from '../core/errors.js';
import { SYSTEM_SCHEMAS } from '../primary/base/table-inventory.js';
import { checkBaseFiles } from './base-checksums.js';
import { fsyncDir, syncTree } from '../platform/durable-file.js';
import { processAlive } from '../platform/process-alive.js';
import type { Logger } from '../platform/logger.js';
import type { TargetServer } from './target-server.js';
import { extractXbstream } from './xbstream-extract.js';

/**
 * Who extracts an uncompressed stream: hotspare's own reader (xbstream-extract.ts), or
 * `mbstream -x` (`promote --extractor mbstream`, the escape hatch should the reader ever
 * misread a stream). A compressed stream, or one holding a chunk type the reader does not know,
 * always goes to mbstream.
 */
export type StreamExtractor = 'hotspare' | 'mbstream';

/** Everything a promotion from a physical base needs, checked before anything changes. */
export interface PhysicalRestorePlan {
  /** Who extracts the stream (see StreamExtractor). */
  extractor: StreamExtractor;
  /** The target's datadir (as given, resolved). */
  datadir: string;
  /** Shell command that starts the target server again. */
  startCommand: string;
  /** Where the base is extracted and prepared: beside the datadir, so the swap is a rename. */
  staging: string;
  /** Where the target's previous datadir is moved (never deleted). */
  previous: string;
  /** The target server's pid (from its pid file), to know when it has really exited. */
  pid: number;
  /** The target's user databases, all replaced (--replace). */
  userDatabases: string[];
}

const refuse = (code: string, message: string, hint: string): never => {
  throw new HotspareError(code, message, { hint });
};

/**
 * Checks that a physical base can be restored into the target, changing nothing: the datadir
 * and start command are given, the datadir is the target server's own (same host, same
 * @@datadir, a live pid in its pid file), the target holds no user databases unless --replace,
 * and the tools are installed.
 */
export async function planPhysicalRestore(input: {
  base: BaseBackupMetadata;
  server: TargetServer;
  datadir: string | undefined;
  startCommand: string | undefined;
  replace: boolean;
  nowMs: number;
  extractor?: StreamExtractor | undefined;
}): Promise<PhysicalRestorePlan> {
  const { base, server } = input;
  if (input.datadir === undefined || input.startCommand === undefined || input.startCommand.trim() === '') {
    refuse(
      'TARGET_DATADIR_NEEDED',
      `base backup ${base.id} is a physical (mariabackup) base: promote replaces the target's datadir and restarts the server, so it needs --target-datadir DIR and --target-start CMD`,
      'pass --target-datadir (the target server\'s @@datadir) and --target-start (a shell command that starts it again, e.g. "systemctl start mariadb"); or restore by hand (README: restore by hand)',
    );
  }
  const given = input.datadir as string;
  const files = await server.serverFiles();
  if (files.hostname !== hostname()) {
    refuse('TARGET_NOT_LOCAL', `the target ${server.describe} runs on host ${JSON.stringify(files.hostname)}, not on this one (${JSON.stringify(hostname())})`, 'run promote on the target server\'s own host: a physical restore replaces its datadir');
  }
  const resolved = await realpath(given).catch(() => refuse('TARGET_DATADIR_MISMATCH', `--target-datadir ${given} does not exist`, `the target's datadir is ${files.datadir}`));
  const actual = await realpath(files.datadir).catch(() => files.datadir);
  if (resolved !== actual) {
    refuse('TARGET_DATADIR_MISMATCH', `--target-datadir ${given} is not the target's datadir (its @@datadir is ${files.datadir})`, `pass --target-datadir ${files.datadir}`);
  }
  const pidText = await readFile(files.pidFile, 'utf8').catch(() => '');
  const pid = Number(pidText.trim());
  if (!Number.isInteger(pid) || pid <= 0 || !processAlive(pid)) {
    refuse('TARGET_DATADIR_MISMATCH', `the target's pid file ${files.pidFile} names no running process here`, 'run promote on the target server\'s host, as a user that can read its pid file and datadir');
  }
  const userDatabases = (await server.databases()).filter((d) => !SYSTEM_SCHEMAS.includes(d));
  // An empty database (a fresh install's `test`) holds nothing to lose: it needs no --replace.
  const empty = await server.emptyDatabases(userDatabases);
  const holding = userDatabases.filter((d) => !empty.has(d));
  if (holding.length > 0 && !input.replace) {
    refuse('TARGET_NOT_EMPTY', `the target ${server.describe} already holds ${holding.join(', ')}`, 'promote into an empty standby server, or pass --replace (its whole datadir is replaced; the old one is moved aside, not deleted)');
  }
  const parent = dirname(resolved);
  await access(parent, fsConstants.W_OK).catch(() => refuse('TARGET_DATADIR_MISMATCH', `cannot write beside the target's datadir, in ${parent}`, 'run promote as a user that can write the datadir\'s parent folder (the base is prepared there)'));
  // mbstream has no --version; --help exits 0.
  for (const [tool, flag] of [['mbstream', '--help'], ['mariabackup', '--version']] as const) await toolVersion(tool, flag);
  const stamp = new Date(input.nowMs).toISOString().replace(/[-:]/g, '');
  return {
    extractor: input.extractor ?? 'hotspare',
    datadir: resolved,
    startCommand: input.startCommand as string,
    staging: join(parent, `${basename(resolved)}.hotspare-staging-${base.id}`),
    previous: join(parent, `${basename(resolved)}.hotspare-before-${stamp}`),
    pid,
    userDatabases,
  };
}

/** A physical base being staged: two milestones, each rejecting with the failure that ends it. */
export interface PhysicalStaging {
  /** Extracted, prepared, its stream's sha256 matched, owned like the datadir: the target may be stopped. */
  checked: Promise<void>;
  /** Then on disk (every file fdatasynced, every folder fsynced): it may replace the datadir. */
  durable: Promise<void>;
}

/**
 * Stages a physical base beside the datadir while the server runs (preparePhysicalBase); the
 * caller stops the target once `checked` resolves, while the copy's write-back runs, and swaps
 * the datadirs once `durable` does. Neither rejection goes unobserved.
 */
export function stagePhysicalBase(archiveRoot: string, base: BaseBackupMetadata, plan: PhysicalRestorePlan, log: Logger, signal?: AbortSignal): PhysicalStaging {
  let markChecked!: () => void;
  const checked = new Promise<void>((resolve) => (markChecked = resolve));
  const durable = preparePhysicalBase(archiveRoot, base, plan, log, signal, markChecked);
  // A failure before the checks passed ends both; checked then rejects as durable does.
  const staging = { checked: Promise.race([checked, durable]), durable };
  staging.checked.catch(() => undefined);
  durable.catch(() => undefined);
  return staging;
}

/**
 * Extracts the stream into the staging folder (extractXbstream; `mbstream -x`, after gunzip,
 * when compressed), prepares it (`mariabackup --prepare`), gives it the datadir's owner and
 * mode (then calls `onChecked`: every check has passed), and makes it durable: the server still
 * runs meanwhile. A staging folder left by an earlier failed attempt is removed first (it is
 * ours by its name), and so is this one when anything fails. `signal` abandons it (staged before the plan was known, for another base than the plan chose): the
 * tools are stopped, the folder removed, and it rejects with the signal's reason.
 */
export async function preparePhysicalBase(archiveRoot: string, base: BaseBackupMetadata, plan: PhysicalRestorePlan, log: Logger, signal?: AbortSignal, onChecked?: () => void): Promise<void> {
  const physical = base.physical;
  if (physical === undefined) throw new HotspareError('BASE_DAMAGED', `base ${base.id} has no physical section in its metadata`, { hint: 'take a new base backup' });
  const entry = base.files.find((f) => f.name === physical.stream);
  if (entry === undefined) throw new HotspareError('BASE_DAMAGED', `base ${base.id} lists no file ${physical.stream}`, { hint: 'take a new base backup' });
  const { staging } = plan;
  signal?.throwIfAborted();
  /** The staging folder, empty (whatever an earlier attempt or extractor left is ours to remove). */
  const emptyStaging = async (): Promise<void> => {
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { mode: 0o750 });
  };
  await emptyStaging();
  let running: { kill: () => void } | undefined;
  const abandon = (): void => running?.kill();
  signal?.addEventListener('abort', abandon, { once: true });
  try {
    // The stream's size and sha256 are checked while it is extracted and mariabackup
    // prepares the copy (a second read, on the other core, from the page cache the first one
    // fills; the prepare is one busy core of its own): a mismatch fails before this returns,
    // so before the target server is touched. Damage explains a failed extract or prepare
    // better than their own messages, so it is reported first.
    const path = join(new ArchiveLayout(archiveRoot).baseDir, base.id, physical.stream);
    const checked = checkBaseFiles(archiveRoot, base);
    void checked.then((problems) => problems.length === 0 && log.info({ stream: physical.stream }, 'physical base stream checksum verified'), () => undefined);
    // Each tool started is followed: one working on a damaged copy is stopped as soon as the
    // damage is known (its result would be thrown away, and a damaged copy may keep it busy much
    // longer), and the one running is what an abort stops (one started after it, at once).
    const follow = (tool: { kill: () => void }): void => {
      void checked.then((problems) => problems.length > 0 && tool.kill(), () => undefined);
      running = tool;
      if (signal?.aborted === true) tool.kill();
    };
    const refuseDamage = async (): Promise<void> => {
      const problems = await checked;
      if (problems.length > 0) {
        throw new HotspareError('BASE_DAMAGED', `base backup ${base.id} is damaged: ${problems.join('; ')}`, {
          hint: 'the target is unchanged; run `hotspare verify`; take a new base backup with `hotspare base`',
        });
      }
    };
    // Ours extracts an uncompressed stream (see extractXbstream for why); mbstream extracts a
    // compressed one, and one holding a chunk type ours does not know (a newer format). A stream
    // ours finds damaged is refused, even when it is stored as it was taken (sha256 intact):
    // mbstream would skip a file whose path leaves the folder and still exit 0.
    let extracted = false;
    const ours = physical.compression !== 'gzip' && plan.extractor === 'hotspare';
    log.info({ stream: physical.stream, extractor: ours ? 'hotspare' : 'mbstream' }, 'extracting the physical base stream');
    if (ours) {
      const extraction = extractXbstream(path, staging);
      follow(extraction);
      try {
        const { files, bytes } = await extraction.done;
        log.debug({ files, bytes }, 'physical base stream extracted');
        extracted = true;
      } catch (err) {
        signal?.throwIfAborted();
        await refuseDamage();
        if (!(err instanceof HotspareError)) throw err;
        if (err.code === 'XBSTREAM_DAMAGED') {
          throw new HotspareError('BASE_DAMAGED', `base backup ${base.id} is not a valid mariabackup stream, though stored as it was taken: ${err.message}`, {
            hint: 'the target is unchanged; take a new base backup with `hotspare base`, and check the primary\'s mariabackup',
            cause: err,
          });
        }
        if (err.code !== 'XBSTREAM_UNSUPPORTED') throw err;
        log.warn({ code: err.code, reason: err.message }, 'hotspare cannot extract this stream itself; mbstream extracts it');
        await emptyStaging();
      }
    }
    if (!extracted) await extractWithMbstream(path, physical.compression, staging, follow, refuseDamage, signal);
    log.info({ staging }, 'physical base extracted; preparing it while its checksum is checked');
    const prepare = spawnChecked('mariabackup', ['--prepare', `--target-dir=${staging}`], 'ignore');
    follow(prepare);
    const prepared = await prepare.exited;
    signal?.throwIfAborted();
    await refuseDamage();
    if (prepared !== 0) throw restoreFailed(`mariabackup --prepare exited with ${prepared}: ${prepare.stderr()}`);
    log.info({ staging }, 'physical base prepared and its checksum verified; making it durable');
    await ownLikeDatadir(plan);
    signal?.throwIfAborted();
    onChecked?.();
    // The extraction and mariabackup leave much of the copy in the page cache only: it is flushed
    // before it replaces the datadir, so the server never runs, and is never opened for writes,
    // on data a host crash could still take away. After the ownership change, so that is on
    // disk too.
    await syncTree(staging, DEFAULT_PHYSICAL_SYNC_CONCURRENCY);
    signal?.throwIfAborted();
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  } finally {
    signal?.removeEventListener('abort', abandon);
  }
}

/**
 * `mbstream -x` into the staging folder, fed the stream itself (uncompressed) or through gunzip.
 * A failure reports the stream's damage first, when the sha256 check finds it.
 */
async function extractWithMbstream(
  path: string,
  compression: 'gzip' | 'none' | undefined,
  staging: string,
  follow: (tool: SpawnedTool) => void,
  refuseDamage: () => Promise<void>,
  signal: AbortSignal | undefined,
): Promise<void> {
  let extract: SpawnedTool;
  let fed: Promise<void>;
  const args = ['-x', `--parallel=${DEFAULT_PHYSICAL_EXTRACT_THREADS}`, '-C', staging];
  if (compression === 'gzip') {
    extract = spawnChecked('mbstream', args, 'pipe');
    fed = pipeline(createReadStream(path), createGunzip(), extract.stdin);
  } else {
    // mbstream reads an uncompressed stream from the file itself.
    const file = await open(path, 'r');
    try {
      extract = spawnChecked('mbstream', args, file.fd);
    } finally {
      await file.close();
    }
    fed = Promise.resolve();
  }
  follow(extract);
  const [feed, code] = await Promise.allSettled([fed, extract.exited]);
  signal?.throwIfAborted();
  if (code.status === 'rejected') throw code.reason;
  if (code.value !== 0 || feed.status === 'rejected') {
    await refuseDamage();
    if (code.value !== 0) throw restoreFailed(`mbstream -x exited with ${code.value}: ${extract.stderr()}`);
    throw restoreFailed(`reading ${basename(path)}: ${String((feed as PromiseRejectedResult).reason)}`);
  }
}

/**
 * Gives the staging folder the old datadir's owner (user, group: everything in it was created
 * by this process, so it is already when the datadir is this user's) and the folder's mode, so
 * the server's user can run it.
 */
async function ownLikeDatadir(plan: PhysicalRestorePlan): Promise<void> {
  try {
    const old = await lstat(plan.datadir);
    if (old.uid !== process.getuid?.() || old.gid !== process.getgid?.()) await chownTree(plan.staging, old.uid, old.gid);
    await chmod(plan.staging, old.mode & 0o7777);
  } catch (err) {
    // Before the server is touched: its own datadir still serves.
    throw restoreFailed(`cannot give the prepared copy the owner and mode of ${plan.datadir} (${errorMessage(err)}); run promote as root or as the datadir's owner`);
  }
}

/** SHUTDOWN over the target connection, then waits until the server's process has exited. */
export async function stopTarget(server: TargetServer, pid: number): Promise<void> {
  await server.shutdown();
  for (let waited = 0; processAlive(pid); waited += DEFAULT_TARGET_POLL_INTERVAL_MS) {
    if (waited > DEFAULT_TARGET_STOP_TIMEOUT_MS) {
      throw new HotspareError('TARGET_STOP_TIMEOUT', `the target server (pid ${pid}) did not exit within ${DEFAULT_TARGET_STOP_TIMEOUT_MS / 1000} s of SHUTDOWN`, {
        hint: 'its datadir is unchanged; see its error log, stop it, and run promote again',
      });
    }
    await sleep(DEFAULT_TARGET_POLL_INTERVAL_MS);
  }
}

/**
 * Stops the target once the staged copy has passed every check, while the copy is written back
 * to disk: the server's shutdown (its own flush) and the copy's fsyncs overlap instead of
 * following each other. Resolves when both are done. Should the copy fail to become durable
 * after the server stopped (a disk error), the server is started again on its own datadir,
 * which nothing has touched, and the failure is thrown.
 */
export async function stopOnceStaged(staging: PhysicalStaging, server: TargetServer, physical: PhysicalRestorePlan, connect: () => Promise<TargetServer>, log: Logger): Promise<void> {
  await staging.checked;
  const stopped = stopTarget(server, physical.pid).then(() => log.info({ pid: physical.pid }, 'target server stopped'));
  const [durable, stop] = await Promise.allSettled([staging.durable, stopped]);
  if (durable.status === 'rejected') {
    if (stop.status === 'fulfilled') {
      log.error({ err: durable.reason }, 'the restored copy could not be made durable; starting the target again on its own datadir');
      try {
        await (await startTarget(physical, connect)).close();
      } catch (err) {
        log.error({ err }, 'the target did not start again; its datadir is unchanged: start it by hand');
      }
    }
    throw durable.reason;
  }
  if (stop.status === 'rejected') throw stop.reason;
}

/**
 * Moves the old datadir aside (kept, never deleted) and the prepared, durable copy into its
 * place, and makes both renames durable before the server starts on it.
 */
export async function swapDatadir(plan: PhysicalRestorePlan): Promise<void> {
  // The server is stopped here: a failure says exactly where each copy is left.
  try {
    await rename(plan.datadir, plan.previous);
  } catch (err) {
    throw new HotspareError('DATADIR_SWAP_FAILED', `cannot move the datadir ${plan.datadir} aside to ${plan.previous}: ${errorMessage(err)}`, {
      cause: err,
      hint: `the target server is stopped and its datadir ${plan.datadir} is unchanged: start it again by hand; the prepared copy is at ${plan.staging}`,
    });
  }
  try {
    await rename(plan.staging, plan.datadir);
  } catch (err) {
    throw new HotspareError('DATADIR_SWAP_FAILED', `cannot move the prepared copy ${plan.staging} to ${plan.datadir}: ${errorMessage(err)}`, {
      cause: err,
      hint: `the target server is stopped; its old datadir is at ${plan.previous} and the prepared copy at ${plan.staging}: move one of them to ${plan.datadir}, then start the server`,
    });
  }
  await fsyncDir(dirname(plan.datadir));
}

/**
 * Runs the start command (through /bin/sh) and waits until the server answers. The command
 * may return at once (systemctl start) or keep running (a server in the foreground): the
 * server answering is what counts; the command failing first is TARGET_START_FAILED.
 */
export async function startTarget(plan: PhysicalRestorePlan, connect: () => Promise<TargetServer>): Promise<TargetServer> {
  const child = spawn('/bin/sh', ['-c', plan.startCommand], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-DEFAULT_PHYSICAL_BASE_STDERR_BYTES_MAX)));
  let exit: { code: number | null } | undefined;
  child.once('exit', (code) => (exit = { code }));
  child.once('error', (err) => {
    exit = { code: -1 };
    stderr += String(err);
  });
  try {
    for (let waited = 0; ; waited += DEFAULT_TARGET_POLL_INTERVAL_MS) {
      if (exit !== undefined && exit.code !== 0) {
        throw new HotspareError('TARGET_START_FAILED', `the start command ${JSON.stringify(plan.startCommand)} exited with ${exit.code}: ${stderr.trim()}`, {
          hint: `the restored datadir is in place at ${plan.datadir} (the old one at ${plan.previous}); start the server by hand, then replay the binlog (README: restore by hand)`,
        });
      }
      const server = await connect().catch((err: unknown) => {
        // The server answers but refuses the login: the restored datadir holds the primary's
        // accounts (its mysql schema), and waiting the full start timeout changes nothing.
        if (err instanceof HotspareError && err.code === 'TARGET_AUTH') {
          throw new HotspareError('TARGET_AUTH', `${err.message} (the restored datadir holds the primary's accounts)`, {
            cause: err,
            hint: `the server runs on the restored datadir ${plan.datadir} (the old one at ${plan.previous}); --target's user and password must be an account of the primary: log in as one, then replay the binlog by hand (README: restore by hand), or give promote such credentials next time`,
          });
        }
        // Another promotion took the restarted server's lock first: waiting changes nothing.
        if (err instanceof HotspareError && err.code === 'PROMOTE_RUNNING') throw err;
        return undefined;
      });
      if (server !== undefined) return server;
      if (waited > DEFAULT_TARGET_START_TIMEOUT_MS) {
        throw new HotspareError('TARGET_START_FAILED', `the target server did not answer within ${DEFAULT_TARGET_START_TIMEOUT_MS / 1000} s of ${JSON.stringify(plan.startCommand)}`, {
          hint: `see its error log; the restored datadir is at ${plan.datadir}, the old one at ${plan.previous}`,
        });
      }
      await sleep(DEFAULT_TARGET_POLL_INTERVAL_MS);
    }
  } finally {
    // A command still running (a foreground server) is the operator's, not ours to wait for.
    child.stderr.destroy();
    child.unref();
  }
}

async function chownTree(path: string, uid: number, gid: number): Promise<void> {
  await lchown(path, uid, gid);
  const entries = await readdir(path, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const child = join(path, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await lchown(child, uid, gid);
  }
}

function restoreFailed(what: string): HotspareError {
  return new HotspareError('RESTORE_FAILED', `restoring the physical base: ${what}`, { hint: 'the target server still runs on its old datadir, unchanged; fix the cause and run promote again' });
}

/** A tool run with stderr's tail kept; `exited` rejects with TOOL_MISSING when it is not installed. */
interface SpawnedTool {
  stdin: NodeJS.WritableStream;
  exited: Promise<number | null>;
  stderr: () => string;
  kill: () => void;
}

function spawnChecked(command: string, args: string[], stdin: 'pipe' | 'ignore' | number): SpawnedTool {
  const child = spawn(command, args, { stdio: [stdin, 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr = (stderr + c.toString('utf8')).slice(-DEFAULT_PHYSICAL_BASE_STDERR_BYTES_MAX)));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', (err) => reject(new HotspareError('TOOL_MISSING', `cannot run ${command}: ${String(err)}`, { cause: err, hint: 'install mariadb-backup on the standby (Debian: apt-get install mariadb-backup, the same version as the server)' })));
    child.once('close', resolve);
  });
  child.stdin?.on('error', () => undefined);
  return { stdin: child.stdin as NodeJS.WritableStream, exited, stderr: () => stderr.trim().split('\n').slice(-6).join(' | '), kill: () => child.kill() };
}

async function toolVersion(command: string, flag: string): Promise<void> {
  const tool = spawnChecked(command, [flag], 'ignore');
  const code = await tool.exited;
  if (code !== 0) throw new HotspareError('TOOL_MISSING', `${command} ${flag} exited with ${code}`, { hint: 'install mariadb-backup on the standby (Debian: apt-get install mariadb-backup)' });
}
