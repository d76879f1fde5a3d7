import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalArchiveFiles, type ArchiveFiles } from '../../src/archive/archive-files.js';
import { spoolSourceSchema } from '../../src/config/schema.js';
import { systemClock, type Clock } from '../../src/platform/clock.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import type { ReaderPool } from '../../src/spool/reader-pool.js';
import { SpoolSyncer } from '../../src/spool/spool-syncer.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { describeTree, treeDiff } from './spool-tree-compare.js';
import type { SpoolTuning } from '../../src/spool/spool-tuning.js';

export interface LocalSyncerOptions {
  logger?: Logger;
  /** More of the source's config than its name and path (`exclude`, `retentionSeconds`, `blockBytes`). */
  source?: { exclude?: string[]; retentionSeconds?: number; blockBytes?: number };
  /** The archive's files, when not a LocalArchiveFiles of `archive` (one that fails, or is shared). */
  files?: ArchiveFiles;
  /** Merged over `{ watch: false }`: no watcher unless asked for. */
  tuning?: Partial<SpoolTuning>;
  /** The source's `appendOnly` globs. */
  appendOnly?: string[];
  clock?: Clock;
  beforeRead?: (path: string) => Promise<void> | void;
  /** The pool its reader comes from (the process's unless given). */
  readers?: ReaderPool;
}

/**
 * A real syncer of the folder `src`, as spool source `name`, into the local archive `archive`:
 * no watcher (unless `tuning` says so), the system clock, a silent logger unless given others.
 */
export function localSyncer(name: string, src: string, archive: string, options: LocalSyncerOptions = {}): SpoolSyncer {
  return new SpoolSyncer({
    source: spoolSourceSchema.parse({ ...options.source, name, path: src, appendOnly: options.appendOnly ?? [] }),
    files: options.files ?? new LocalArchiveFiles(archive),
    logger: options.logger ?? silentLogger(),
    clock: options.clock ?? systemClock,
    tuning: { watch: false, ...options.tuning },
    ...(options.beforeRead === undefined ? {} : { beforeRead: options.beforeRead }),
    ...(options.readers === undefined ? {} : { readers: options.readers }),
  });
}

/**
 * One full pass of a real syncer (no watcher) over `src` into the local archive `archive`, as
 * spool source `name`; resolves with the bytes it shipped once it has stopped.
 */
export async function syncOnce(name: string, src: string, archive: string, options: { logger?: Logger; tuning?: Partial<SpoolTuning> } = {}): Promise<number> {
  const syncer = localSyncer(name, src, archive, options);
  syncer.start();
  try {
    await syncer.syncNow();
    return syncer.snapshot().bytesShippedTotal;
  } finally {
    await syncer.stop();
  }
}

/** Packs of 16 blocks of the default 64 KiB, and no racy window: what archiveWithBlockInPieces ships with. */
export const PIECES_TUNING: Partial<SpoolTuning> = { packBytesMax: 16 * 64 * 1024, racyWindowMs: 0 };

/**
 * Source `feeds` at `src` (made here) shipped into `archive` in two sessions so that the last
 * block of `kept` (3 blocks and 1000 bytes, then 500 appended) is a block in pieces: its head in
 * pack 1, beside all of `dropped` (12 blocks), and a 500-byte piece in pack 2. Removing
 * `dropped` leaves pack 1 mostly dead, for compaction.
 */
export async function archiveWithBlockInPieces(src: string, archive: string): Promise<void> {
  await mkdir(src);
  await writeFile(join(src, 'kept'), randomBytes(3 * 64 * 1024 + 1000));
  await writeFile(join(src, 'dropped'), randomBytes(12 * 64 * 1024));
  await syncOnce('feeds', src, archive, { tuning: PIECES_TUNING });
  await appendFile(join(src, 'kept'), randomBytes(500));
  await syncOnce('feeds', src, archive, { tuning: PIECES_TUNING });
}

/**
 * Restores the archive's spool sources under `to` (each in `to/<source name>/`) and returns how
 * source `name` there differs from the folder `src` (empty when they are equal).
 */
export async function restoredDiff(archive: string, src: string, to: string, name: string): Promise<string[]> {
  await restoreSpool({ archiveDir: archive, filesRoot: to, logger: silentLogger() });
  return treeDiff(await describeTree(src), await describeTree(join(to, name)));
}

/**
 * The archive at `path`, every call of which waits until the test calls `open()`: an archive
 * slow to answer (a remote one reading a long journal).
 */
export function heldArchive(path: string): { files: ArchiveFiles; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const files = new Proxy(new LocalArchiveFiles(path), {
    get: (target, key) => {
      const v = Reflect.get(target, key) as unknown;
      return typeof v === 'function' ? async (...args: unknown[]) => (await opened, (v as (...a: unknown[]) => unknown).apply(target, args)) : v;
    },
  });
  return { files, open };
}
