import { markBaseInProgress, type BaseBackupMetadata } from '../../archive/base-catalog.js';
import type { BaseMethod } from '../../config/schema.js';
import { whenAborted } from '../../platform/when-aborted.js';
import { takeBaseBackup, type TakeBaseBackupOptions } from './take-base-backup.js';
import { takePhysicalBaseBackup } from './take-physical-base-backup.js';
import { compareBinlogNames } from '../../archive/archive-layout.js';
import type { PrimaryConnection } from '../../config/load.js';
import { HotspareError } from '../../core/errors.js';
import { MysqlProbe } from '../mysql-probe.js';

/**
 * The one switch on the base method (config `base.method`, `hotspare base --method`). The base
 * gets a signal of its own, linked once to the caller's: its sessions and tools listen to that
 * one, so an agent's signal shared by every base holds one listener per base, not one per tool.
 */
export async function takeBase(method: BaseMethod, options: TakeBaseBackupOptions): Promise<BaseBackupMetadata> {
  const own = new AbortController();
  const stopListening = whenAborted(options.signal, () => own.abort());
  const release = markBaseInProgress();
  try {
    const run = { ...options, signal: own.signal };
    return await (method === 'physical' ? takePhysicalBaseBackup(run) : takeBaseBackup(run));
  } finally {
    release();
    stopListening();
  }
}

/**
 * A base is taken at the primary's head, on the primary's current timeline. One that does not
 * continue the archive's binlog (`archiveEnd`, where it ends) is another timeline: names that
 * started again (RESET MASTER, another server) leave the archive's end file missing on the
 * primary with older or equal names still there (a purge removes the oldest files first), or
 * present but shorter than the archive holds of it, or a head in an older file. A base of that
 * timeline in this archive would be restored with the other timeline's binlog of the same
 * names: refused before any work (`hotspare base`, by hand or through the agent).
 */
export async function refuseAnotherTimeline(primary: PrimaryConnection, archiveEnd: { file: string; position: number } | undefined): Promise<void> {
  if (archiveEnd === undefined) return;
  const probe = await MysqlProbe.connect(primary);
  const [files, head] = await Promise.all([probe.binlogFiles(), probe.head()]).finally(() => probe.close());
  const oldest = files[0]?.name;
  const same = files.find((f) => f.name === archiveEnd.file);
  // The size SHOW BINARY LOGS gives a file it cannot open is 0: not taken for a short file.
  const shorter = same !== undefined && same.sizeBytes > 0 && same.sizeBytes < archiveEnd.position;
  const restarted = (same === undefined && oldest !== undefined && compareBinlogNames(oldest, archiveEnd.file) <= 0) || compareBinlogNames(head.file, archiveEnd.file) < 0;
  if (restarted || shorter) {
    const why = shorter
      ? `the primary holds only ${same?.sizeBytes ?? 0} bytes of ${archiveEnd.file}, of which the archive holds ${archiveEnd.position} (a tail the primary lost in a crash, or another timeline): the archive has gone past the primary`
      : `the primary's binlog names started again: the archive holds ${archiveEnd.file}, and the primary ${same === undefined ? `has no such file (its oldest is ${oldest ?? 'none'})` : 'has it'}, writing ${head.file}`;
    throw new HotspareError('BINLOG_GAP', `${why}; a base of it would not fit this archive`, {
      hint: 'point the replica at a new, empty archive folder and take the base there; the old one keeps what it holds for promotion',
    });
  }
}
