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
 * A base is taken at the primary's head, which on one timeline is never behind what the
 * archive holds (`archiveEnd`, where its binlog ends): a head in an older file means the
 * primary's names started again (RESET MASTER, another server), and a base of that timeline in
 * this archive would be restored with the other timeline's binlog of the same names. Refused
 * before any work (`hotspare base`, by hand or through the agent).
 */
export async function refuseAnotherTimeline(primary: PrimaryConnection, archiveEnd: { file: string } | undefined): Promise<void> {
  if (archiveEnd === undefined) return;
  const probe = await MysqlProbe.connect(primary);
  const head = await probe.head().finally(() => probe.close());
  if (compareBinlogNames(head.file, archiveEnd.file) < 0) {
    throw new HotspareError('BINLOG_GAP', `the primary's binlog names started again: it writes ${head.file}, and the archive already holds ${archiveEnd.file}; a base of it would not fit this archive`, {
      hint: 'point the replica at a new, empty archive folder and take the base there; the old one keeps what it holds for promotion',
    });
  }
}
