import type { ArchiveFiles } from '../../archive/archive-files.js';
import { baseInProgress, listBaseBackups, listPartialBaseBackups, type BaseBackupMetadata } from '../../archive/base-catalog.js';
import type { PrimaryConnection } from '../../config/load.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { BaseMethod } from '../../config/schema.js';
import { takeBase } from './take-base.js';

/**
 * Makes sure an archive holds a base backup: returns its oldest complete one, or takes one
 * now (removing what an interrupted backup left). The agent calls this before it dumps binlog
 * into an archive; an archive without binlog then starts at the base's file, position 4, so
 * that the archive keeps whole files from the one holding the base coordinates.
 */
export async function ensureBaseBackup(
  files: ArchiveFiles,
  primary: PrimaryConnection,
  deps: { clock: Clock; logger: Logger; method: BaseMethod; signal?: AbortSignal },
): Promise<{ base: BaseBackupMetadata; created: boolean }> {
  const existing = await listBaseBackups(files);
  const oldest = existing[0];
  if (oldest !== undefined) return { base: oldest, created: false };
  // What an interrupted backup left, unless a base runs in this process now (an operator's
  // `hotspare base` through this agent may be writing one); best effort, never keeping the
  // replica from streaming.
  if (!baseInProgress()) {
    for (const partial of await listPartialBaseBackups(files)) {
      await files.remove(`base/${partial}`).catch((err: unknown) => deps.logger.warn({ folder: `base/${partial}`, err }, 'could not remove what a base backup that did not complete left in the archive'));
    }
  }
  deps.logger.info({ method: deps.method }, 'the archive holds no base backup; taking one');
  return { base: await takeBase(deps.method, { primary, files, clock: deps.clock, logger: deps.logger, ...(deps.signal === undefined ? {} : { signal: deps.signal }) }), created: true };
}
