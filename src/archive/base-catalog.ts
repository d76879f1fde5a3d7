import type { BinlogPosition } from '../core/binlog-position.js';
import type { ArchiveFiles } from './archive-files.js';

export const BASE_FORMAT_VERSION = 1;
/** A base backup is written under `base/<id>.partial/` and renamed to `base/<id>/` only when complete. */
export const BASE_PARTIAL_SUFFIX = '.partial';
export const BASE_METADATA_FILE = 'metadata.json';

/** One file of a base backup, with what verify checks. */
export interface BaseFileEntry {
  name: string;
  /** schema: CREATE statements (mariadb-dump); data: rows; triggers: loaded after the rows. */
  role: 'schema' | 'data' | 'triggers';
  bytes: number;
  sha256: string;
}

/** `base/<id>/metadata.json`: everything needed to restore the base and continue from it. */
export interface BaseBackupMetadata {
  formatVersion: number;
  id: string;
  /** logical-exact: mariadb-dump schema + rows rendered exactly by hotspare (gzip SQL). */
  method: 'logical-exact';
  startedAt: string;
  finishedAt: string;
  /** The snapshot's binlog coordinates: replay continues here. */
  binlog: BinlogPosition;
  /** @@gtid_binlog_pos at the snapshot (MariaDB), '' when the server has no GTIDs yet. */
  gtidBinlogPos: string;
  /** How long the global read lock was held (ms): non-transactional tables and the schema. */
  lockHeldMs: number;
  server: { version: string; serverId: number; hostname: string };
  tool: { name: 'hotspare'; version: string; schemaDump: string };
  databases: string[];
  tables: Array<{ schema: string; name: string; engine: string; rows: number; consistency: 'locked' | 'snapshot' }>;
  /** In restore order. */
  files: BaseFileEntry[];
}

/** Time-sortable base id: UTC time to the millisecond, e.g. 20261122T100001.250Z. */
export function baseIdFor(nowMs: number): string {
  return new Date(nowMs).toISOString().replace(/[-:]/g, '');
}

/** The complete base backups of an archive, oldest first. Partial folders are not listed. */
export async function listBaseBackups(files: ArchiveFiles): Promise<BaseBackupMetadata[]> {
  const result: BaseBackupMetadata[] = [];
  for (const name of await files.list('base')) {
    if (name.endsWith(BASE_PARTIAL_SUFFIX)) continue;
    const raw = await files.readFile(`base/${name}/${BASE_METADATA_FILE}`);
    if (raw === undefined) continue;
    const meta = JSON.parse(raw.toString('utf8')) as BaseBackupMetadata;
    if (meta.formatVersion !== BASE_FORMAT_VERSION || meta.id !== name) continue;
    result.push(meta);
  }
  return result.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** Folders left by an interrupted backup; they never count as a base and can be removed. */
export async function listPartialBaseBackups(files: ArchiveFiles): Promise<string[]> {
  return (await files.list('base')).filter((name) => name.endsWith(BASE_PARTIAL_SUFFIX));
}
