import { withClientDefaultsFile, type ClientCredentials } from '../platform/client-defaults-file.js';
import type { Logger } from '../platform/logger.js';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { listBaseBackups } from '../archive/base-catalog.js';
import { assert } from '../core/assert.js';
import { restoreBase } from './base-restore.js';
import { replayBinlog } from './binlog-replay.js';
import { planPromotion, type PromotionPlan } from './promotion-plan.js';
import type { TargetSpec } from './stop-point.js';
import { TargetServer } from './target-server.js';

export interface PromoteOptions {
  archiveRoot: string;
  target: TargetSpec;
  credentials: ClientCredentials;
  /** How the target is named in messages (never with its password). */
  targetDescription: string;
  replace: boolean;
  dryRun: boolean;
  filesRoot: string | undefined;
  logger: Logger;
  /**
   * Spool-file restore (issue 5): called after replay, before the server becomes writable,
   * with the plan (its `spoolPoint` says as of when). Absent: the step is reported as skipped.
   */
  restoreSpoolFiles?: (plan: PromotionPlan, filesRoot: string) => Promise<void>;
}

/**
 * `hotspare promote`: plan (all checks, nothing changed), then restore the base, replay the
 * binlog to the stop point, restore spool files, and make the server writable. Returns the
 * plan, which is also the report.
 */
export async function promote(options: PromoteOptions): Promise<PromotionPlan> {
  const log = options.logger.child({ component: 'promote' });
  const server = await TargetServer.connect(options.credentials, options.targetDescription);
  try {
    const plan = await planPromotion({ archiveRoot: options.archiveRoot, target: options.target, server, replace: options.replace, filesRoot: options.filesRoot });
    if (options.restoreSpoolFiles !== undefined && options.filesRoot !== undefined) {
      const step = plan.steps.find((s) => s.name === 'restore-spool-files');
      if (step !== undefined) Object.assign(step, { run: true, detail: `restore files/ into ${options.filesRoot} as of ${plan.spoolPoint.commitTime ?? 'the base'}` });
    }
    log.info({ base: plan.base.id, stopAt: plan.stopAt, replayBytes: plan.replayBytes, dryRun: options.dryRun }, 'promotion planned');
    if (options.dryRun) return plan;

    const base = (await listBaseBackups(new LocalArchiveFiles(options.archiveRoot))).find((b) => b.id === plan.base.id);
    assert(base !== undefined, 'the planned base exists');
    for (const name of plan.replaceDatabases) await server.dropDatabase(name);
    await withClientDefaultsFile(options.credentials, async (defaultsFile) => {
      await restoreBase(options.archiveRoot, base, defaultsFile);
      log.info({ base: base.id }, 'base restored');
      await replayBinlog(options.archiveRoot, plan.replay, defaultsFile);
      log.info({ stopAt: plan.stopAt }, 'binlog replayed');
    });
    if (options.restoreSpoolFiles !== undefined && options.filesRoot !== undefined) await options.restoreSpoolFiles(plan, options.filesRoot);
    await server.setReadOnly(false);
    log.info('promotion complete; the server is writable');
    return plan;
  } finally {
    await server.close();
  }
}
