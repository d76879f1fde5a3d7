import { markBaseInProgress, type BaseBackupMetadata } from '../../archive/base-catalog.js';
import type { BaseMethod } from '../../config/schema.js';
import { whenAborted } from '../../platform/when-aborted.js';
import { takeBaseBackup, type TakeBaseBackupOptions } from './take-base-backup.js';
import { takePhysicalBaseBackup } from './take-physical-base-backup.js';
import type { PrimaryConnection } from '../../config/load.js';
import { MysqlProbe } from '../mysql-probe.js';
import { timelineBreak } from './timeline-break.js';

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
 * A base is taken at the primary's head, on its current timeline: refused before any work when
 * that timeline does not continue the archive's binlog, which ends at `archiveEnd`
 * (timelineBreak; `hotspare base`, by hand or through the agent).
 */
export async function refuseAnotherTimeline(primary: PrimaryConnection, archiveEnd: { file: string; position: number } | undefined): Promise<void> {
  if (archiveEnd === undefined) return;
  const probe = await MysqlProbe.connect(primary);
  const files = await probe.binlogFiles().finally(() => probe.close());
  const broken = timelineBreak(files, archiveEnd);
  if (broken !== undefined) throw broken;
}
