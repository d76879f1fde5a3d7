import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ArchiveFiles } from '../../archive/archive-files.js';
import {
  BASE_FORMAT_VERSION,
  BASE_METADATA_FILE,
  BASE_PARTIAL_SUFFIX,
  baseIdFor,
  type BaseBackupMetadata,
  type BaseFileEntry,
} from '../../archive/base-catalog.js';
import type { PrimaryConnection } from '../../config/load.js';
import { DEFAULT_BASE_LOCK_WAIT_TIMEOUT_S, DEFAULT_BASE_SESSION_WAIT_TIMEOUT_S, DEFAULT_BASE_STREAMS } from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import type { Clock } from '../../platform/clock.js';
import { withClientDefaultsFile } from '../../platform/client-defaults-file.js';
import type { Logger } from '../../platform/logger.js';
import { fromMysqlError } from '../mysql-error.js';
import { describeEndpoint } from '../mysql-options.js';
import { baseAbortedError, connectForBase, endBaseSession, isAborted, missingGlobalPrivileges, queryRows as query } from './base-session.js';
import { whenAborted } from '../../platform/when-aborted.js';
import { putCompressed } from './compressed-file.js';
import { RowStreamClient } from './row-stream-client.js';
import { dumpSchema, schemaDumpVersion } from './schema-dump.js';
import { readTableInventory, type DumpTable } from './table-inventory.js';
import { dumpAccounts } from './accounts-dump.js';
import { acquireGlobalReadLock } from './global-read-lock.js';
import { TableReadLocks } from './table-read-locks.js';
import { childLogger } from '../../platform/logger.js';

export const HOTSPARE_VERSION = '0.1.0';
/** Privileges a base backup needs beyond what streaming needs. */
const BASE_PRIVILEGES = ['RELOAD', 'SELECT', 'LOCK TABLES', 'SHOW VIEW', 'EVENT', 'TRIGGER'];

export interface TakeBaseBackupOptions {
  primary: PrimaryConnection;
  files: ArchiveFiles;
  clock: Clock;
  logger: Logger;
  /**
   * Aborted when the backup must stop now (the agent is stopping): the primary session and every
   * tool are ended, the partial folder removed, and the backup fails with BASE_ABORTED.
   */
  signal?: AbortSignal;
}

/**
 * Takes one exact, consistent base backup into `base/<id>/` of an archive:
 *
 * 1. FLUSH TABLES WITH READ LOCK, once no long statement would make writers wait for it
 *    (global-read-lock.ts); read SHOW MASTER STATUS and @@gtid_binlog_pos (no commit can
 *    happen, so these are the snapshot's coordinates); START TRANSACTION WITH CONSISTENT SNAPSHOT
 *    here and in DEFAULT_BASE_STREAMS row-stream sessions, which therefore share one snapshot.
 * 2. Still under it, the non-transactional tables (MyISAM, Aria, ...) are locked for read by a
 *    session of their own (table-read-locks.ts), and the schema is written (mariadb-dump
 *    --no-data; DDL is blocked, so it matches the coordinates).
 * 3. UNLOCK TABLES as soon as the schema is written; the non-transactional rows are copied
 *    under their own read locks (released once all are written: only their writers wait that
 *    long) and the InnoDB rows come from the snapshot while the primary writes on. When those
 *    locks cannot be had at once, the non-transactional rows are copied under the global read
 *    lock instead. Tables are shared out among the streams biggest first (non-transactional
 *    ones first); each stream writes one data file.
 *
 * Everything goes to `base/<id>.partial/` first; metadata.json is written last and the folder
 * renamed, so an interrupted backup never looks complete.
 */
export async function takeBaseBackup(options: TakeBaseBackupOptions): Promise<BaseBackupMetadata> {
  const { primary, files, clock } = options;
  const log = childLogger(options.logger, { component: 'base-backup' });
  const endpoint = describeEndpoint(primary);
  const startedMs = clock.nowMs();
  const id = baseIdFor(startedMs);
  const partial = `base/${id}${BASE_PARTIAL_SUFFIX}`;
  const { signal } = options;
  if (isAborted(signal)) throw baseAbortedError();
  const conn = await connectForBase(primary, 'base backup connect', endpoint);
  // Ending the session ends whatever it waits in (the global read lock, a query) and gives the lock back.
  const stopListening = whenAborted(signal, () => void endBaseSession(primary, conn));
  let locked = false;
  let tableLocks: TableReadLocks | undefined;
  const stopListeningForTables = whenAborted(signal, () => void tableLocks?.abandon());
  try {
    await checkBasePrivileges(conn);
    const [serverRow] = await query(conn, 'SELECT @@version AS v, @@server_id AS id, @@hostname AS h', endpoint);
    // This connection holds the lock and the snapshot and then waits for the dump: a server's
    // wait_timeout (or idle transaction timeout) must not end it in the middle.
    await query(conn, `SET SESSION time_zone = '+00:00', wait_timeout = ${DEFAULT_BASE_SESSION_WAIT_TIMEOUT_S}`, endpoint);
    await query(conn, 'SET SESSION idle_transaction_timeout = 0', endpoint).catch(() => undefined);

    // Opened before the global read lock, which its connect must not lengthen.
    tableLocks = await TableReadLocks.open(primary, { endpoint, clock, logger: log });
    await acquireGlobalReadLock(conn, { endpoint, clock, logger: log, signal });
    locked = true;
    await query(conn, `SET SESSION lock_wait_timeout = ${DEFAULT_BASE_LOCK_WAIT_TIMEOUT_S}`, endpoint);
    const lockedAtMs = clock.nowMs();
    const [master] = await query(conn, 'SHOW MASTER STATUS', endpoint);
    if (master === undefined) throw new HotspareError('BINLOG_DISABLED', 'SHOW MASTER STATUS returned nothing', { hint: 'enable log_bin on the primary' });
    const [gtidRow] = await query(conn, 'SELECT @@gtid_binlog_pos AS g', endpoint).catch(() => [] as RowDataPacket[]);
    await query(conn, 'START TRANSACTION WITH CONSISTENT SNAPSHOT', endpoint);
    const binlog = { file: String(master['File']), position: Number(master['Position']) };
    const inventory = await readTableInventory(conn);
    // Under the lock too: the accounts of the base's coordinates (a replayed GRANT or ALTER USER
    // for an account created before them must find it on the standby).
    const accounts = await dumpAccounts(conn, log);
    // Every table is opened under the lock by each row-stream session (RowStreamClient.openTables,
    // in dumpUnderLock), whose transaction holds its metadata lock until it has read its last
    // table: a concurrent ALTER waits for the backup instead of breaking it ("table definition
    // has changed"), and the schema dumped under the lock stays the schema of the rows.
    if (tableLocks !== undefined && !(await tableLocks.lock(inventory.tables.filter((t) => !t.transactional)))) tableLocks = undefined;
    log.info({ id, binlog, databases: inventory.databases.length, tables: inventory.tables.length, tablesLocked: tableLocks?.tables ?? 0, tableLockSession: tableLocks?.threadId }, 'base backup: locked, snapshot taken');

    const rowCounts = new Map<DumpTable, { rows: number }>();
    let lockHeldMs = 0;
    const unlock = async (): Promise<void> => {
      if (!locked) return;
      await query(conn, 'UNLOCK TABLES', endpoint);
      locked = false;
      lockHeldMs = clock.nowMs() - lockedAtMs;
      log.info({ lockHeldMs }, 'base backup: global read lock released');
    };
    let tableLockHeldMs: number | undefined;
    const locks = tableLocks;
    const unlockTables =
      locks === undefined
        ? undefined
        : async (): Promise<void> => {
            if (tableLockHeldMs !== undefined) return;
            tableLockHeldMs = await locks.release();
            log.info({ tableLockHeldMs, tables: locks.tables }, 'base backup: non-transactional tables read, their read locks released');
          };
    const entries = await withClientDefaultsFile(
      { user: primary.user, password: primary.password, host: primary.host, port: primary.port, socketPath: primary.socketPath },
      (defaultsFile) => dumpUnderLock({ files, partial, defaultsFile, tables: inventory.tables, databases: inventory.databases, rowCounts, unlock, unlockTables, log, signal }),
    );
    await query(conn, 'COMMIT', endpoint);
    const accountsFile = 'accounts.sql.gz';
    const accountsEntry: BaseFileEntry = { name: accountsFile, role: 'accounts', ...(await putCompressed(files, `${partial}/${accountsFile}`, [accounts])) };

    const metadata: BaseBackupMetadata = {
      formatVersion: BASE_FORMAT_VERSION,
      id,
      method: 'logical-exact',
      startedAt: new Date(startedMs).toISOString(),
      finishedAt: new Date(clock.nowMs()).toISOString(),
      binlog,
      gtidBinlogPos: String(gtidRow?.['g'] ?? ''),
      lockHeldMs,
      ...(tableLockHeldMs === undefined ? {} : { tableLockHeldMs }),
      server: { version: String(serverRow?.['v']), serverId: Number(serverRow?.['id']), hostname: String(serverRow?.['h']) },
      tool: { name: 'hotspare', version: HOTSPARE_VERSION, schemaDump: await schemaDumpVersion() },
      databases: inventory.databases,
      tables: inventory.tables.map((t) => ({
        schema: t.schema,
        name: t.name,
        engine: t.engine,
        rows: rowCounts.get(t)?.rows ?? 0,
        consistency: t.transactional ? 'snapshot' : 'locked',
      })),
      // Restore order: the schema, the accounts (their grants name its tables and routines), the rows, the triggers.
      files: [...entries.filter((e) => e.role === 'schema'), accountsEntry, ...entries.filter((e) => e.role !== 'schema')],
    };
    await files.putFile(`${partial}/${BASE_METADATA_FILE}`, Buffer.from(`${JSON.stringify(metadata, null, 2)}\n`));
    await files.rename(partial, `base/${id}`);
    log.info({ id, binlog, lockHeldMs, tableLockHeldMs, bytes: metadata.files.reduce((n, e) => n + e.bytes, 0) }, 'base backup complete');
    return metadata;
  } catch (err) {
    // The lock goes first: the primary's writers wait on it, not on our clean-up.
    if (locked) {
      await conn.query('UNLOCK TABLES').catch(() => undefined);
      locked = false;
    }
    await tableLocks?.abandon();
    await files.remove(partial).catch(() => undefined);
    if (isAborted(signal)) throw baseAbortedError(err);
    throw fromMysqlError(err, 'base backup', endpoint);
  } finally {
    stopListening();
    stopListeningForTables();
    if (locked) await conn.query('UNLOCK TABLES').catch(() => undefined);
    await conn.end().catch(() => undefined);
  }
}

interface DumpInput {
  files: ArchiveFiles;
  partial: string;
  defaultsFile: string;
  databases: string[];
  tables: DumpTable[];
  rowCounts: Map<DumpTable, { rows: number }>;
  /**
   * Releases the global read lock; called once the schema is written, and, when the
   * non-transactional tables hold no read locks of their own (`unlockTables` undefined), their rows.
   */
  unlock: () => Promise<void>;
  /** Releases the non-transactional tables' own read locks; called once their rows are written. */
  unlockTables: (() => Promise<void>) | undefined;
  log: Logger;
  signal: AbortSignal | undefined;
}

/**
 * Called with the global read lock held: starts the row-stream sessions' snapshots, writes
 * the schema, the triggers and the data files (one per stream) concurrently, and releases the
 * lock as soon as everything that needs it is written. Returns the files in restore order.
 */
async function dumpUnderLock(input: DumpInput): Promise<BaseFileEntry[]> {
  const { files, partial, defaultsFile, tables, rowCounts, log } = input;
  const clients = Array.from({ length: DEFAULT_BASE_STREAMS }, () => new RowStreamClient(defaultsFile, input.signal));
  try {
    await Promise.all(
      clients.map(async (c) => {
        await c.startSnapshot();
        await c.openTables(tables);
      }),
    );
    const bySizeDesc = (a: DumpTable, b: DumpTable): number => b.bytes - a.bytes;
    const queue = [...tables.filter((t) => !t.transactional).sort(bySizeDesc), ...tables.filter((t) => t.transactional).sort(bySizeDesc)];
    // What must be written before the global lock goes: both schema parts, and every
    // non-transactional table unless their own read locks keep them still.
    const nonTransactional = queue.filter((t) => !t.transactional).length;
    const globalWork = countdown(2 + (input.unlockTables === undefined ? nonTransactional : 0), input.unlock);
    const tableWork = input.unlockTables === undefined ? globalWork : countdown(nonTransactional, input.unlockTables);
    async function* stream(client: RowStreamClient): AsyncGenerator<Buffer> {
      yield Buffer.from(DATA_FILE_PROLOGUE, 'latin1');
      for (let table = queue.shift(); table !== undefined; table = queue.shift()) {
        const counter = { rows: 0 };
        rowCounts.set(table, counter);
        yield* client.tableStatements(table, counter);
        if (!table.transactional) await tableWork();
      }
    }
    const schemaPart = async (part: 'schema' | 'triggers'): Promise<BaseFileEntry> => {
      const name = `${part}.sql.gz`;
      const written = await putCompressed(files, `${partial}/${name}`, dumpSchema(defaultsFile, input.databases, part, input.signal));
      await globalWork();
      return { name, role: part, ...written };
    };
    const tasks = [
      schemaPart('schema'),
      schemaPart('triggers'),
      ...clients.map(async (client, i): Promise<BaseFileEntry> => {
        const name = `data-${i + 1}.sql.gz`;
        const written = await putCompressed(files, `${partial}/${name}`, stream(client));
        await client.close();
        return { name, role: 'data', ...written };
      }),
    ];
    // On the first failure the other streams are stopped, and every task has ended before the
    // caller removes the partial folder (so nothing writes into it afterwards). The first
    // failure in time is the cause: the streams killed for it fail after it (BASE_DUMP).
    let first: { err: unknown } | undefined;
    tasks.forEach((task) =>
      task.catch((err: unknown) => {
        first ??= { err };
        clients.forEach((c) => c.kill());
      }),
    );
    const settled = await Promise.allSettled(tasks);
    if (first !== undefined) throw first.err;
    const [schema, triggers, ...data] = settled.map((r) => (r as PromiseFulfilledResult<BaseFileEntry>).value);
    await input.unlockTables?.();
    await input.unlock();
    log.debug({ streams: clients.length }, 'base backup: rows written');
    return [schema as BaseFileEntry, ...data, triggers as BaseFileEntry];
  } catch (err) {
    for (const client of clients) client.kill();
    throw err;
  }
}

/**
 * A step counter: each call counts one piece of work done, the call that counts the last one
 * runs `release`, and every call (that one and later ones) waits for it to finish.
 */
function countdown(steps: number, release: () => Promise<void>): () => Promise<void> {
  let left = steps;
  let releasing: Promise<void> | undefined;
  return async () => {
    left -= 1;
    if (left <= 0) releasing ??= release();
    if (releasing !== undefined) await releasing;
  };
}

/** The first lines of every data file: a session in which the literals mean exactly what they say. */
export const DATA_FILE_PROLOGUE = [
  '-- hotspare base backup rows: exact literals (see ARCHITECTURE.md, base backups)',
  "SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO', foreign_key_checks = 0, unique_checks = 0;",
  '',
].join('\n');

/**
 * What a logical base needs, checked without taking one: the agent runs this at start (it takes
 * bases by itself, into a new archive or after a purge), so a missing privilege stops it with the
 * GRANT instead of a replica retrying PRIVILEGES for ever.
 */
export async function checkLogicalBasePrerequisites(primary: PrimaryConnection): Promise<void> {
  const endpoint = describeEndpoint(primary);
  const conn = await connectForBase(primary, 'base backup check', endpoint);
  try {
    await checkBasePrivileges(conn);
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** Refuses early, with the exact GRANT, when the user cannot take a consistent backup. */
async function checkBasePrivileges(conn: Connection): Promise<void> {
  const missing = await missingGlobalPrivileges(conn, BASE_PRIVILEGES);
  if (missing.length > 0) {
    throw new HotspareError('PRIVILEGES', `the hotspare user lacks ${missing.join(', ')}, which a consistent base backup needs`, {
      hint: `GRANT ${BASE_PRIVILEGES.join(', ')} ON *.* TO the hotspare user (RELOAD allows the brief FLUSH TABLES WITH READ LOCK)`,
    });
  }
}
