import { markBaseInProgress, type BaseBackupMetadata } from '../../archive/base-catalog.js';
import type { BaseMethod } from '../../config/schema.js';
import { whenAborted } from '../../platform/when-aborted.js';
import { takeBaseBackup, type TakeBaseBackupOptions } from './take-base-backup.js';
import { takePhysicalBaseBackup } from './take-physical-base-backup.js';

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
