import { rm } from 'node:fs/promises';
import { withClientDefaultsFile, type ClientCredentials } from '../platform/client-defaults-file.js';
import type { Logger } from '../platform/logger.js';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { listBaseBackups } from '../archive/base-catalog.js';
import { assert } from '../core/assert.js';
import { errorMessage, HotspareError } from '../core/errors.js';
import { restoreBase } from './base-restore.js';
import { replayBinlog } from './binlog-replay.js';
import { runPromotionHooks, type HookResult, type HookTarget } from './promotion-hooks.js';
import { likelyBase, plannedSources, planPromotion, type PromotionPlan } from './promotion-plan.js';
import { restoreSpool, type SpoolRestoreResult } from './spool-restore.js';
import type { TargetSpec } from './stop-point.js';
import { TargetServer } from './target-server.js';
import { planPhysicalRestore, stagePhysicalBase, startTarget, stopOnceStaged, swapDatadir, type PhysicalStaging, type StreamExtractor } from './physical-restore.js';
import { readArchiveIdentity, samePrimary } from '../archive/archive-identity.js';
import { writePromotionFence } from '../archive/promotion-fence.js';
import { isLockWaitTimeout } from '../primary/mysql-error.js';
import { childLogger } from '../platform/logger.js';
import { SERVER_START_JITTER_S, SETTINGS_PATH, clearSettings, leftSettings, recordSettings } from './promote-settings.js';

export interface PromoteOptions {
  archiveRoot: string;
  target: TargetSpec;
  credentials: ClientCredentials;
  /** How the target is named in messages (never with its password). */
  targetDescription: string;
  /** The --target URL as given, without its password (HOTSPARE_TARGET for the hooks); made from `credentials` when absent. */
  targetUrl?: string | undefined;
  replace: boolean;
  dryRun: boolean;
  /** Restore spool sources under DIR/<source name>/ instead of their original paths. */
  filesRoot: string | undefined;
  /** A physical base: the target's datadir (--target-datadir) and how to start it (--target-start). */
  targetDatadir?: string | undefined;
  targetStart?: string | undefined;
  /** Who extracts a physical base's stream (--extractor; hotspare's reader by default). */
  extractor?: StreamExtractor | undefined;
  /** How long a statement of the promotion waits for locks other sessions hold (DEFAULT_PROMOTE_LOCK_WAIT_TIMEOUT_S). */
  lockWaitSeconds?: number | undefined;
  /** --no-hooks: restore everything, run no post-promotion hook (a rehearsal into a scratch server). */
  skipHooks?: boolean | undefined;
  /** --fence: a failover; the archive is fenced against its old primary once the target is writable (promotion-fence.ts). */
  fence?: boolean | undefined;
  logger: Logger;
}

/** The plan, and what the file steps did (empty on a dry run). */
export interface PromotionReport extends PromotionPlan {
  filesRestored: SpoolRestoreResult[];
  hooks: HookResult[];
  /**
   * What the mariadb client said of the primary's accounts and grants it could not restore
   * (BASE_ACCOUNTS_PARTLY: a plugin or a grantee the standby lacks); undefined when all were.
   */
  accountsNotRestored?: string | undefined;
  /** Why state/promoted.json could not be written (ARCHIVE_NOT_FENCED); undefined when it was, or was not to be. */
  fenceNotWritten?: string | undefined;
}

/**
 * Fences the archive once the target is the primary (promotion-fence.ts). A promotion from an
 * archive that cannot be written (a read-only snapshot, a copy) is no less complete: it warns,
 * since the old primary's agent could then still stream into the archive it was promoted from.
 */
async function fenceArchive(options: PromoteOptions, plan: PromotionPlan, log: Logger): Promise<string | undefined> {
  const last = plan.lastTransaction;
  try {
    await writePromotionFence(options.archiveRoot, {
      promotedAt: new Date().toISOString(),
      target: options.targetDescription,
      stopAt: plan.stopAt,
      ...(last?.gtid ? { gtid: last.gtid } : {}),
    });
    log.info({ archive: options.archiveRoot }, "archive fenced: its primary's agent is refused from now on (ARCHIVE_PROMOTED)");
    return undefined;
  } catch (err) {
    const why = errorMessage(err);
    log.warn({ code: 'ARCHIVE_NOT_FENCED', err }, `the archive could not be fenced (${why}): an agent of its old primary could still stream into it`);
    return why;
  }
}

/**
 * `hotspare promote`: plan (all checks, nothing changed), then restore the base, replay the
 * binlog to the stop point, restore the spool files as of the same point, make the server
 * writable, and run the post-promotion hooks. Returns the plan with what the steps did.
 */
export async function promote(options: PromoteOptions): Promise<PromotionReport> {
  const damagedWhileStaging = new Map<string, string>();
  for (;;) {
    try {
      return await promoteOnce(options, damagedWhileStaging);
    } catch (err) {
      // A physical base whose stream fails its checks while it is staged is found before the
      // target is touched (the checks pass before the server is stopped): plan again without it,
      // as the plan passes over a damaged base it checks itself.
      if (!(err instanceof StagedBaseDamaged)) throw err;
      damagedWhileStaging.set(err.baseId, err.cause.message);
      options.logger.warn({ code: 'BASE_DAMAGED', base: err.baseId }, `base backup ${err.baseId} is damaged (${err.cause.message}); planning again without it`);
    }
  }
}

/** A staged physical base failed its checks; the target is unchanged. */
class StagedBaseDamaged extends Error {
  constructor(
    readonly baseId: string,
    override readonly cause: HotspareError,
  ) {
    super(cause.message);
  }
}

async function promoteOnce(options: PromoteOptions, damagedWhileStaging: ReadonlyMap<string, string>): Promise<PromotionReport> {
  const log = childLogger(options.logger, { component: 'promote' });
  let lockUnsupportedSaid = false;
  // Every connection of a promotion holds the target's promotion lock (a dry run changes nothing
  // and takes none): the first for the whole run, one after a physical restore's restart again.
  const connect = async (): Promise<TargetServer> => {
    const target = await TargetServer.connect(options.credentials, options.targetDescription, options.lockWaitSeconds);
    if (options.dryRun) return target;
    try {
      if ((await target.claimPromotion()) === 'unsupported' && !lockUnsupportedSaid) {
        lockUnsupportedSaid = true;
        log.warn({ code: 'PROMOTE_LOCK_UNSUPPORTED', hint: 'make sure no other hotspare promote runs into this target' }, 'the target has no GET_LOCK (a Galera node): a second promotion into it at the same time is not refused');
      }
    } catch (err) {
      await target.close();
      throw err;
    }
    return target;
  };
  let server = await connect();
  let early: EarlyStaging | undefined;
  /**
   * The target was made read-only for the restore, and what read_only was before: a promotion
   * that fails before it changed anything puts it back; one that fails after leaves it on.
   */
  let readOnlyWas: boolean | undefined;
  /** The target's data has been touched (a database dropped, a restore begun, its datadir swapped). */
  let changed = false;
  /** A physical restore stops the server: a read_only set at runtime does not outlive that. */
  let serverRestarts = false;
  /** The accounts the base restore could not take (see PromotionReport). */
  let accountsNotRestored: string | undefined;
  try {
    log.info({ archive: options.archiveRoot }, 'planning the promotion');
    // Never a refusal of its own: whatever stops it, the plan reports in its order.
    early = options.dryRun ? undefined : await stageLikelyBase(options, server, log, damagedWhileStaging).catch(() => undefined);
    const plan = await planPromotion({
      archiveRoot: options.archiveRoot,
      target: options.target,
      server,
      replace: options.replace,
      filesRoot: options.filesRoot,
      targetDatadir: options.targetDatadir,
      targetStart: options.targetStart,
      extractor: options.extractor,
      checksumsWhileStaging: !options.dryRun,
      damagedWhileStaging,
      skipHooks: options.skipHooks === true,
      fence: options.fence === true,
      logger: log,
    });
    log.info({ base: plan.base.id, method: plan.base.method, stopAt: plan.stopAt, replayBytes: plan.replayBytes, dryRun: options.dryRun }, 'promotion planned');
    if (options.dryRun) return { ...plan, filesRestored: [], hooks: [] };

    const base = (await listBaseBackups(new LocalArchiveFiles(options.archiveRoot))).find((b) => b.id === plan.base.id);
    assert(base !== undefined, 'the planned base exists');
    const physical = plan.physical;
    const staged = early !== undefined && early.baseId === base.id && early.folder === physical?.staging ? early : undefined;
    if (staged === undefined) await early?.abandon();
    // Used or abandoned: nothing is left for the finally below to remove.
    early = undefined;
    // Until the promotion completes, applications that reach the target (a failover script that
    // moved them early, a pool reconnecting) must not write into a half-restored database: the
    // target is read-only from its first change on (a refused or damaged base changes nothing),
    // and the promotion's own sessions (SUPER, or READ_ONLY ADMIN, which setting read_only needs
    // anyway) write on. A failed promotion leaves it read-only.
    /** Makes the target read-only; resolves with whether it already was. */
    const readOnlyUntilDone = async (): Promise<boolean> => {
      const was = await server.readOnly();
      await server.setReadOnly(true);
      readOnlyWas ??= was;
      return was;
    };
    if (physical !== undefined) {
      // Prepared beside the datadir while the server still runs: it is down only for the swap.
      const staging = staged?.staging ?? stagePhysicalBase(options.archiveRoot, base, physical, log);
      // Every check passes before the server is stopped: a damaged stream leaves it untouched.
      await staging.checked.catch((err: unknown) => {
        if (err instanceof HotspareError && err.code === 'BASE_DAMAGED') throw new StagedBaseDamaged(base.id, err);
        throw err;
      });
      await readOnlyUntilDone();
      // From here the server may be stopped and started again on its own datadir (a copy that
      // could not be made durable): its read_only is then what its config says.
      serverRestarts = true;
      await stopOnceStaged(staging, server, physical, connect, log);
      log.info({ base: base.id, staging: physical.staging }, 'physical base prepared');
      changed = true;
      await swapDatadir(physical);
      log.warn({ datadir: physical.datadir, previous: physical.previous }, 'datadir replaced; the previous one is kept');
      server = await startTarget(physical, connect);
      // Started from the primary's datadir with its own config: read-only again at once. A
      // server that came up writable could take writes from whoever reached it first until then (a
      // pool reconnecting as soon as the port answers): say so, since the start command can
      // close that window and only the operator can change it.
      if (!(await readOnlyUntilDone())) {
        log.warn(
          { code: 'TARGET_STARTED_WRITABLE', hint: 'start the target read-only in --target-start (mariadbd --read-only; with systemd: systemctl set-environment MYSQLD_OPTS=--read-only before the start, unset-environment after; README: physical bases)' },
          'the target answered writable after its start, until promote made it read-only: an application that reached it first could have written into the restored base',
        );
      }
      log.info('target server started on the restored datadir');
    } else {
      await readOnlyUntilDone();
      // Without --replace only empty databases are dropped: still empty, all of them, now that
      // the target is read-only? (An application's account with SUPER writes on; one may have
      // created a table in one since the plan.) All are checked before any is dropped.
      if (!options.replace && plan.replaceDatabases.length > 0) {
        const empty = await server.emptyDatabases(plan.replaceDatabases);
        const filled = plan.replaceDatabases.filter((name) => !empty.has(name));
        if (filled.length > 0) {
          throw new HotspareError('TARGET_NOT_EMPTY', `the target ${server.describe} now holds tables in ${filled.join(', ')}, empty when the promotion was planned`, {
            hint: 'stop what writes to the standby, or pass --replace to drop those databases first',
          });
        }
      }
      for (const name of plan.replaceDatabases) {
        try {
          await server.dropDatabase(name);
        } catch (err) {
          // A lock wait that timed out dropped nothing (the server locks every table of the
          // database before it drops one); any other failure may have dropped some.
          if (!isLockWaitTimeout(err)) changed = true;
          throw err;
        }
        changed = true;
      }
    }
    // The target's settings this promotion changes for the restore and replay, put back however
    // it ends: on success, on failure, and when interrupted (Ctrl-C, a service manager's
    // SIGTERM) at any moment from the first change, the base restore included. A server left
    // with innodb_flush_log_at_trx_commit at 2 would be promoted later with commits that are not
    // durable one by one (and the next promote would take 2 for the operator's own choice); one
    // left with its event scheduler off runs no events.
    // Recorded in the archive before any of them changes, and put back first when an interrupted
    // promotion into this server left them changed (promote-settings.ts).
    const settingsKey = await server.settingsKey();
    const left = await leftSettings(options.archiveRoot, settingsKey).catch((err: unknown) => {
      log.warn({ err, code: 'PROMOTE_SETTINGS_UNREAD' }, `could not read ${SETTINGS_PATH} in the archive: settings an interrupted promotion left changed on the target are not put back`);
      return undefined;
    });
    const current = await server.readSettings();
    // SET GLOBAL does not outlive a restart: a record from before the server's last start (a
    // physical restore's, the server restarted by hand since) speaks of values long gone.
    const fresh = left !== undefined && Math.abs((left.settings.startedS ?? 0) - current.startedS) <= SERVER_START_JITTER_S ? left : undefined;
    if (left !== undefined && fresh === undefined) log.info({ savedAt: left.savedAt }, 'a settings record of an interrupted promotion into this target predates its last start: its settings are the server\'s own again, and the record is replaced');
    if (fresh !== undefined) {
      const putBackNow = await server.applySettings(fresh.settings, current);
      log.warn(
        { code: 'PROMOTE_SETTINGS_RESTORED', savedAt: fresh.savedAt, settings: fresh.settings, changed: putBackNow },
        `a promotion into this target that was interrupted (recorded ${fresh.savedAt}) had changed its settings: ${putBackNow.length === 0 ? 'they were back already' : `put back: ${putBackNow.join(', ')}`}`,
      );
    }
    const settingsRecorded = await recordSettings(options.archiveRoot, { server: settingsKey, target: options.targetDescription, savedAt: new Date().toISOString(), settings: fresh === undefined ? current : await server.readSettings() }).then(
      () => true,
      (err: unknown) => {
        log.warn({ err, code: 'PROMOTE_SETTINGS_UNRECORDED', hint: 'should this promotion be killed, check event_scheduler, max_allowed_packet and innodb_flush_log_at_trx_commit on the target by hand' }, `could not record the target's settings in ${SETTINGS_PATH} (a read-only archive?): a promotion killed now would leave them changed, and the next could not tell`);
        return false;
      },
    );
    const held: Array<{ what: string; hint: string; restore: () => Promise<void> }> = [];
    /** The change under way, if any: an interruption waits for it, so that it is put back too. */
    let changing: Promise<unknown> = Promise.resolve();
    const hold = <T extends { restore: () => Promise<void> }>(what: string, hint: (h: T) => string, change: Promise<T>): Promise<T> => {
      const recorded = change.then((h) => {
        held.push({ what, hint: hint(h), restore: h.restore });
        return h;
      });
      changing = recorded.catch(() => undefined);
      return recorded;
    };
    /** Some setting could not be put back: the record stays, for the next promotion. */
    let notPutBack = false;
    /**
     * One run of it, however often asked: the signal handler and the finally below may both ask
     * (an interrupt also ends the restore's client, so the finally comes early), and a second
     * run found nothing held and cleared the record while the first was still restoring.
     */
    let puttingBack: Promise<void> | undefined;
    const putBack = (): Promise<void> =>
      (puttingBack ??= (async () => {
        for (const h of held.splice(0).reverse()) {
          await h.restore().catch((err: unknown) => {
            notPutBack = true;
            log.error({ err }, `could not put ${h.what} back; ${h.hint}`);
          });
        }
        // Back as they were: the record goes (kept when one could not be put back, for the next run).
        if (!notPutBack && settingsRecorded) await clearSettings(options.archiveRoot, settingsKey).catch((err: unknown) => log.warn({ err }, `could not remove ${SETTINGS_PATH} from the archive; the next promotion into this target puts its settings back again, which changes nothing`));
      })());
    const interrupted = (signal: NodeJS.Signals): void => {
      log.warn({ signal }, "interrupted during the restore or replay; putting the target's settings back before exiting");
      void changing
        .then(putBack)
        .finally(() => {
          // The default action now: the process ends as the signal asked.
          process.off('SIGINT', interrupted);
          process.off('SIGTERM', interrupted);
          process.kill(process.pid, signal);
        });
    };
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    try {
      // Events stay off while the data is made the primary's (from a physical base the server has
      // just started on the restored datadir: an event due in that moment may have run).
      const scheduler = await hold('the event scheduler', () => 'SET GLOBAL event_scheduler = ON on the target', server.pauseEventScheduler());
      if (scheduler.paused) log.info('event scheduler off during the restore and replay');
      const packet = await hold('max_allowed_packet', (h) => `SET GLOBAL max_allowed_packet = ${h.was} on the target`, server.raiseMaxAllowedPacket());
      if (packet.raised) log.info({ was: packet.was }, 'max_allowed_packet raised to 1 GiB during the restore and replay');
      await withClientDefaultsFile(options.credentials, async (defaultsFile) => {
        changed = true;
        if (physical === undefined) accountsNotRestored = (await restoreBase(options.archiveRoot, base, defaultsFile, log)).accountsNotRestored;
        log.info({ base: base.id }, 'base restored');
        // The replayed commits are made durable once, at the end, not one by one (a failed replay
        // is done again from the base).
        const flush = await hold('innodb_flush_log_at_trx_commit', () => 'set it on the target by hand', server.relaxCommitFlush());
        await replayBinlog(options.archiveRoot, plan.replay, defaultsFile);
        // Put back here, not with the others: a server that would stay at 2 fails the promotion.
        const at = held.findIndex((h) => h.restore === flush.restore);
        if (at >= 0) held.splice(at, 1);
        await flush.restore().catch((err: unknown) => {
          notPutBack = true;
          throw err;
        });
        log.info({ stopAt: plan.stopAt }, 'binlog replayed');
        // Best effort: the data is whole without it; a server that refuses it (replication
        // threads of its own running) keeps its positions, and the log says so.
        try {
          const gtidSlavePos = await server.adoptReplayedGtids();
          if (gtidSlavePos !== undefined) log.info({ gtidSlavePos }, "gtid_slave_pos set to the replayed binlog's GTIDs: gtid_current_pos holds them");
        } catch (err) {
          log.warn({ err, code: 'GTID_POS_NOT_SET' }, "gtid_slave_pos could not be set to the replayed binlog's GTIDs: a base taken on this server records no GTID for them, and a replica set up with MASTER_USE_GTID=current_pos from it must be given its position by hand");
        }
      });
    } finally {
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      // The operator's settings, whether the promotion got this far or failed on the way.
      await putBack();
    }
    // Each source as of the point the plan found before the replay: a receiver still running
    // may have recorded later changes since, whose transactions the replay did not include.
    const planned = plannedSources(plan.files);
    const filesRestored =
      plan.files.sources.length === 0
        ? []
        : await restoreSpool({ archiveDir: options.archiveRoot, untilMs: plan.files.untilMs, plan: planned, stopBeforeDamage: plan.files.stopBeforeDamage, filesRoot: options.filesRoot, logger: log });
    await server.setReadOnly(false);
    // Writable and complete: a hook failing after this must not be reported as a partial restore.
    readOnlyWas = undefined;
    log.info('promotion complete; the server is writable');
    const fenceNotWritten = plan.steps.some((s) => s.name === 'fence-archive' && s.run) ? await fenceArchive(options, plan, log) : undefined;
    // Hooks run last: they may read the promoted database (a gateway's highest message id).
    const last = plan.lastTransaction;
    if (options.skipHooks === true) log.info('post-promotion hooks not run (--no-hooks)');
    const hooks = options.skipHooks === true ? [] : await runPromotionHooks({
      archiveDir: options.archiveRoot,
      restorePoint: {
        // The point the database and the files were both restored as of (RestorePoint.timeMs):
        // to the end, not the last commit alone when a restored file changed after it.
        timeMs: plan.files.untilMs ?? Math.max(0, ...filesRestored.map((r) => r.pointMs), last === undefined ? 0 : Date.parse(last.commitTime)),
        commitTimeMs: last === undefined ? undefined : Date.parse(last.commitTime),
        file: plan.stopAt.file,
        position: plan.stopAt.position,
        gtid: last?.gtid,
      },
      filesRoot: options.filesRoot,
      target: hookTarget(options),
      notRestored: new Set(filesRestored.filter((r) => r.skipped !== undefined).map((r) => r.name)),
      logger: log,
    });
    return { ...plan, filesRestored, hooks, ...(accountsNotRestored === undefined ? {} : { accountsNotRestored }), ...(fenceNotWritten === undefined ? {} : { fenceNotWritten }) };
  } catch (err) {
    if (readOnlyWas !== undefined && changed) log.warn('the target stays read-only (read_only = ON) after the failed promotion: it is partly restored; promote again with --replace');
    else if (readOnlyWas !== undefined && serverRestarts) log.warn('the promotion failed once the target was being stopped: its data is unchanged, and a server started again takes read_only from its config');
    else if (readOnlyWas !== undefined) {
      // Nothing of the target's data was touched: its read_only is put back as it was.
      const was = readOnlyWas;
      await server.setReadOnly(was).then(
        () => log.info({ readOnly: was }, 'the promotion failed before changing the target; its read_only is as it was'),
        (restoreErr: unknown) => log.error({ err: restoreErr }, `the promotion failed before changing the target, and its read_only could not be put back; SET GLOBAL read_only = ${was ? 'ON' : 'OFF'} on it`),
      );
    }
    throw err;
  } finally {
    // A staged copy the promotion did not get to use (the plan failed) is removed.
    await early?.abandon();
    await server.close();
  }
}

/** The promoted server as the hooks see it: never its password. */
function hookTarget(options: PromoteOptions): HookTarget {
  const c = options.credentials;
  const url =
    options.targetUrl ??
    (c.socketPath !== undefined
      ? `mysql://${encodeURIComponent(c.user)}@localhost?socket=${c.socketPath}`
      : `mysql://${encodeURIComponent(c.user)}@${c.host?.includes(':') === true ? `[${c.host}]` : (c.host ?? '127.0.0.1')}:${c.port ?? 3306}`);
  return { url, user: c.user, host: c.host, port: c.port, socketPath: c.socketPath };
}

/** A physical base being staged while the plan is still being made. */
interface EarlyStaging {
  baseId: string;
  /** The staging folder. */
  folder: string;
  staging: PhysicalStaging;
  /** Stops it and removes its staging folder. */
  abandon: () => Promise<void>;
}

/**
 * Starts extracting and preparing the physical base the plan will most likely choose, so that
 * the archive's scan (every event's CRC32) runs beside it instead of before it. Only when the
 * staging folder is safe to write: the archive is one, the target is not its primary, and the
 * target passes the physical restore's own checks. Nothing of the target changes: promote uses
 * the staged copy only if the finished plan chose that base, and abandons it otherwise (or when
 * the plan fails), which removes it.
 */
async function stageLikelyBase(options: PromoteOptions, server: TargetServer, log: Logger, damaged: ReadonlyMap<string, string>): Promise<EarlyStaging | undefined> {
  const identity = await readArchiveIdentity(options.archiveRoot);
  if (identity === undefined || samePrimary(identity.primary, await server.identity())) return undefined;
  const base = likelyBase((await listBaseBackups(new LocalArchiveFiles(options.archiveRoot))).filter((b) => !damaged.has(b.id)), options.target);
  if (base === undefined || base.method !== 'physical-mariabackup') return undefined;
  // A refusal here is the plan's to report, in its order.
  const plan = await planPhysicalRestore({ base, server, datadir: options.targetDatadir, startCommand: options.targetStart, replace: options.replace, nowMs: Date.now(), extractor: options.extractor }).catch(() => undefined);
  if (plan === undefined) return undefined;
  log.info({ base: base.id, staging: plan.staging }, 'staging the likely physical base while the archive is verified');
  const controller = new AbortController();
  const staging = stagePhysicalBase(options.archiveRoot, base, plan, log, controller.signal);
  return {
    baseId: base.id,
    folder: plan.staging,
    staging,
    abandon: async () => {
      controller.abort(new Error('the plan chose another base'));
      await staging.durable.catch(() => undefined);
      // A staging that had already finished when the plan failed (or chose another base) is
      // a whole prepared copy of the datadir: removed too, not left beside the target's datadir.
      await rm(plan.staging, { recursive: true, force: true });
    },
  };
}
