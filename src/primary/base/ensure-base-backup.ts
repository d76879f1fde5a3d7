import type { ArchiveFiles } from '../../archive/archive-files.js';
import { listBaseBackups, removeDeadPartialBases, type BaseBackupMetadata } from '../../archive/base-catalog.js';
import type { PrimaryConnection } from '../../config/load.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { BaseMethod } from '../../config/schema.js';
import { baseAbortedError } from './base-session.js';
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
  // A stopping agent starts nothing here (not even the cleanup below) and says why.
  if (deps.signal?.aborted === true) throw baseAbortedError();
  const existing = await listBaseBackups(files);
  const oldest = existing[0];
  if (oldest !== undefined) return { base: oldest, created: false };
  // What interrupted backups left: on a `remote` archive's standby here (a `file` archive's
  // session already did this when it opened).
  await removeDeadPartialBases(files, deps.logger);
  deps.logger.info({ method: deps.method }, 'the archive holds no base backup; taking one');
  return { base: await takeBase(deps.method, { primary, files, clock: deps.clock, logger: deps.logger, ...(deps.signal === undefined ? {} : { signal: deps.signal }) }), created: true };
}
