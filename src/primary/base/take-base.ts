import type { BaseBackupMetadata } from '../../archive/base-catalog.js';
import type { BaseMethod } from '../../config/schema.js';
import { takeBaseBackup, type TakeBaseBackupOptions } from './take-base-backup.js';
import { takePhysicalBaseBackup } from './take-physical-base-backup.js';

/** The one switch on the base method (config `base.method`, `hotspare base --method`). */
export function takeBase(method: BaseMethod, options: TakeBaseBackupOptions): Promise<BaseBackupMetadata> {
  return method === 'physical' ? takePhysicalBaseBackup(options) : takeBaseBackup(options);
}
