import type { Logger } from '../platform/logger.js';
import { plannedSources, planFilesOnly, type FilesOnlyPlan } from './promotion-plan.js';
import { restoreSpool, type SpoolRestoreResult } from './spool-restore.js';
import type { TargetSpec } from './stop-point.js';
import { childLogger } from '../platform/logger.js';

export interface FilesOnlyOptions {
  archiveRoot: string;
  target: TargetSpec;
  /** Restore each source under DIR/<source name>/ instead of its original path. */
  filesRoot: string | undefined;
  /** Only these sources (all when absent). */
  sources?: readonly string[] | undefined;
  dryRun: boolean;
  logger: Logger;
}

/** The plan, and what the restore did (empty on a dry run). */
export interface FilesOnlyReport extends FilesOnlyPlan {
  filesRestored: SpoolRestoreResult[];
}

/**
 * `hotspare promote --files-only`: the spool files alone, as of the point a promotion to
 * `target` restores them, with no database touched and no hook run. For the files of a
 * promotion whose file step failed (a full volume, a path in the way), once the cause is
 * mended, or for a copy elsewhere (--files-root).
 */
export async function restoreFilesOnly(options: FilesOnlyOptions): Promise<FilesOnlyReport> {
  const log = childLogger(options.logger, { component: 'promote', filesOnly: true });
  const plan = await planFilesOnly({ archiveRoot: options.archiveRoot, target: options.target, filesRoot: options.filesRoot, sources: options.sources, logger: log });
  if (options.dryRun) return { ...plan, filesRestored: [] };
  const filesRestored =
    plan.files.sources.length === 0
      ? []
      : await restoreSpool({ archiveDir: options.archiveRoot, untilMs: plan.files.untilMs, plan: plannedSources(plan.files), stopBeforeDamage: plan.files.stopBeforeDamage, filesRoot: options.filesRoot, sources: plan.files.sources.map((s) => s.name), logger: log });
  return { ...plan, filesRestored };
}
