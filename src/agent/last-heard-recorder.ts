import { Subject, asyncScheduler, firstValueFrom, from, map, race, throttleTime, timer, type SchedulerLike, type Subscription, type BehaviorSubject } from 'rxjs';
import { LAST_HEARD_PATH, type LastHeardRecord } from '../archive/last-heard.js';
import type { ReplicaEvent } from '../pipeline/replica-status.js';
import { DEFAULT_STOP_SETTLE_MS } from '../config/defaults.js';
import type { Logger } from '../platform/logger.js';
import type { ReplicaSession } from '../replica/replica-target.js';

/**
 * A record as observed: its ISO date is made only for the records written (at most one per
 * interval), not for each of the agent's reports (one per turn of the event loop in a catch-up).
 */
type HeardRecord = Omit<LastHeardRecord, 'at'>;

/**
 * Keeps `state/last-heard.json` in a replica's archive: the moment the agent last heard from
 * the primary. When the primary dies, the agent hears nothing more, so the newest record is
 * the end of the loss window `promote` reports. Heartbeats count: an idle primary is still
 * heard. Written through the replica's open session (so it reaches a remote standby too), at
 * most once per interval, the last observation always written (a trailing write), one write
 * at a time. A failed write is logged and tried again an interval later (and a session that
 * opens again gets the newest record): the record is a report, never a reason to stop streaming.
 */
export class LastHeardRecorder {
  readonly #heard = new Subject<HeardRecord>();
  readonly #subscription: Subscription;
  readonly #session$: BehaviorSubject<ReplicaSession | undefined>;
  readonly #logger: Logger;
  /** The archive's durable end and its last transaction boundary, as the record states them. */
  #held: Pick<LastHeardRecord, 'durable' | 'boundary'> = { durable: undefined, boundary: undefined };
  #last: HeardRecord | undefined;
  #written: HeardRecord | undefined;
  #writing: Promise<void> = Promise.resolve();
  /** A write of #schedule's is under way; #next waits for it. */
  #busy = false;
  #next: HeardRecord | undefined;
  #stopped = false;
  /** stop() stopped waiting for the last write: its failure, if it comes, is no news. */
  #abandoned = false;
  readonly #scheduler: SchedulerLike;
  readonly #intervalMs: number;
  /** A retry of the newest record after a failed write. */
  #retry: Subscription | undefined;
  /** The last write failed (warned once until one succeeds). */
  #failing = false;

  constructor(options: { session$: BehaviorSubject<ReplicaSession | undefined>; intervalMs: number; logger: Logger; scheduler?: SchedulerLike }) {
    this.#session$ = options.session$;
    this.#logger = options.logger;
    this.#scheduler = options.scheduler ?? asyncScheduler;
    this.#intervalMs = options.intervalMs;
    this.#subscription = this.#heard
      .pipe(
        throttleTime(options.intervalMs, this.#scheduler, { leading: true, trailing: true }),
      )
      .subscribe((record) => this.#schedule(record));
    // A session opening again (the standby back) gets the newest record at once: what the
    // agent heard while it was away was never written, and the primary may be silent now.
    this.#subscription.add(
      this.#session$.subscribe((session) => {
        if (session !== undefined) this.#catchUp();
      }),
    );
  }

  /** Writes the newest record if the archive does not hold it yet. */
  #catchUp(): void {
    const last = this.#last;
    if (!this.#stopped && last !== undefined && last !== this.#written) this.#schedule(last);
  }

  /**
   * After a failed write, the newest record is tried again an interval later, not only with
   * the next observation: when the primary has just died there is none, and the record would
   * stay older than the last moment it was heard (promote would understate the loss window).
   */
  #retryLater(): void {
    this.#retry?.unsubscribe();
    this.#retry = timer(this.#intervalMs, this.#scheduler).subscribe(() => {
      this.#retry = undefined;
      this.#catchUp();
    });
  }

  /**
   * Writes `record` after the write under way, if any; one waiting meanwhile is replaced (only
   * the newest matters), so a slow archive (a remote request can take minutes) holds one
   * record back, not one per interval.
   */
  #schedule(record: HeardRecord): void {
    if (this.#busy) {
      this.#next = record;
      return;
    }
    this.#busy = true;
    void this.#write(record).finally(() => this.#afterWrite());
  }

  #afterWrite(): void {
    const next = this.#next;
    this.#next = undefined;
    // After stop(), which writes the newest record itself: nothing more (the session may be
    // closing, and a request to a remote archive would keep the process up until it timed out).
    if (next === undefined || this.#stopped) {
      this.#busy = false;
      return;
    }
    void this.#write(next).finally(() => this.#afterWrite());
  }

  #write(record: HeardRecord): Promise<void> {
    this.#writing = this.#writing.then(async () => {
      const session = this.#session$.value;
      if (session === undefined) return;
      try {
        const written: LastHeardRecord = { at: new Date(record.atMs).toISOString(), ...record };
        await session.files.putFile(LAST_HEARD_PATH, Buffer.from(`${JSON.stringify(written)}\n`));
        this.#written = record;
        this.#failing = false;
      } catch (err) {
        // The write outlived the stop's wait (which said so) and the session closed under it: there is no next observation.
        if (this.#abandoned) this.#logger.debug({ err }, 'the last record of when the primary was last heard did not reach the archive before the session closed');
        else {
          // Once per run of failures: a full volume would otherwise say so every interval.
          if (!this.#failing) this.#logger.warn({ err }, 'could not record when the primary was last heard; retrying every interval');
          else this.#logger.debug({ err }, 'recording when the primary was last heard failed again');
          this.#failing = true;
          if (!this.#stopped) this.#retryLater();
        }
      }
    });
    return this.#writing;
  }

  /** Feeds one pipeline event. */
  observe(event: ReplicaEvent): void {
    // The durable point is never forgotten: a dump that reconnects keeps its session (and its
    // archive's end), and a new session announces its durable end before anything else. It
    // was cleared at `connected`, and an idle primary sends no event after a reconnect: every
    // record then said the archive had not caught up, and promote counted a loss window.
    if (event.kind === 'durable') {
      const { point } = event;
      this.#held = { durable: { file: point.file, position: point.position }, boundary: { file: point.boundaryFile, position: point.boundaryPosition } };
      // The bytes heard last just became durable: record that the archive caught up with them.
      const last = this.#last;
      if (last !== undefined && !last.caughtUp && this.#covers(last.primary)) this.#emit({ ...last, ...this.#held, caughtUp: true });
    }
    if (event.kind !== 'received') return;
    const primary = { file: event.file, position: event.position };
    this.#emit({ atMs: event.atMs, primary, ...this.#held, caughtUp: this.#covers(primary) });
  }

  #covers(primary: { file: string; position: number }): boolean {
    const durable = this.#held.durable;
    return durable !== undefined && durable.file === primary.file && durable.position >= primary.position;
  }

  #emit(record: HeardRecord): void {
    this.#last = record;
    this.#heard.next(record);
  }

  /**
   * Stops recording; the newest observation is written first if the throttle still held it,
   * so an agent stopped right after catching up leaves a record that says so. For at most
   * DEFAULT_STOP_SETTLE_MS: over a slow link the write waits behind whatever the session sent
   * before (a base upload's pieces, minutes of them), and a stop must not wait for that. The
   * write goes on while the session closes; the record left is then only older.
   */
  async stop(): Promise<void> {
    this.#subscription.unsubscribe();
    this.#retry?.unsubscribe();
    this.#stopped = true;
    const last = this.#last;
    const writing = last !== undefined && last !== this.#written ? this.#write(last) : this.#writing;
    // race() unsubscribes the timer once the write is done, so nothing keeps the process waiting.
    const outcome = await firstValueFrom(race(from(writing.then(() => 'written' as const)), timer(DEFAULT_STOP_SETTLE_MS, this.#scheduler).pipe(map(() => 'late' as const))));
    if (outcome === 'late') {
      this.#abandoned = true;
      this.#logger.warn({ waitedMs: DEFAULT_STOP_SETTLE_MS }, 'the newest record of when the primary was last heard is still on its way to the archive; stopping without waiting for it');
    }
  }
}
