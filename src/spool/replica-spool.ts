import type { BehaviorSubject, Subscription } from 'rxjs';
import type { SpoolSource } from '../config/schema.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import type { ReplicaSession } from '../replica/replica-target.js';
import { SpoolSyncer, type SpoolFilesSnapshot } from './spool-syncer.js';
import type { SpoolTuning } from './spool-tuning.js';

/**
 * The spool side of one replica: one syncer per configured source, running while the
 * replica's pipeline holds an open archive session, stopped when it closes, started again on
 * the next one (each start recovers what the archive durably has). The shipped-bytes total
 * lives here so it survives session changes.
 */
export class ReplicaSpool {
  #syncers: SpoolSyncer[] = [];
  #subscription: Subscription | undefined;
  #switching: Promise<void> = Promise.resolve();
  #shippedTotal = 0;
  /**
   * While no syncer runs (no session: the standby is away, or not reached yet): since when changes
   * may be waiting (the lag figures age from it, and the next session's syncers take it over), and
   * what the syncers had waiting when the session went (a lower bound: nothing watches the sources
   * then). Zeros instead read as "nothing pending" all through an outage, and the backlog as
   * seconds old once the standby was back.
   */
  #away: { sinceMs: number; changes: number; bytes: number; missing: SpoolFilesSnapshot['missingSources']; watchedUntilMs?: number } | undefined;

  constructor(
    private readonly options: {
      sources: readonly SpoolSource[];
      session$: BehaviorSubject<ReplicaSession | undefined>;
      logger: Logger;
      clock: Clock;
      tuning?: Partial<SpoolTuning>;
    },
  ) {}

  start(): void {
    if (this.options.sources.length === 0 || this.#subscription !== undefined) return;
    this.#away = { sinceMs: this.options.clock.nowMs(), changes: 0, bytes: 0, missing: [] };
    this.#subscription = this.options.session$.subscribe((session) => {
      // One chain of switches: a failure in one must not stop every later one from running.
      this.#switching = this.#switching.catch(() => undefined).then(async () => {
        if (this.#syncers.length > 0) {
          // What was pending when the session went stays pending until a new one ships it.
          const snap = this.snapshot();
          const now = this.options.clock.nowMs();
          const sinceMs = Math.min(this.#away?.sinceMs ?? now, now - snap.oldestPendingMs);
          // Watched up to now, but for what was pending (its changes may be older than their marks' debounce).
          this.#away = { sinceMs, changes: snap.pendingChanges, bytes: snap.pendingBytes, missing: snap.missingSources, watchedUntilMs: sinceMs };
        }
        await this.#stopSyncers();
        if (session === undefined) return;
        const pendingSinceMs = this.#away?.sinceMs;
        // Undefined before this process's first session: the journal says when the agent last looked.
        const awaySinceMs = this.#away?.watchedUntilMs;
        this.#away = undefined;
        this.#syncers = this.options.sources.map(
          (source) =>
            new SpoolSyncer({
              source,
              files: session.files,
              logger: this.options.logger,
              clock: this.options.clock,
              ...(this.options.tuning === undefined ? {} : { tuning: this.options.tuning }),
              onShipped: (bytes) => {
                this.#shippedTotal += bytes;
              },
              ...(pendingSinceMs === undefined ? {} : { pendingSinceMs }),
              ...(awaySinceMs === undefined ? {} : { awaySinceMs }),
            }),
        );
        for (const s of this.#syncers) s.start();
      });
      this.#switching.catch((err: unknown) => this.options.logger.error({ err }, 'switching the spool syncers to a new session failed'));
    });
  }

  /** Syncers run (the replica has an open session); false while the standby is away. */
  get syncing(): boolean {
    return this.#syncers.length > 0;
  }

  /** Stops every syncer; resolves once their passes under way are committed or abandoned. */
  async stop(): Promise<void> {
    this.#subscription?.unsubscribe();
    this.#subscription = undefined;
    await this.#switching;
    await this.#stopSyncers();
  }

  async #stopSyncers(): Promise<void> {
    const syncers = this.#syncers;
    this.#syncers = [];
    await Promise.all(syncers.map((s) => s.stop()));
  }

  /** The replica's spool lag, summed over its sources. */
  snapshot(): SpoolFilesSnapshot {
    const away = this.#syncers.length === 0 ? this.#away : undefined;
    const total: SpoolFilesSnapshot = {
      pendingChanges: away?.changes ?? 0,
      pendingBytes: away?.bytes ?? 0,
      oldestPendingMs: away === undefined ? 0 : Math.max(0, this.options.clock.nowMs() - away.sinceMs),
      bytesShippedTotal: this.#shippedTotal,
      // While away, as last seen (nothing looks at the sources for a standby that is not there).
      missingSources: away === undefined ? [] : [...away.missing],
    };
    for (const s of this.#syncers) {
      const one = s.snapshot();
      total.pendingChanges += one.pendingChanges;
      total.pendingBytes += one.pendingBytes;
      total.oldestPendingMs = Math.max(total.oldestPendingMs, one.oldestPendingMs);
      total.missingSources.push(...one.missingSources);
    }
    return total;
  }
}
