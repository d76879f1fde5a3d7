import type { ReplicaDefinition } from '../config/schema.js';
import { DEFAULT_HEAD_STALE_INTERVALS, DEFAULT_PURGE_WARNING_EXPIRE_RATIO, DEFAULT_PURGE_WARNING_FILES } from '../config/defaults.js';
import { binlogFileSequence, compareBinlogFiles, compareBinlogPositions, caughtUpAtMs, purgeRisk, replicaLag, type BinlogPosition, type PrimaryHeadView } from '../core/lag.js';
import type { ReplicaState } from '../pipeline/replica-status.js';
import type { HeadObservation } from '../primary/head-poller.js';
import type { ReplicaSnapshot, ReplicaTracker } from './replica-tracker.js';

/**
 * Head-check failures in which the primary did not answer: the connection failed or a question
 * went unanswered (PRIMARY_UNREACHABLE), or what failed is not known (INTERNAL). Every other
 * code is the server's own answer (BINLOG_DISABLED after a restart with --skip-log-bin,
 * PRIVILEGES, PRIMARY_AUTH, ...): it runs, so `primary.reachable` (hotspare_primary_reachable,
 * which operators page on as "primary gone") stays true, and `primary.error` says what is wrong.
 */
const PRIMARY_SILENT_CODES: ReadonlySet<string> = new Set(['PRIMARY_UNREACHABLE', 'INTERNAL']);

/** A problem or a warning about one replica, as /lag, /healthz and `hotspare check` show it. */
export interface LagIssue {
  code: string;
  message: string;
}

/** The spool counters a replica's snapshot carries once spool shipping exists (zeros before). */
interface SpoolProgress {
  pendingChanges: number;
  pendingBytes: number;
  oldestPendingMs: number;
  bytesShippedTotal: number;
  missingSources?: Array<{ name: string; path: string }>;
}

export interface ReplicaLagReport {
  name: string;
  state: ReplicaState;
  /** The replica has a live stream from the primary. */
  up: boolean;
  binlog: {
    file: string | null;
    position: number | null;
    bytesBehind: number;
    secondsBehind: number;
    lastAckAt: string | null;
    bytesShippedTotal: number;
    /** The latest time the replica is known to have held everything the primary had written (core/lag.ts caughtUpAtMs); null until known. */
    caughtUpAt: string | null;
  };
  files: { pendingChanges: number; pendingBytes: number; oldestPendingSeconds: number; bytesShippedTotal: number };
  thresholds: { maxLagSeconds: number; maxLagBytes: number };
  /** Why this replica is unhealthy (empty when it is healthy); /healthz lists these. */
  problems: LagIssue[];
  /** Early warnings (binlog about to be purged); also listed as problems. */
  warnings: LagIssue[];
  /** The last failure of its stream while it is not streaming. */
  error: { code: string; message: string; hint: string; at: string } | null;
  /** The replica's archive volume as last read (a remote one's as its receiver reports it); null before the first reading. */
  volume: { totalBytes: number; freeBytes: number; checkedAt: string } | null;
}

/** The body of GET /lag (contract: lag endpoint); extra fields are additions. */
export interface LagReport {
  primary: {
    file: string | null;
    position: number | null;
    checkedAt: string | null;
    /** The primary answered the last head check, recently: with its head, or with an error of its own (`error`). */
    reachable: boolean;
    oldestFile: string | null;
    expireLogsSeconds: number;
    error: { code: string; message: string; at: string } | null;
  };
  replicas: ReplicaLagReport[];
}

export interface HealthReport {
  healthy: boolean;
  reasons: Array<LagIssue & { replica: string }>;
}

/**
 * The in-memory state behind the lag endpoint: the primary's head as the head poller last
 * saw it, and each replica's tracker. Requests read it and never reach MySQL. Each head
 * observation is also a mark on every replica's HeadTimeline, which dates the oldest event
 * a replica does not yet hold durably.
 */
export class LagMonitor {
  #head: HeadObservation | undefined;
  /** This run's first successful head check: the primary wrote what lay before its head while the agent was not watching. */
  #firstHead: PrimaryHeadView['firstHead'];
  #headFailure: { code: string; message: string; atMs: number } | undefined;
  readonly #rotatedAtMs = new Map<string, number>();
  /** The primary's oldest binlog file has gone while the agent watched (it purges). */
  #purgesSeen = false;
  readonly #staleAfterMs: number;
  /** What the agent does about a purged binlog file (binlog.onPurged): it says what to do next. */
  readonly #onPurged: 'new-base' | 'stop';
  /** Each replica's caughtUpAt as last reported: it never steps back. */
  readonly #shownCaughtUp = new Map<string, number>();

  constructor(
    private readonly replicas: ReadonlyArray<{ definition: ReplicaDefinition; tracker: ReplicaTracker }>,
    options: { headPollIntervalMs: number; startedAtMs: number; onPurged?: 'new-base' | 'stop' },
  ) {
    this.#onPurged = options.onPurged ?? 'stop';
    this.#staleAfterMs = options.headPollIntervalMs * DEFAULT_HEAD_STALE_INTERVALS;
    this.startedAtMs = options.startedAtMs;
  }

  readonly startedAtMs: number;

  observeHead(observation: HeadObservation): void {
    const previous = this.#head;
    // A file stops being written when a newer one appears; that is (about) its modification
    // time, which binlog_expire_logs_seconds counts from.
    if (previous !== undefined && compareBinlogFiles(observation.head.file, previous.head.file) > 0 && !this.#rotatedAtMs.has(previous.head.file)) {
      this.#rotatedAtMs.set(previous.head.file, observation.checkedAtMs);
    }
    // Seen purging: its oldest file went while the agent watched, or its oldest is not the
    // first it ever wrote (a purge before this agent's start: the flag is not kept across one).
    const oldestBefore = previous?.files[0]?.name;
    const oldestNow = observation.files[0]?.name;
    if (oldestBefore !== undefined && oldestNow !== undefined && compareBinlogFiles(oldestNow, oldestBefore) > 0) this.#purgesSeen = true;
    if (oldestNow !== undefined && binlogFileSequence(oldestNow) > 1) this.#purgesSeen = true;
    for (const name of this.#rotatedAtMs.keys()) {
      if (!observation.files.some((f) => f.name === name)) this.#rotatedAtMs.delete(name);
    }
    this.#head = observation;
    this.#firstHead ??= { head: observation.head, checkedAtMs: observation.checkedAtMs };
    this.#headFailure = undefined;
    for (const { tracker } of this.replicas) tracker.headObserved(observation.head, observation.checkedAtMs);
  }

  headFailed(failure: { code: string; message: string; atMs: number }): void {
    this.#headFailure = failure;
  }

  primaryView(nowMs: number): PrimaryHeadView {
    const head = this.#head;
    return {
      head: head?.head,
      checkedAtMs: head?.checkedAtMs,
      fresh: head !== undefined && this.#headFailure === undefined && nowMs - head.checkedAtMs <= this.#staleAfterMs,
      files: head?.files ?? [],
      expireLogsSeconds: head?.expireLogsSeconds ?? 0,
      rotatedAtMs: this.#rotatedAtMs,
      sinceMs: this.startedAtMs,
      purgesSeen: this.#purgesSeen,
      firstHead: this.#firstHead,
    };
  }

  report(nowMs: number): LagReport {
    const view = this.primaryView(nowMs);
    const head = this.#head;
    const failure = this.#headFailure;
    // The head as last checked may be a transaction behind what a replica's own stream has
    // brought since (it is read every headPollIntervalMs): the primary's position is the
    // furthest either shows, so no replica ever reads as ahead of it.
    let furthest = head?.head;
    for (const { tracker } of this.replicas) {
      // A live stream's, or what a stream brought since the last head check (the primary died
      // after it: its replicas' last events are its binlog's true end). Not older news: a replica
      // away since before a RESET MASTER (or a new primary) keeps the old numbering, which would
      // pin the head there.
      const received = tracker.snapshot.received;
      const seen = received !== undefined && (tracker.snapshot.connected || head === undefined || received.atMs >= head.checkedAtMs) ? received : undefined;
      if (seen !== undefined && (furthest === undefined || compareBinlogPositions(seen, furthest) > 0)) furthest = { file: seen.file, position: seen.position };
    }
    return {
      primary: {
        file: furthest?.file ?? null,
        position: furthest?.position ?? null,
        checkedAt: head === undefined ? null : iso(head.checkedAtMs),
        reachable: view.fresh || (failure !== undefined && !PRIMARY_SILENT_CODES.has(failure.code) && nowMs - failure.atMs <= this.#staleAfterMs),
        oldestFile: view.files[0]?.name ?? null,
        expireLogsSeconds: view.expireLogsSeconds,
        error: failure === undefined ? null : { code: failure.code, message: failure.message, at: iso(failure.atMs) },
      },
      // Each replica is behind the primary's end as any stream shows it, not only its own: after
      // the primary died, a replica whose stream fell behind another's read 0 bytes behind (its
      // own stream was all it compared with) beside one holding 6 MB more.
      replicas: this.replicas.map(({ definition, tracker }) => replicaReport(definition, tracker, view, nowMs, this.#onPurged, head?.binlogFormat, furthest, this.#shownCaughtUp)),
    };
  }

  health(nowMs: number): HealthReport {
    return healthOf(this.report(nowMs));
  }
}

/** /healthz from a /lag report: healthy when no replica has a problem. */
export function healthOf(report: LagReport): HealthReport {
  const reasons = report.replicas.flatMap((r) => r.problems.map((p) => ({ replica: r.name, ...p })));
  return { healthy: reasons.length === 0, reasons };
}

function replicaReport(
  definition: ReplicaDefinition,
  tracker: ReplicaTracker,
  view: PrimaryHeadView,
  nowMs: number,
  onPurged: 'new-base' | 'stop',
  binlogFormat: string | undefined,
  primaryEnd: BinlogPosition | undefined,
  /** Each replica's caughtUpAt as last reported (kept by the LagMonitor). */
  shownCaughtUp: Map<string, number>,
): ReplicaLagReport {
  const s: ReplicaSnapshot = tracker.snapshot;
  const { maxLagSeconds, maxLagBytes } = definition.thresholds;
  const durable = s.durable;
  const own = tracker.timeline.furthest;
  const furthest = own === undefined || (primaryEnd !== undefined && compareBinlogPositions(primaryEnd, own) > 0) ? primaryEnd : own;
  const lagInput = { durable, firstBeyondMs: tracker.timeline.firstBeyondMs(durable), furthest, caughtUpAtMs: s.caughtUpAtMs };
  const lag = replicaLag(lagInput, view, nowMs);
  // Never earlier than shown before: falling behind after a head check showed it holding
  // everything leaves only its stream's (older) proof, and the time would step back.
  const caughtUp = maxDefined(shownCaughtUp.get(s.name), caughtUpAtMs(lagInput, view, lag));
  if (caughtUp !== undefined) shownCaughtUp.set(s.name, caughtUp);
  const purge = purgeRisk(
    {
      needFile: durable?.file,
      needFileWrittenAtLeastMs: durable?.commitTimestampS === undefined ? undefined : durable.commitTimestampS * 1000,
      warningFiles: DEFAULT_PURGE_WARNING_FILES,
      warningExpireRatio: DEFAULT_PURGE_WARNING_EXPIRE_RATIO,
    },
    view,
    nowMs,
  );
  // Until the replica's archive has said where it ends (a standby down since the agent
  // started), its lag is counted from the primary's oldest file: no LAG_* alarm on that guess
  // (the whole binlog, gigabytes), DISCONNECTED after its grace says what is wrong.
  const known = durable !== undefined;
  const overSeconds = known && lag.secondsBehind > maxLagSeconds;
  const overBytes = known && lag.bytesBehind > maxLagBytes;
  const failure = s.failure;

  let state: ReplicaState;
  if (purge.kind === 'gone') state = 'gap';
  else if (!s.connected && failure !== undefined && (failure.state === 'gap' || failure.state === 'error')) state = failure.state;
  else if (!s.connected) state = 'disconnected';
  else if (overSeconds || overBytes) state = 'catching-up';
  else state = 'streaming';

  const problems: LagIssue[] = [];
  const warnings: LagIssue[] = [];
  /** A warning that is also a reason for /healthz (check says WARNING, not CRITICAL). */
  const warn = (issue: LagIssue): void => {
    warnings.push(issue);
    problems.push(issue);
  };
  if (purge.kind === 'gone') {
    // With binlog.onPurged new-base (the default) the agent is taking that base itself.
    // With "stop", a base taken by hand does not restart the chain: only new-base does.
    const next = onPurged === 'new-base' ? 'the agent takes a new base backup and restarts the archive there' : 'set binlog.onPurged to "new-base" and restart the agent (it then takes a new base and restarts the archive there), or point the replica at a new archive';
    problems.push({ code: purge.code, message: `${purge.message}; ${next}` });
  }
  else if ((state === 'gap' || state === 'error') && failure !== undefined) problems.push({ code: failure.code, message: failure.message });
  if (overSeconds) problems.push({ code: 'LAG_SECONDS', message: `${lag.secondsBehind.toFixed(1)} s behind (max ${maxLagSeconds} s)` });
  if (overBytes) problems.push({ code: 'LAG_BYTES', message: `${lag.bytesBehind} bytes behind (max ${maxLagBytes})` });
  // A short reconnect is normal; a replica without a stream for longer than its lag budget
  // cannot keep that budget once the primary writes, whatever it holds now.
  const disconnectedS = s.disconnectedSinceMs === undefined ? 0 : (nowMs - s.disconnectedSinceMs) / 1000;
  if (state === 'disconnected' && disconnectedS > maxLagSeconds) {
    problems.push({ code: 'DISCONNECTED', message: `no stream for ${disconnectedS.toFixed(0)} s${failure === undefined ? '' : ` (${failure.code}: ${failure.message})`}` });
  }
  // Spool files wait as binlog does: a source whose passes keep failing, or a standby away,
  // leaves its files behind for longer than the budget (checked after the binlog's own).
  const spool = (s as ReplicaSnapshot & { files?: SpoolProgress }).files;
  const filesWaitingS = (spool?.oldestPendingMs ?? 0) / 1000;
  if (filesWaitingS > maxLagSeconds) {
    problems.push({ code: 'FILES_LAG', message: `spool changes waiting for ${filesWaitingS.toFixed(1)} s (max ${maxLagSeconds} s)` });
  }
  // A source whose folder is not there (a typo, an unmounted data disk): nothing of it reaches
  // the standby, and no change is ever pending to say so.
  for (const missing of spool?.missingSources ?? []) {
    warn({ code: 'SPOOL_SOURCE_MISSING', message: `spool source ${missing.name} (${missing.path}) is unavailable: none of its files are archived until it is back` });
  }
  if (purge.kind === 'warning') warn({ code: purge.code, message: purge.message });
  // The primary's format changed under a running agent: every replica archives what it logs.
  if (binlogFormat !== undefined && binlogFormat !== 'ROW') {
    warn({ code: 'BINLOG_FORMAT', message: `the primary's binlog_format is now ${binlogFormat} (it was ROW when the agent started): statements it logs as statements are archived and replayed as statements; SET GLOBAL binlog_format=ROW and put binlog_format=ROW in the server's config` });
  }

  return {
    name: s.name,
    state,
    up: s.connected,
    binlog: {
      file: durable?.file ?? null,
      position: durable?.position ?? null,
      bytesBehind: lag.bytesBehind,
      secondsBehind: round3(lag.secondsBehind),
      lastAckAt: s.lastAckAtMs === undefined ? null : iso(s.lastAckAtMs),
      bytesShippedTotal: s.binlogBytesShipped,
      caughtUpAt: caughtUp === undefined ? null : iso(caughtUp),
    },
    files: {
      pendingChanges: spool?.pendingChanges ?? 0,
      pendingBytes: spool?.pendingBytes ?? 0,
      oldestPendingSeconds: round3((spool?.oldestPendingMs ?? 0) / 1000),
      bytesShippedTotal: spool?.bytesShippedTotal ?? 0,
    },
    thresholds: { maxLagSeconds, maxLagBytes },
    problems,
    warnings,
    error: failure === undefined || s.connected ? null : { code: failure.code, message: failure.message, hint: failure.hint, at: iso(failure.atMs) },
    volume: s.volume === undefined ? null : { totalBytes: s.volume.totalBytes, freeBytes: s.volume.freeBytes, checkedAt: iso(s.volume.atMs) },
  };
}

function maxDefined(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  return b === undefined ? a : Math.max(a, b);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function round3(n: number): number {
  return Math.round(n * 1000) / 1000;
}
