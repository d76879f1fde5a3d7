import type { DurablePoint } from '../core/binlog-record.js';
import { BINLOG_FIRST_EVENT_POSITION } from '../core/binlog-event.js';
import { HeadTimeline, compareBinlogFiles, compareBinlogPositions, type BinlogPosition } from '../core/lag.js';
import type { ReplicaEvent, ReplicaState } from '../pipeline/replica-status.js';
import type { VolumeReading } from '../platform/volume-poller.js';

/** Spool files not yet durable on the replica, and what has been shipped there. */
export interface ReplicaFilesSnapshot {
  pendingChanges: number;
  pendingBytes: number;
  oldestPendingMs: number;
  bytesShippedTotal: number;
  missingSources: Array<{ name: string; path: string }>;
}

/** What the agent knows about one replica at this moment; the lag endpoint reads it. */
export interface ReplicaSnapshot {
  name: string;
  connected: boolean;
  durable: DurablePoint | undefined;
  lastAckAtMs: number | undefined;
  /** How far the primary's stream to this replica has reached (events or heartbeats). */
  received: { file: string; position: number; atMs: number } | undefined;
  /**
   * A time by which the replica held, durably, every byte the primary had written: a heartbeat's
   * arrival at or below the durable point (sent only when the primary has nothing newer), or the
   * header time of the last commit the stream brought, once durable (no later event can have
   * been written before it; a stream behind the primary brings old commits, so this stays
   * old). Lag counts from it when head checks fail while the stream still works.
   */
  caughtUpAtMs: number | undefined;
  binlogBytesShipped: number;
  /** Since when the replica has been without a stream (undefined while connected). */
  disconnectedSinceMs: number | undefined;
  failure: { state: ReplicaState; code: string; message: string; hint: string; atMs: number } | undefined;
  /** The archive volume as last read (a remote replica's from its receiver); undefined before the first reading. */
  volume: VolumeReading | undefined;
  /** Read when the snapshot is read (the spool syncers keep these counters). */
  readonly files: ReplicaFilesSnapshot;
}

const NO_FILES: () => ReplicaFilesSnapshot = () => ({ pendingChanges: 0, pendingBytes: 0, oldestPendingMs: 0, bytesShippedTotal: 0, missingSources: [] });

/**
 * An event's header time dates its write only when it arrives more than this after the end of
 * that second: closer, the receive time is finer (headers have whole seconds) and it stays.
 */
const EVENT_TIME_TRUSTED_AFTER_MS = 1_000;

/** Folds a replica's pipeline events into its snapshot. */
export class ReplicaTracker {
  readonly snapshot: ReplicaSnapshot;
  #files: () => ReplicaFilesSnapshot = NO_FILES;
  /** When the primary's binlog reached each position not yet durable here (lag seconds). */
  readonly timeline = new HeadTimeline();
  /**
   * Where the stream left each file it moved on from and no durable point has passed yet, so
   * bytes shipped count across rotations (a durable point may jump several files at once: a
   * catch-up of small files under one fsync).
   */
  readonly #fileEnds = new Map<string, number>();
  /** The caught-up time the received reports prove once what they brought is durable. */
  #caughtUpCandidate: number | undefined;
  /** `snapshot.durable` is the last run's saved point, not yet one of this run's. */
  #seeded = false;
  /**
   * Where the last dump started: the first durable point of an archive that had none (a new one)
   * counts its bytes from there. Counted from nothing, that first batch (a whole catch-up's first
   * fsync round) was missing from the shipped total.
   */
  #streamStart: BinlogPosition | undefined;
  /** The stream has just (re)connected: its first report starts the backlog the agent missed. */
  #backlogStart = false;
  /**
   * Where the backlog found at the last (re)connect ends: the primary's head as last seen when
   * the stream connected, or at the first head check after it. Everything before it was
   * written before the stream brought it, so its events' header times date it all through a
   * catch-up, not only the first event (the marks after that one are receive and head-check
   * times, which made an hour-old backlog read as seconds once its first event was durable).
   * Undefined once the stream has reached it: from there events stream live.
   */
  #backlogEnd: BinlogPosition | undefined;
  /** The stream connected before any head was known: the next head check gives #backlogEnd. */
  #backlogEndFromNextHead = false;

  constructor(name: string, startedAtMs = 0) {
    const files = (): ReplicaFilesSnapshot => this.#files();
    this.snapshot = {
      name,
      connected: false,
      durable: undefined,
      lastAckAtMs: undefined,
      received: undefined,
      caughtUpAtMs: undefined,
      binlogBytesShipped: 0,
      disconnectedSinceMs: startedAtMs,
      failure: undefined,
      volume: undefined,
      get files() {
        return files();
      },
    };
  }

  /**
   * Another replica's live stream saw the primary's binlog reach `at` by `atMs`: a mark on this
   * replica's timeline too. The lag report takes the primary's end as the furthest any stream
   * shows; without the mark, bytes beyond this replica's durable point that only another
   * stream had seen had no time, and read as some hundred bytes behind and 0 seconds.
   */
  primarySeenAt(at: BinlogPosition, atMs: number): void {
    this.timeline.observe({ file: at.file, position: at.position }, atMs);
    const durable = this.snapshot.durable;
    if (durable !== undefined) this.timeline.durableAt(durable);
  }

  /**
   * The primary's head, as the head poller read it at `checkedAtMs`: the first reading after a
   * (re)connect is where the backlog ends when the connect found no head known (the agent's
   * start). A mark on the timeline, as another stream's is (primarySeenAt). A durable point at or
   * past it, with nothing seen beyond, held everything the primary had written by then: a
   * caughtUpAtMs as good as a heartbeat's, kept whenever /lag is read.
   */
  headObserved(head: BinlogPosition, checkedAtMs: number): void {
    this.primarySeenAt(head, checkedAtMs);
    const durable = this.snapshot.durable;
    if (durable !== undefined && compareBinlogPositions(durable, head) >= 0 && this.timeline.firstBeyondMs(durable) === undefined) {
      this.snapshot.caughtUpAtMs = Math.max(this.snapshot.caughtUpAtMs ?? 0, checkedAtMs);
    }
    if (!this.#backlogEndFromNextHead) return;
    this.#backlogEndFromNextHead = false;
    const received = this.snapshot.received;
    if (this.snapshot.connected && (received === undefined || compareBinlogPositions(received, head) < 0)) this.#backlogEnd = head;
  }

  /**
   * A session opened on an archive that holds no binlog yet (a new one, or one put in place of
   * the last while the agent ran): neither a saved point nor this run's says anything of it, and
   * its bytes count from where its first dump starts.
   */
  sessionWithoutResume(): void {
    this.snapshot.durable = undefined;
    this.#seeded = false;
    this.#streamStart = undefined;
  }

  /**
   * The durable point the last run of the agent saved (DurablePointsFile): where the replica
   * stood, as far as this agent knows, until its archive says where it ends. Bytes shipped
   * start counting from the archive's own point, not from this one.
   */
  seedDurable(point: DurablePoint, caughtUpAtMs?: number): void {
    if (this.snapshot.durable !== undefined) return;
    this.snapshot.durable = point;
    // When the last run last saw it hold everything: what lies beyond was written after that.
    if (caughtUpAtMs !== undefined) this.snapshot.caughtUpAtMs ??= caughtUpAtMs;
    this.#seeded = true;
  }

  /** What the received reports proved counts once everything they brought is durable. */
  #settleCaughtUp(): void {
    const { received, durable } = this.snapshot;
    if (this.#caughtUpCandidate === undefined || received === undefined || durable === undefined || compareBinlogPositions(received, durable) > 0) return;
    this.snapshot.caughtUpAtMs = Math.max(this.snapshot.caughtUpAtMs ?? 0, this.#caughtUpCandidate);
    this.#caughtUpCandidate = undefined;
  }

  /** Where the `files` counters come from (the replica's spool syncers). */
  attachFiles(read: () => ReplicaFilesSnapshot): void {
    this.#files = read;
  }

  apply(event: ReplicaEvent, nowMs: number): void {
    const s = this.snapshot;
    switch (event.kind) {
      case 'connected':
        this.#backlogStart = true;
        this.#backlogEnd = this.timeline.furthest;
        this.#backlogEndFromNextHead = this.#backlogEnd === undefined;
        s.connected = true;
        s.disconnectedSinceMs = undefined;
        s.failure = undefined;
        // The first dump's start only: a dump restarted before anything was durable continues
        // after what the first appended, and the first durable point covers both.
        if (s.durable === undefined) this.#streamStart ??= event.start;
        break;
      case 'durable': {
        const before = this.#seeded ? undefined : (s.durable ?? this.#streamStart);
        this.#seeded = false;
        s.durable = event.point;
        s.lastAckAtMs = nowMs;
        s.binlogBytesShipped += shippedBetween(before, event.point, this.#fileEnds);
        for (const file of this.#fileEnds.keys()) if (compareBinlogFiles(file, event.point.file) < 0) this.#fileEnds.delete(file);
        this.timeline.durableAt(event.point);
        this.#settleCaughtUp();
        break;
      }
      case 'received': {
        const previous = s.received;
        if (previous !== undefined && previous.file !== event.file) this.#fileEnds.set(previous.file, previous.position);
        s.received = { file: event.file, position: event.position, atMs: event.atMs };
        // What this report proves once it is durable (see caughtUpAtMs).
        const candidate = event.idle === true ? event.atMs : event.lastCommitS === undefined ? undefined : Math.min(event.atMs, event.lastCommitS * 1000 + 999);
        if (candidate !== undefined) this.#caughtUpCandidate = Math.max(this.#caughtUpCandidate ?? 0, candidate);
        this.#settleCaughtUp();
        // An event of the backlog a (re)connect finds (after a restart or an outage) was
        // written before the agent saw it if it arrives well after its header's time: headers
        // date the backlog, or an hour behind would show as seconds. The first event of each
        // report does, while the stream is before the backlog's end (and the first report's
        // while that end is not known yet). Not later ones: they stream live, where a header
        // time is a statement's start (a long transaction, an upstream's time on a chained
        // replica, SET TIMESTAMP, a primary's clock behind the agent's) and would raise false
        // alarms; near its time the receive time is finer anyway (headers have whole seconds).
        const first = event.first;
        const end = this.#backlogEnd;
        if (first !== undefined) {
          // The header's time, to the last millisecond of its second (headers have whole seconds).
          const writtenByMs = first.timestampS * 1000 + 999;
          const inBacklog = this.#backlogStart || (end !== undefined && compareBinlogPositions(first, end) <= 0);
          if (inBacklog && event.atMs - writtenByMs > EVENT_TIME_TRUSTED_AFTER_MS) this.timeline.observe(first, writtenByMs);
          this.#backlogStart = false;
        }
        if (end !== undefined && compareBinlogPositions(event, end) >= 0) this.#backlogEnd = undefined;
        this.timeline.observe(event, event.atMs);
        break;
      }
      case 'failed':
        // What the broken stream brought proves nothing for the next one.
        this.#caughtUpCandidate = undefined;
        if (s.connected || s.disconnectedSinceMs === undefined) s.disconnectedSinceMs = nowMs;
        s.connected = false;
        s.failure = { state: event.state, code: event.code, message: event.message, hint: event.hint, atMs: nowMs };
        break;
    }
  }
}

/**
 * Durable event bytes between two durable points; across rotations, the old file's tail and every
 * file between count too (each file's events: its 4-byte magic is the writer's, not the stream's).
 */
function shippedBetween(before: BinlogPosition | undefined, after: BinlogPosition, fileEnds: ReadonlyMap<string, number>): number {
  if (before === undefined) return 0;
  if (before.file === after.file) return Math.max(0, after.position - before.position);
  let total = Math.max(0, (fileEnds.get(before.file) ?? before.position) - before.position);
  for (const [file, end] of fileEnds) {
    if (compareBinlogFiles(file, before.file) > 0 && compareBinlogFiles(file, after.file) < 0) total += Math.max(0, end - BINLOG_FIRST_EVENT_POSITION);
  }
  return total + Math.max(0, after.position - BINLOG_FIRST_EVENT_POSITION);
}
