import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { BehaviorSubject, filter, firstValueFrom, fromEvent, takeUntil, timeout, type Subscription } from 'rxjs';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import type { AgentConfig } from '../config/load.js';
import type { BaseMethod, ReplicaDefinition } from '../config/schema.js';
import { DEFAULT_ARCHIVE_VOLUME_CHECK_INTERVAL_MS, DEFAULT_CONTROL_SESSION_WAIT_MS, DEFAULT_DURABLE_POINTS_CAUGHT_UP_STEP_MS, DEFAULT_DURABLE_POINTS_SAVE_INTERVAL_MS, DEFAULT_HEAD_POLL_FAST_INTERVAL_MS, DEFAULT_LAST_HEARD_WRITE_INTERVAL_MS, DEFAULT_REPLICA_CHECK_TIMEOUT_MS, DEFAULT_RETRY_JITTER_RATIO, DEFAULT_STOP_SETTLE_MS } from '../config/defaults.js';
import { compareBinlogPositions } from '../core/binlog-position.js';
import { HotspareError } from '../core/errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { within } from '../platform/within.js';
import { binlogSource } from '../primary/binlog-source.js';
import { HeadPoller } from '../primary/head-poller.js';
import { MysqlProbe } from '../primary/mysql-probe.js';
import { BINLOG_DISABLED_HINT, notRetried } from '../primary/mysql-error.js';
import { baseAbortedError } from '../primary/base/base-session.js';
import { ensureBaseBackup } from '../primary/base/ensure-base-backup.js';
import { restartChainAfterPurge } from '../primary/base/restart-after-purge.js';
import { checkPrimaryContinuity } from '../primary/primary-continuity.js';
import { clearPrimaryBreak, type PrimaryBreak } from '../archive/primary-break.js';
import { refuseAnotherTimeline, takeBase } from '../primary/base/take-base.js';
import { checkPhysicalBasePrerequisites } from '../primary/base/take-physical-base-backup.js';
import { checkLogicalBasePrerequisites } from '../primary/base/take-base-backup.js';
import { replicaPipeline } from '../pipeline/replica-pipeline.js';
import { createReplicaTarget } from '../replica/create-replica-target.js';
import type { ReplicaSession } from '../replica/replica-target.js';
import { ReplicaSpool } from '../spool/replica-spool.js';
import { baseResult, type BaseResult } from './control-protocol.js';
import { LagMonitor } from './lag-monitor.js';
import { VolumePoller } from '../platform/volume-poller.js';
import { LastHeardRecorder } from './last-heard-recorder.js';
import { ReplicaTracker, type ReplicaSnapshot } from './replica-tracker.js';
import { DURABLE_POINTS_FILE, DurablePointsFile, type PointOwner } from './durable-points-file.js';
import { childLogger } from '../platform/logger.js';

/** Replica failures that no retry can mend: the agent refuses to start with them. */
const PERMANENT_AT_START: ReadonlySet<string> = new Set(['ARCHIVE_FOREIGN', 'ARCHIVE_VERSION', 'ARCHIVE_LOCKED', 'ARCHIVE_PROMOTED']);

/** Replica i's dump connection uses this server id unless its definition sets one. */
export function replicaServerId(config: AgentConfig, index: number): number {
  return config.replicas[index]?.serverId ?? config.primary.serverId + index;
}

/**
 * The primary-side agent: one supervised pipeline per replica, each with its own dump
 * connection, archive session and progress. It keeps a tracker per replica for the lag
 * endpoint and, on stop, closes every session so that what was received is made durable.
 */
export class SyncAgent {
  readonly trackers: ReplicaTracker[];
  /** What the lag endpoint serves: the trackers plus the primary's head. */
  readonly lag: LagMonitor;
  readonly #closing = new Set<Promise<void>>();
  readonly #headPoller: HeadPoller;
  /** One per `file` replica: its archive volume's size and free space for the lag endpoint. */
  #volumePollers: VolumePoller[] = [];
  #subscriptions: Subscription[] = [];
  #spools: ReplicaSpool[] = [];
  #recorders: LastHeardRecorder[] = [];
  /** Start checks that outlived their deadline, by replica: its pipeline opens after them. */
  readonly #lateChecks = new Map<string, Promise<unknown>>();
  /** Times this run saw the primary not itself (see checkPrimaryContinuity), for every replica's archive. */
  readonly #primaryBreaks: PrimaryBreak[] = [];
  /** The break going on now (the one every retry sees again), until a dump finds the primary itself. */
  #breakEpisode: PrimaryBreak | undefined;
  /** Each replica's durable point, saved in the stateDir while the agent runs. */
  #points: DurablePointsFile | undefined;
  /** Each replica's open archive session (undefined while there is none), by name. */
  readonly #sessions = new Map<string, BehaviorSubject<ReplicaSession | undefined>>();
  readonly #agentId: string;
  /** Base backups asked for through the control socket run one at a time. */
  #baseQueue: Promise<unknown> = Promise.resolve();
  /**
   * Aborted by stop(): a base backup in progress (asked for, or taken because an archive had
   * none) is abandoned at once, its partial folder removed, instead of holding the stop for as
   * long as the backup takes (a service manager would kill the agent long before).
   */
  readonly #baseAbort = new AbortController();

  constructor(
    readonly config: AgentConfig,
    readonly identity: PrimaryIdentity,
    private readonly deps: {
      logger: Logger;
      clock: Clock;
      random01: () => number;
      /** Presented to receivers (loadAgentId: the same across restarts); a new one per SyncAgent without it. */
      agentId?: string | undefined;
    },
  ) {
    this.#agentId = deps.agentId ?? randomUUID();
    const startedAtMs = deps.clock.nowMs();
    this.trackers = config.replicas.map((r) => new ReplicaTracker(r.name, startedAtMs));
    // Where each replica stood when the last run saved it: a standby not reached yet counts
    // its lag from there, not from the primary's whole binlog.
    config.replicas.forEach((r, i) => {
      const saved = DurablePointsFile.load(config.stateDir, r.name, pointOwner(identity, r), deps.logger);
      if (saved !== undefined) this.trackers[i]?.seedDurable(saved.point, saved.caughtUpAtMs);
    });
    this.lag = new LagMonitor(
      config.replicas.map((definition, i) => ({ definition, tracker: this.trackers[i] as ReplicaTracker })),
      { headPollIntervalMs: config.binlog.headPollIntervalMs, startedAtMs, onPurged: config.binlog.onPurged },
    );
    // One head check per interval for all replicas and all lag requests together.
    this.#headPoller = new HeadPoller({
      primary: config.primary,
      intervalMs: config.binlog.headPollIntervalMs,
      // While a replica has no stream of its own, only the head checks date its lag.
      fastIntervalMs: DEFAULT_HEAD_POLL_FAST_INTERVAL_MS,
      wantFast: () => this.trackers.some((t) => !t.snapshot.connected),
      clock: deps.clock,
      logger: childLogger(deps.logger, { component: 'head-poller' }),
      onObservation: (observation) => this.lag.observeHead(observation),
      onFailure: (failure) => this.lag.headFailed(failure),
    });
  }

  /**
   * Checks the primary (and, with base.method physical, what mariabackup needs) and returns its
   * identity; throws a HotspareError naming the fix.
   */
  static async preflight(config: AgentConfig, logger?: Logger): Promise<PrimaryIdentity> {
    try {
      return await preflightPrimary(config, logger);
    } catch (err) {
      // Without the primary's identity the start can check no archive, and nothing retries it.
      throw notRetried(err, '; the agent does not start without the primary (it retries only once running): run it under a service manager that restarts it (systemd: Restart=on-failure)');
    }
  }

  /**
   * Opens and closes every replica's archive once before streaming, so that a replica that
   * can never work (another primary's archive, another agent writing it) stops the agent at
   * start with its error, instead of being retried forever. A replica that is merely
   * unreachable now, or does not answer within DEFAULT_REPLICA_CHECK_TIMEOUT_MS (all are
   * checked at once), is left to the pipeline's retries.
   */
  async checkReplicas(): Promise<void> {
    await Promise.all(
      this.config.replicas.map(async (definition, index) => {
        const logger = childLogger(this.deps.logger, { component: 'replica', replica: definition.name });
        const missingArchive = (): HotspareError | undefined => vanishedArchive(this.trackers[index]?.snapshot, definition, this.config.stateDir);
        const target = createReplicaTarget(definition, { logger, clock: this.deps.clock, syncBatchBytesMax: this.config.binlog.syncBatchBytesMax, agentId: this.#agentId, missingArchive });
        // Closed whenever it opens, also after the deadline below (its archive lock is released).
        const check = target.open(this.identity).then((session) => session.close());
        try {
          const done = await within(check, DEFAULT_REPLICA_CHECK_TIMEOUT_MS);
          if (done === undefined) {
            // Still running: its session holds the archive lock when it opens. The replica's
            // pipeline opens only once it has closed again (see ReplicaPipelineOptions.openAfter).
            // The stop does not wait for it (a volume that never answers would hold the stop
            // for ever; the lock it may leave is taken over at the next start).
            const late = check.catch(() => undefined);
            this.#lateChecks.set(definition.name, late);
            logger.warn(
              { code: 'REPLICA_CHECK_TIMEOUT', hint: 'check the archive volume (a hung mount, a frozen disk) or the standby; the agent keeps retrying' },
              `replica not available yet: its archive did not answer within ${DEFAULT_REPLICA_CHECK_TIMEOUT_MS / 1000} s; the other replicas start`,
            );
          }
        } catch (err) {
          if (err instanceof HotspareError && PERMANENT_AT_START.has(err.code)) {
            throw new HotspareError(err.code, `replica ${definition.name}: ${err.message}`, { hint: err.hint, cause: err });
          }
          // An expected condition (unreachable, refused) is its code and hint, not a stack.
          if (err instanceof HotspareError) logger.warn({ code: err.code, hint: err.hint }, `replica not available yet: ${err.message}; the agent keeps retrying`);
          else logger.warn({ err }, 'replica not available yet; the agent keeps retrying');
        }
      }),
    );
  }

  start(): void {
    const { config, deps } = this;
    this.#headPoller.start();
    this.#points = new DurablePointsFile(config.stateDir, DEFAULT_DURABLE_POINTS_SAVE_INTERVAL_MS, childLogger(deps.logger, { component: 'durable-points' }));
    config.replicas.forEach((definition, index) => {
      const logger = childLogger(deps.logger, { component: 'replica', replica: definition.name });
      const tracker = this.trackers[index];
      if (tracker === undefined) return;
      if (definition.type === 'file') {
        const poller = new VolumePoller({
          path: definition.path,
          intervalMs: DEFAULT_ARCHIVE_VOLUME_CHECK_INTERVAL_MS,
          clock: deps.clock,
          logger,
          onReading: (reading) => {
            tracker.snapshot.volume = reading;
          },
        });
        poller.start();
        this.#volumePollers.push(poller);
      }
      const target = createReplicaTarget(definition, {
        logger,
        clock: deps.clock,
        syncBatchBytesMax: config.binlog.syncBatchBytesMax,
        stateDir: config.stateDir,
        baseStagingBytesMax: config.base.stagingBytesMax,
        agentId: this.#agentId,
        // A remote replica's volume comes from its receiver, with the acknowledgements (the
        // last reading stays, with its time, while the receiver is away).
        onVolume: (reading) => {
          tracker.snapshot.volume = reading;
        },
        // A base upload to a standby (a staged base) ends with the rest of the base work at a stop.
        stopSignal: this.#baseAbort.signal,
        missingArchive: () => vanishedArchive(tracker.snapshot, definition, config.stateDir),
      });
      const serverId = replicaServerId(config, index);
      /** The breaks of this run this replica's archive holds (or, a new archive, does not need). */
      const breaksRecorded = new Set<PrimaryBreak>();
      // Spool syncers share the pipeline's archive session and run while it is open.
      const session$ = new BehaviorSubject<ReplicaSession | undefined>(undefined);
      this.#sessions.set(definition.name, session$);
      /** Whose durable points these are (saved with each, at every durable event). */
      const owner = pointOwner(this.identity, definition);
      // A session on an archive with binlog reports its durable end at once; one without (a
      // new archive, its base still to come) says the saved point is not this archive's.
      this.#subscriptions.push(session$.subscribe((session) => session !== undefined && session.resume === undefined && tracker.sessionWithoutResume()));
      const spool = new ReplicaSpool({ sources: config.spool, session$, logger, clock: deps.clock });
      tracker.attachFiles(() => spool.snapshot());
      spool.start();
      this.#spools.push(spool);
      const recorder = new LastHeardRecorder({ session$, intervalMs: DEFAULT_LAST_HEARD_WRITE_INTERVAL_MS, logger });
      this.#recorders.push(recorder);
      const pipeline = replicaPipeline({
        target,
        identity: this.identity,
        source: (framer, paused$) =>
          binlogSource({ primary: config.primary, serverId, framer, tuning: config.binlog, paused$, logger: childLogger(logger, { component: 'binlog-source' }) }),
        locateStart: async (resume, session) => {
          // Before anything else (a base of another server would be taken into this archive):
          // is the primary still itself, writing its binlog? See checkPrimaryContinuity.
          const unrecorded = this.#primaryBreaks.filter((b) => !breaksRecorded.has(b));
          const brk = await checkPrimaryContinuity({
            primary: config.primary,
            identity: this.identity,
            files: session.files,
            archiveHolds: resume !== undefined,
            unrecorded,
            nowIso: new Date(deps.clock.nowMs()).toISOString(),
            onBreak: (seen, recorded) => {
              // One per episode: every dump's retry sees it again while it lasts.
              const known = this.#breakEpisode ?? seen;
              if (known === seen) {
                this.#breakEpisode = seen;
                this.#primaryBreaks.push(seen);
              }
              if (recorded || resume === undefined) breaksRecorded.add(known);
            },
            onItself: () => {
              this.#breakEpisode = undefined;
            },
            logger,
          });
          for (const b of unrecorded) breaksRecorded.add(b);
          // An archive without a base backup gets one first; a new archive's binlog then
          // starts at the base's file, position 4 (whole files from the base coordinates on).
          const { base } = await ensureBaseBackup(session.files, config.primary, { clock: deps.clock, logger, method: config.base.method, signal: this.#baseAbort.signal });
          if (brk !== undefined && resume !== undefined) {
            const why = `${brk.reason} (seen ${brk.at}): what it wrote meanwhile is in no binlog this archive holds`;
            if (config.binlog.onPurged !== 'new-base') {
              throw new HotspareError('BINLOG_GAP', why, {
                hint: `take a new base (\`hotspare base --config ... --replica ${definition.name}\`), set binlog.onPurged to "new-base" and restart the agent; or point the replica at a new, empty archive`,
              });
            }
            const at = await restartChainAfterPurge({ files: session.files, primary: config.primary, resume, reason: why, code: 'BINLOG_GAP', method: config.base.method, clock: deps.clock, logger, signal: this.#baseAbort.signal });
            await clearPrimaryBreak(session.files);
            return at;
          }
          try {
            return await locateStart(config, resume ?? { file: base.binlog.file, position: 4 });
          } catch (err) {
            // The primary purged binlog the archive needs: by default the archive restarts
            // its chain at a new base (recording the gap) instead of staying in `gap` forever.
            const purged = err instanceof HotspareError && err.code === 'BINLOG_PURGED';
            if (!purged || resume === undefined || config.binlog.onPurged !== 'new-base') throw err;
            return restartChainAfterPurge({ files: session.files, primary: config.primary, resume, reason: err.message, method: config.base.method, clock: deps.clock, logger, signal: this.#baseAbort.signal });
          }
        },
        highWaterBytes: config.binlog.highWaterBytes,
        lowWaterBytes: config.binlog.lowWaterBytes,
        backoff: { delayMsMin: config.binlog.retryDelayMsMin, delayMsMax: config.binlog.retryDelayMsMax, jitterRatio: DEFAULT_RETRY_JITTER_RATIO },
        random01: deps.random01,
        clockMs: () => deps.clock.nowMs(),
        logger,
        closing: this.#closing,
        session$,
        openAfter: this.#lateChecks.get(definition.name),
        // A receiver's archive, found empty (a file replica's is refused before it is created).
        refuseSession: (session) => (session.resume === undefined ? vanishedArchive(tracker.snapshot, definition, config.stateDir) : undefined),
      });
      this.#subscriptions.push(
        pipeline.subscribe({
          next: (event) => {
            tracker.apply(event, deps.clock.nowMs());
            if (event.kind === 'received') for (const other of this.trackers) if (other !== tracker) other.primarySeenAt(event, event.atMs);
            if (event.kind === 'durable') this.#points?.update(definition.name, owner, event.point, tracker.snapshot.caughtUpAtMs);
            else this.#points?.updateCaughtUp(definition.name, tracker.snapshot.caughtUpAtMs, DEFAULT_DURABLE_POINTS_CAUGHT_UP_STEP_MS);
            recorder.observe(event);
            // The stream just broke: date what the primary writes from now on without waiting.
            if (event.kind === 'failed') this.#headPoller.checkSoon();
          },
          error: (err: unknown) => logger.fatal({ err }, 'replica pipeline ended unexpectedly'),
        }),
      );
    });
  }

  /**
   * Takes a base backup now into each replica's archive (all, or the one named) through the
   * archive session the agent holds open, so it works while the agent writes there (the
   * archive's lock is the agent's). What `hotspare base` asks through the control socket.
   */
  baseBackup(replicaName?: string, method: BaseMethod = this.config.base.method): Promise<BaseResult[]> {
    const chosen = this.config.replicas.filter((r) => replicaName === undefined || r.name === replicaName);
    if (chosen.length === 0) {
      return Promise.reject(new HotspareError('NO_SUCH_REPLICA', `the agent has no replica named ${JSON.stringify(replicaName)}`, { hint: `its replicas: ${this.config.replicas.map((r) => r.name).join(', ')}` }));
    }
    const run = async (): Promise<BaseResult[]> => {
      const results: BaseResult[] = [];
      const signal = this.#baseAbort.signal;
      for (const definition of chosen) {
        if (signal.aborted) throw baseAbortedError();
        const logger = childLogger(this.deps.logger, { component: 'replica', replica: definition.name });
        const session$ = this.#sessions.get(definition.name);
        if (session$ === undefined) throw new HotspareError('AGENT_NOT_STREAMING', 'the agent has not started its replicas yet', { hint: 'try again in a moment' });
        const session = await firstValueFrom(
          session$.pipe(
            filter((s): s is ReplicaSession => s !== undefined),
            // A stop does not wait for an archive that may not come back for a minute.
            takeUntil(fromEvent(signal, 'abort')),
            timeout({
              first: DEFAULT_CONTROL_SESSION_WAIT_MS,
              with: () => {
                throw new HotspareError('REPLICA_UNAVAILABLE', `replica ${definition.name} has had no open archive session for ${DEFAULT_CONTROL_SESSION_WAIT_MS / 1000} s`, {
                  hint: 'see the agent log and `GET /lag` for why the archive is unreachable; run `hotspare base` again once it streams',
                });
              },
            }),
          ),
          { defaultValue: undefined },
        );
        if (session === undefined) throw baseAbortedError();
        logger.info('base backup asked for through the control socket');
        // A stream that met another timeline, and the archive's end: the durable point now (an
        // archive begun in this session has no end at its open), or the one the session opened at
        // when that is further. A replica pointed at a new archive after another timeline may be
        // refused until that archive's first durable point (its first base is the agent's own,
        // at the session's open): a refusal that passes, never a base of the wrong timeline.
        const snapshot = this.trackers[this.config.replicas.indexOf(definition)]?.snapshot;
        if (snapshot?.failure?.code === 'BINLOG_GAP') throw new HotspareError('BINLOG_GAP', `replica ${definition.name}: ${snapshot.failure.message}`, { hint: snapshot.failure.hint });
        const durable = snapshot?.durable;
        const resume = session.resume;
        const end = durable === undefined ? resume : resume === undefined || compareBinlogPositions(durable, resume) >= 0 ? durable : resume;
        await refuseAnotherTimeline(this.config.primary, end);
        const base = await takeBase(method, { primary: this.config.primary, files: session.files, clock: this.deps.clock, logger, signal });
        results.push(baseResult(definition.name, base));
      }
      return results;
    };
    const result = this.#baseQueue.then(run, run);
    this.#baseQueue = result.catch(() => undefined);
    return result;
  }

  /**
   * Abandons the base backups in progress and refuses new ones (BASE_ABORTED): their tools and
   * primary sessions end and their partial folders go. Resolves once those asked for through
   * the control socket have ended. The first step of stopping.
   */
  async abandonBaseBackups(): Promise<void> {
    this.#baseAbort.abort();
    await this.#baseQueue;
  }

  /** Stops reading, and resolves once every replica has made what it received durable. */
  async stop(): Promise<void> {
    // A base backup asked for through the control socket writes through the sessions: it has
    // ended before they close, so nothing writes into an archive left unlocked.
    await this.abandonBaseBackups();
    // Spool syncers first: they write through the sessions the pipelines are about to close.
    await Promise.all(this.#spools.map((s) => s.stop()));
    this.#spools = [];
    // While the pipelines still run, let what each replica received become durable: its
    // durable point then reaches the recorder, whose last record says the archive caught up.
    await Promise.all([...this.#sessions.values()].map((session$) => settleDurable(session$.value)));
    // Before the sessions close: the newest record goes through them.
    await Promise.all(this.#recorders.map((r) => r.stop()));
    this.#recorders = [];
    for (const subscription of this.#subscriptions) subscription.unsubscribe();
    this.#subscriptions = [];
    for (const poller of this.#volumePollers.splice(0)) poller.stop();
    // The newest "caught up by" times, not the last ones a 60 s step let through: a restart's
    // lag counts from them (a rehearsal's read 55 s for a 21 s outage).
    this.config.replicas.forEach((r, i) => this.#points?.updateCaughtUp(r.name, this.trackers[i]?.snapshot.caughtUpAtMs, 0));
    await Promise.all([...this.#closing, this.#headPoller.stop(), this.#points?.close()]);
    this.#points = undefined;
  }
}

/**
 * ARCHIVE_MISSING for an archive that holds no binlog (or none at all) where this replica's
 * archive was known to hold some (this run's durable point, or the last run's saved one for the same
 * primary and archive). A rehearsal moved an archive folder away while the agent ran: the agent
 * began a new archive at the old path, with a new base, /lag green, while the real one stopped
 * growing; an archive volume not mounted looks the same (its mount point an empty folder).
 */
function vanishedArchive(snapshot: ReplicaSnapshot | undefined, definition: ReplicaDefinition, stateDir: string): HotspareError | undefined {
  const held = snapshot?.durable;
  // BINLOG_GAP's hint (the primary's names started again) is a new, empty archive: for a remote
  // replica at the same address (the receiver restarted with another --archive), that one.
  if (held === undefined || snapshot?.failure?.code === 'BINLOG_GAP') return undefined;
  const where = definition.type === 'file' ? `the archive at ${definition.path}` : `the receiver's archive at ${definition.address}`;
  return new HotspareError('ARCHIVE_MISSING', `${where} holds no binlog, but this replica's archive held ${held.file}:${held.position}: it was moved or removed, or its volume is not mounted`, {
    hint: `mount the volume or move the archive back${definition.type === 'file' ? " (or point the replica's path at it)" : ' (the receiver\'s --archive)'}; to begin a new archive there on purpose, stop the agent, remove ${join(stateDir, DURABLE_POINTS_FILE)} (it keeps only where each standby stood) and start it again`,
  });
}

/**
 * The primary's checks at the agent's start: the identity every archive is checked against
 * and streamed for. See SyncAgent.preflight.
 */
async function preflightPrimary(config: AgentConfig, logger: Logger | undefined): Promise<PrimaryIdentity> {
  const probe = await MysqlProbe.connect(config.primary);
  let identity: PrimaryIdentity;
  const ids = config.replicas.map((_, i) => replicaServerId(config, i));
  try {
    identity = await probe.preflight(ids);
  } finally {
    await probe.close();
  }
  if (probe.serverIdsUnchecked) {
    // Each replica dumps with its own id (primary.serverId + its index, unless it sets one): a
    // real replica with one of them would be pushed off the primary, and nothing here can see it.
    logger?.warn(
      { code: 'SERVER_IDS_UNCHECKED', serverIds: ids, hint: 'GRANT REPLICATION MASTER ADMIN ON *.* TO the hotspare user so the agent can check, or make sure no server in the topology uses these ids' },
      `cannot read SHOW SLAVE HOSTS to check that no replica of the primary uses the server ids the agent dumps with (${ids.join(', ')})`,
    );
  }
  if (config.base.method === 'physical') await checkPhysicalBasePrerequisites(config.primary);
  else await checkLogicalBasePrerequisites(config.primary);
  return identity;
}

/** Whose saved durable point it is: this primary, this replica's archive. */
function pointOwner(identity: PrimaryIdentity, definition: ReplicaDefinition): PointOwner {
  return {
    primary: identity.serverUuid ?? `${identity.serverId}@${identity.hostname}`,
    target: definition.type === 'file' ? definition.path : definition.address,
  };
}

/**
 * Resolves once nothing appended to the session waits for an fsync, or after
 * DEFAULT_STOP_SETTLE_MS, or when the session breaks: the stop goes on either way (closing the
 * session makes the rest durable; only the record of it is then pessimistic).
 */
async function settleDurable(session: ReplicaSession | undefined): Promise<void> {
  if (session === undefined || session.pendingBytes === 0) return;
  await firstValueFrom(session.durable$.pipe(filter(() => session.pendingBytes === 0), timeout({ first: DEFAULT_STOP_SETTLE_MS })), { defaultValue: undefined }).catch(() => undefined);
}

/**
 * Where a replica's binlog stream starts. An archive without binlog starts at the oldest
 * file the primary still has; an archive whose file the primary no longer has is a gap,
 * reported as BINLOG_PURGED and never skipped over.
 */
async function locateStart(
  config: AgentConfig,
  resume: { file: string; position: number } | undefined,
): Promise<{ file: string; position: number }> {
  const probe = await MysqlProbe.connect(config.primary);
  try {
    // At every dump's start, not only the agent's: a primary restarted with encrypt_binlog on
    // meanwhile would send what cannot be archived byte for byte.
    await probe.refuseEncryptedBinlog();
    const files = await probe.binlogFiles();
    const oldest = files[0];
    if (oldest === undefined) throw new HotspareError('BINLOG_DISABLED', 'the primary lists no binlog files', { hint: BINLOG_DISABLED_HINT });
    if (resume === undefined) return { file: oldest.name, position: 4 };
    if (!files.some((f) => f.name === resume.file)) {
      throw new HotspareError('BINLOG_PURGED', `the primary no longer has ${resume.file}, where the archive continues (its oldest is ${oldest.name})`, {
        hint: 'with binlog.onPurged "new-base" (the default) the agent takes a new base and restarts the archive\'s chain there, recording the gap; with "stop", set it to "new-base" and restart the agent; keep binlog longer on the primary (binlog_expire_logs_seconds)',
      });
    }
    return { file: resume.file, position: resume.position };
  } finally {
    await probe.close();
  }
}
