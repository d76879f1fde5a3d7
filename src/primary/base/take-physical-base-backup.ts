import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, readFile, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { constants as zlibConstants } from 'node:zlib';
import type { ArchiveFiles } from '../../archive/archive-files.js';
import { BASE_FORMAT_VERSION, BASE_METADATA_FILE, BASE_PARTIAL_SUFFIX, baseIdFor, type BaseBackupMetadata, type PhysicalBaseDetails } from '../../archive/base-catalog.js';
import type { PrimaryConnection } from '../../config/load.js';
import { DEFAULT_PHYSICAL_BASE_COMPRESSION, DEFAULT_PHYSICAL_BASE_PIECE_BYTES, DEFAULT_PHYSICAL_BASE_STDERR_BYTES_MAX } from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import type { Clock } from '../../platform/clock.js';
import { withClientDefaultsFile } from '../../platform/client-defaults-file.js';
import { makePrivateTempDir } from '../../platform/private-temp-dir.js';
import type { Logger } from '../../platform/logger.js';
import { fromMysqlError } from '../mysql-error.js';
import { describeEndpoint } from '../mysql-options.js';
import { baseAbortedError, connectForBase, isAborted, missingGlobalPrivileges, queryRows as query } from './base-session.js';
import { putCompressed, putHashed } from './compressed-file.js';
import { binlogPositionOfInfo, parseXtrabackupInfo } from './mariabackup-info.js';
import { SYSTEM_SCHEMAS } from './table-inventory.js';
import { HOTSPARE_VERSION } from './take-base-backup.js';
import { childLogger } from '../../platform/logger.js';

/** What mariabackup needs on the primary (MariaDB 10.5+ names). */
const PHYSICAL_PRIVILEGES = ['RELOAD', 'PROCESS', 'LOCK TABLES', 'BINLOG MONITOR'];
/** The stream's file name in the base folder, by compression. */
const STREAM_FILE = { none: 'backup.mbstream', gzip: 'backup.mbstream.gz' } as const;

export interface TakePhysicalBaseBackupOptions {
  primary: PrimaryConnection;
  files: ArchiveFiles;
  clock: Clock;
  logger: Logger;
  /** How the stream is stored; DEFAULT_PHYSICAL_BASE_COMPRESSION unless the benchmark compares. */
  compression?: 'gzip' | 'none';
  /** Aborted when the backup must stop now (the agent is stopping): mariabackup is killed, the partial folder removed, BASE_ABORTED. */
  signal?: AbortSignal;
}

/**
 * Takes a physical base backup into `base/<id>/`: `mariabackup --backup --stream=mbstream`
 * reads the primary's datadir on this host (so the primary must run here), and its stream goes
 * through ArchiveFiles.putFile (a `file` or a `remote` archive alike) into `base/<id>.partial/`.
 * mariabackup takes the binlog coordinates at BACKUP STAGE BLOCK_COMMIT, where no commit can
 * happen, so they are exactly the copy's; they come from the `xtrabackup_info` it writes into
 * `--extra-lsndir`. metadata.json is written last and the folder renamed, so a failed or
 * interrupted backup (mariabackup exiting non-zero, a full archive) never looks complete.
 */
export async function takePhysicalBaseBackup(options: TakePhysicalBaseBackupOptions): Promise<BaseBackupMetadata> {
  const { primary, files, clock } = options;
  const log = childLogger(options.logger, { component: 'physical-base-backup' });
  const endpoint = describeEndpoint(primary);
  const startedMs = clock.nowMs();
  const id = baseIdFor(startedMs);
  const partial = `base/${id}${BASE_PARTIAL_SUFFIX}`;
  const { signal } = options;
  if (isAborted(signal)) throw baseAbortedError();
  const conn = await connectForBase(primary, 'base backup connect', endpoint);
  const work = await makePrivateTempDir('hotspare-mariabackup-');
  try {
    await checkPhysicalPrivileges(conn);
    const [server] = await query(conn, 'SELECT @@version AS v, @@server_id AS id, @@hostname AS h, @@datadir AS d', endpoint);
    const datadir = String(server?.['d'] ?? '');
    await checkPrimaryIsLocal(String(server?.['h'] ?? ''), datadir, endpoint);
    const databases = (await query(conn, 'SHOW DATABASES', endpoint)).map((r) => String(Object.values(r)[0])).filter((d) => !SYSTEM_SCHEMAS.includes(d));
    const version = await mariabackupVersion();
    log.info({ id, datadir }, 'physical base backup: mariabackup started');

    const compression = options.compression ?? DEFAULT_PHYSICAL_BASE_COMPRESSION;
    const stream = STREAM_FILE[compression];
    const lsnDir = join(work, 'lsn');
    const run = await withClientDefaultsFile(
      { user: primary.user, password: primary.password, host: primary.host, port: primary.port, socketPath: primary.socketPath },
      (defaultsFile) => streamMariabackup({ files, path: `${partial}/${stream}`, compression, defaultsFile, datadir, targetDir: join(work, 'target'), lsnDir, clock, log, signal }),
    );
    const infoText = await readFile(join(lsnDir, 'xtrabackup_info'), 'utf8').catch(() => '');
    const info = parseXtrabackupInfo(infoText);
    const coordinates = binlogPositionOfInfo(info);
    if (coordinates === undefined) {
      throw new HotspareError('BASE_PHYSICAL_FAILED', `mariabackup recorded no binlog coordinates (xtrabackup_info binlog_pos: ${JSON.stringify(info['binlog_pos'] ?? null)})`, {
        hint: 'the primary needs log_bin on (a base is only useful with the binlog after it)',
      });
    }
    const physical: PhysicalBaseDetails = { stream, compression, datadir, info };
    const metadata: BaseBackupMetadata = {
      formatVersion: BASE_FORMAT_VERSION,
      id,
      method: 'physical-mariabackup',
      startedAt: new Date(startedMs).toISOString(),
      finishedAt: new Date(clock.nowMs()).toISOString(),
      binlog: coordinates.binlog,
      gtidBinlogPos: coordinates.gtid,
      lockHeldMs: run.blockCommitMs,
      server: { version: String(server?.['v']), serverId: Number(server?.['id']), hostname: String(server?.['h']) },
      tool: { name: 'hotspare', version: HOTSPARE_VERSION, mariabackup: version },
      databases,
      tables: [],
      files: [{ name: stream, role: 'physical', bytes: run.bytes, sha256: run.sha256 }],
      physical,
    };
    await files.putFile(`${partial}/${BASE_METADATA_FILE}`, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`));
    await files.rename(partial, `base/${id}`);
    log.info({ id, binlog: metadata.binlog, bytes: run.bytes, blockCommitMs: run.blockCommitMs }, 'physical base backup complete');
    return metadata;
  } catch (err) {
    await files.remove(partial).catch(() => undefined);
    if (isAborted(signal)) throw baseAbortedError(err);
    throw fromMysqlError(err, 'base backup', endpoint);
  } finally {
    await rm(work, { recursive: true, force: true });
    await conn.end().catch(() => undefined);
  }
}

interface StreamInput {
  files: ArchiveFiles;
  path: string;
  compression: 'gzip' | 'none';
  defaultsFile: string;
  datadir: string;
  targetDir: string;
  lsnDir: string;
  clock: Clock;
  log: Logger;
  signal: AbortSignal | undefined;
}

/**
 * Runs mariabackup and writes its stdout into the archive. The stream's end counts only when
 * mariabackup exited 0: the source throws otherwise, so putFile never completes a truncated
 * stream. A failing archive write kills mariabackup.
 */
async function streamMariabackup(input: StreamInput): Promise<{ bytes: number; sha256: string; blockCommitMs: number }> {
  // --defaults-file first and alone: the host's my.cnf may describe another server; the
  // datadir is the one the primary reports, and mariabackup reads the InnoDB layout from it.
  const args = [
    `--defaults-file=${input.defaultsFile}`,
    '--backup',
    '--stream=mbstream',
    `--datadir=${input.datadir}`,
    `--target-dir=${input.targetDir}`,
    `--extra-lsndir=${input.lsnDir}`,
  ];
  // Aborted (the agent stopping): mariabackup is killed, and the stream fails, so nothing
  // completes. SIGKILL: waiting in a statement on the primary (BACKUP STAGE behind a long
  // query), mariabackup does not act on SIGTERM; the server ends its session and locks.
  const child = spawn('mariabackup', args, { stdio: ['ignore', 'pipe', 'pipe'], ...(input.signal === undefined ? {} : { signal: input.signal, killSignal: 'SIGKILL' }) });
  let stderrTail = '';
  let blockCommitFromMs: number | undefined;
  let blockCommitMs = 0;
  let partialLine = '';
  child.stderr.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    stderrTail = (stderrTail + text).slice(-DEFAULT_PHYSICAL_BASE_STDERR_BYTES_MAX);
    // Commits are blocked between these two lines: the physical base's "lock held" figure.
    const lines = (partialLine + text).split('\n');
    partialLine = lines.pop() ?? '';
    for (const line of lines) {
      if (line.includes('Acquired locks for BACKUP STAGE BLOCK_COMMIT')) blockCommitFromMs = input.clock.nowMs();
      if (line.includes('Finishing BACKUP STAGE BLOCK_COMMIT') && blockCommitFromMs !== undefined) blockCommitMs = input.clock.nowMs() - blockCommitFromMs;
    }
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  });
  exited.catch(() => undefined);
  const failure = (code: number | null): HotspareError =>
    new HotspareError('BASE_PHYSICAL_FAILED', `mariabackup --backup exited with ${code}: ${lastLines(stderrTail)}`, {
      hint: 'see mariabackup\'s message above; nothing partial was kept (the agent user needs RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR, and this process must read the datadir)',
    });
  async function* output(): AsyncGenerator<Buffer> {
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
    let code: number | null;
    try {
      code = await exited;
    } catch (err) {
      if (isAborted(input.signal)) throw baseAbortedError(err);
      throw missingTool(err);
    }
    if (isAborted(input.signal)) throw baseAbortedError();
    if (code !== 0) throw failure(code);
  }
  try {
    const written =
      input.compression === 'gzip'
        ? await putCompressed(input.files, input.path, output(), { level: 1, strategy: zlibConstants.Z_RLE })
        : await putHashed(input.files, input.path, output(), DEFAULT_PHYSICAL_BASE_PIECE_BYTES);
    return { ...written, blockCommitMs };
  } catch (err) {
    child.kill('SIGKILL');
    const code = await exited.catch(() => null);
    if (err instanceof HotspareError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && (err as NodeJS.ErrnoException).syscall?.startsWith('spawn') === true) throw missingTool(err);
    // The archive side failed (a full disk, a lost receiver); mariabackup's words come with it when it failed first.
    throw code !== null && code !== 0 && stderrTail.includes('[ERROR]') ? failure(code) : err;
  }
}

function missingTool(err: unknown): HotspareError {
  return new HotspareError('TOOL_MISSING', `cannot run mariabackup: ${String(err)}`, { cause: err, hint: 'install mariabackup on the primary\'s host (Debian: apt-get install mariadb-backup, the same version as the server)' });
}

/** The last few lines of mariabackup's stderr: its error is at the end. */
function lastLines(text: string): string {
  return text.trim().split('\n').slice(-6).join(' | ');
}

/**
 * What a physical base needs, checked without taking one: the agent runs this at start when
 * `base.method` is physical, so a primary on another host, a missing privilege or a missing
 * mariabackup stops it with the fix instead of failing each automatic base later.
 */
export async function checkPhysicalBasePrerequisites(primary: PrimaryConnection): Promise<void> {
  const endpoint = describeEndpoint(primary);
  const conn = await connectForBase(primary, 'physical base check', endpoint);
  try {
    await checkPhysicalPrivileges(conn);
    const [server] = await query(conn, 'SELECT @@hostname AS h, @@datadir AS d', endpoint);
    await checkPrimaryIsLocal(String(server?.['h'] ?? ''), String(server?.['d'] ?? ''), endpoint);
    await mariabackupVersion();
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/**
 * mariabackup copies files from the datadir, so the primary must run on this host: its
 * @@hostname must be this host's and its @@datadir readable here.
 */
async function checkPrimaryIsLocal(serverHost: string, datadir: string, endpoint: string): Promise<void> {
  const here = hostname();
  const notLocal = (why: string): never => {
    throw new HotspareError('BASE_PRIMARY_NOT_LOCAL', `a physical base backup reads the primary's datadir, but ${why}`, {
      hint: 'run the agent (or `hotspare base --method physical`) on the primary\'s own host as a user that can read its datadir, or use the logical method (base.method "logical", `--method logical`)',
    });
  };
  if (serverHost !== here) notLocal(`the primary ${endpoint} runs on host ${JSON.stringify(serverHost)} and this is ${JSON.stringify(here)}`);
  try {
    if (!(await stat(datadir)).isDirectory()) notLocal(`its datadir ${datadir} is not a folder here`);
    await access(datadir, fsConstants.R_OK | fsConstants.X_OK);
    await access(join(datadir, 'mysql'), fsConstants.R_OK | fsConstants.X_OK);
  } catch (err) {
    if (err instanceof HotspareError) throw err;
    notLocal(`its datadir ${datadir} cannot be read here (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
}

/** Refuses early, with the exact GRANT, when the user lacks what mariabackup needs. */
async function checkPhysicalPrivileges(conn: Connection): Promise<void> {
  const missing = await missingGlobalPrivileges(conn, PHYSICAL_PRIVILEGES);
  if (missing.length > 0) {
    throw new HotspareError('PRIVILEGES', `the hotspare user lacks ${missing.join(', ')}, which mariabackup needs for a physical base backup`, {
      hint: `GRANT ${PHYSICAL_PRIVILEGES.join(', ')} ON *.* TO the hotspare user (mariabackup takes BACKUP STAGE locks and reads the binlog position)`,
    });
  }
}

async function mariabackupVersion(): Promise<string> {
  const child = spawn('mariabackup', ['--version'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => (out += c.toString('utf8')));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  }).catch((err: unknown) => {
    throw missingTool(err);
  });
  if (code !== 0) throw missingTool(new Error(`mariabackup --version exited with ${code}`));
  return out.trim().split('\n')[0] ?? 'unknown';
}
