import type { BinlogPosition } from '../core/binlog-position.js';
import type { Logger } from '../platform/logger.js';
import type { ArchiveFiles } from './archive-files.js';

export const BASE_FORMAT_VERSION = 1;
/** A base backup is written under `base/<id>.partial/` and renamed to `base/<id>/` only when complete. */
export const BASE_PARTIAL_SUFFIX = '.partial';
export const BASE_METADATA_FILE = 'metadata.json';

/** One file of a base backup, with what verify checks. */
export interface BaseFileEntry {
  name: string;
  /**
   * schema: CREATE statements (mariadb-dump); data: rows; triggers: loaded after the rows;
   * physical: a mariabackup `--stream=mbstream` stream (whole datadir copy).
   */
  /** `accounts`: the primary's accounts and grants (restored after the schema, before the rows). */
  role: 'schema' | 'accounts' | 'data' | 'triggers' | 'physical';
  bytes: number;
  sha256: string;
}

/** `base/<id>/metadata.json`: everything needed to restore the base and continue from it. */
export interface BaseBackupMetadata {
  formatVersion: number;
  id: string;
  /**
   * logical-exact: mariadb-dump schema + rows rendered exactly by hotspare (gzip SQL).
   * physical-mariabackup: one `mariabackup --backup --stream=mbstream` stream (see `physical`).
   */
  method: BaseBackupMethod;
  startedAt: string;
  finishedAt: string;
  /** The snapshot's binlog coordinates: replay continues here. */
  binlog: BinlogPosition;
  /** @@gtid_binlog_pos at the snapshot (MariaDB), '' when the server has no GTIDs yet. */
  gtidBinlogPos: string;
  /**
   * How long commits were blocked (ms): the global read lock of a logical base (the schema, and
   * the non-transactional tables when they could not be locked on their own); mariabackup's
   * BACKUP STAGE BLOCK_COMMIT for a physical one.
   */
  lockHeldMs: number;
  /**
   * Logical bases since 2026-12-06: how long the non-transactional tables were locked for read
   * by a session of their own, from under the global read lock until their rows were read (after
   * the global lock went, writes to those tables waited). Absent when they were copied under
   * the global read lock (or there were none).
   */
  tableLockHeldMs?: number;
  server: { version: string; serverId: number; hostname: string };
  /** schemaDump: `mariadb-dump --version` (logical); mariabackup: `mariabackup --version` (physical). */
  tool: { name: 'hotspare'; version: string; schemaDump?: string; mariabackup?: string };
  databases: string[];
  /** The tables and their row counts (logical); empty for a physical base (it copies files, not rows). */
  tables: Array<{ schema: string; name: string; engine: string; rows: number; consistency: 'locked' | 'snapshot' }>;
  /** Physical bases only: how the stream is stored, and what mariabackup recorded (xtrabackup_info). */
  physical?: PhysicalBaseDetails;
  /** In restore order. */
  files: BaseFileEntry[];
}

export type BaseBackupMethod = 'logical-exact' | 'physical-mariabackup';

export interface PhysicalBaseDetails {
  /** The stream's file in the base folder, e.g. backup.mbstream.gz. */
  stream: string;
  /** gzip: the stream was compressed (gunzip before mbstream -x); none: stored as mariabackup wrote it. */
  compression: 'gzip' | 'none';
  /** The primary's datadir the backup was read from. */
  datadir: string;
  /** mariabackup's xtrabackup_info (from --extra-lsndir), key by key: LSNs, binlog_pos, times. */
  info: Record<string, string>;
}

/** What baseIdFor makes. */
const BASE_ID_PATTERN = /^\d{8}T\d{6}\.\d{3}Z$/;

/** Time-sortable base id: UTC time to the millisecond, e.g. 20261122T100001.250Z. */
export function baseIdFor(nowMs: number): string {
  return new Date(nowMs).toISOString().replace(/[-:]/g, '');
}

/** The complete base backups of an archive, oldest first. Partial folders are not listed. */
export async function listBaseBackups(files: ArchiveFiles): Promise<BaseBackupMetadata[]> {
  return (await readBaseFolders(files)).bases;
}

/**
 * Every base folder (not partial), read once: the complete bases, oldest first, and the folders
 * that do not hold a readable base of this format (metadata.json missing, torn, of another id
 * or format). Those never count as bases; verify reports them, since a base an operator counted
 * on is gone.
 */
export async function readBaseFolders(files: ArchiveFiles): Promise<{ bases: BaseBackupMetadata[]; unreadable: Array<{ id: string; reason: string }> }> {
  const bases: BaseBackupMetadata[] = [];
  const unreadable: Array<{ id: string; reason: string }> = [];
  for (const id of (await files.list('base')).sort()) {
    // Only folders named as bases are (a stray file, a hand-renamed copy are not ours to judge).
    if (id.endsWith(BASE_PARTIAL_SUFFIX) || !BASE_ID_PATTERN.test(id)) continue;
    const raw = await files.readFile(`base/${id}/${BASE_METADATA_FILE}`);
    if (raw === undefined) {
      unreadable.push({ id, reason: `${BASE_METADATA_FILE} is missing` });
      continue;
    }
    let meta: BaseBackupMetadata;
    try {
      meta = JSON.parse(raw.toString('utf8')) as BaseBackupMetadata;
    } catch {
      unreadable.push({ id, reason: `${BASE_METADATA_FILE} is not valid JSON (torn or damaged)` });
      continue;
    }
    if (meta.formatVersion !== BASE_FORMAT_VERSION) unreadable.push({ id, reason: `format version ${String(meta.formatVersion)}, not ${BASE_FORMAT_VERSION}` });
    else if (meta.id !== id) unreadable.push({ id, reason: `${BASE_METADATA_FILE} names base ${JSON.stringify(meta.id)}` });
    else bases.push(meta);
  }
  return { bases, unreadable };
}

/** Base backups this process is taking now (see baseInProgress). */
let basesInProgress = 0;

/**
 * Marks a base backup as running in this process until the returned function is called. While
 * one runs, a partial base folder may be its own (a replica's session reopened under it), so
 * nothing removes partial folders as left by the dead.
 */
export function markBaseInProgress(): () => void {
  basesInProgress += 1;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    basesInProgress -= 1;
  };
}

/** Whether this process is taking a base backup now. */
export function baseInProgress(): boolean {
  return basesInProgress > 0;
}

/** Folders left by an interrupted backup; they never count as a base and can be removed. */
export async function listPartialBaseBackups(files: ArchiveFiles): Promise<string[]> {
  return (await files.list('base')).filter((name) => name.endsWith(BASE_PARTIAL_SUFFIX));
}

/**
 * Removes the folders of base backups that never completed, unless this process is taking a
 * base now (one may be its own, a replica's session reopened under it). The caller holds the
 * archive's lock, so every other partial folder was left by a backup that died (SIGKILL, a
 * crash, a power cut) and would otherwise stay, as large as the base. Best effort: a folder
 * that cannot be removed (another user's) is left with a warning, never keeping a replica from
 * streaming; it never counts as a base.
 */
export async function removeDeadPartialBases(files: ArchiveFiles, logger: Logger): Promise<void> {
  if (baseInProgress()) return;
  for (const partial of await listPartialBaseBackups(files).catch(() => [] as string[])) {
    try {
      await files.remove(`base/${partial}`);
      logger.warn({ folder: `base/${partial}` }, 'removed what a base backup that did not complete left in the archive');
    } catch (err) {
      logger.warn({ folder: `base/${partial}`, err }, 'could not remove what a base backup that did not complete left in the archive; it stays (it never counts as a base)');
    }
  }
}
