import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { LagReport } from '../agent/lag-monitor.js';

const STATES = ['streaming', 'catching-up', 'disconnected', 'gap', 'error'] as const;

/**
 * The Prometheus view of a lag report: one private registry (never prom-client's global
 * one) with the process's default metrics and the hotspare_* series. The values are set
 * from the same report that /lag would return at that instant, so both always agree.
 */
export class LagMetrics {
  readonly registry = new Registry();
  readonly #lagSeconds: Gauge<'replica'>;
  readonly #lagBytes: Gauge<'replica'>;
  readonly #up: Gauge<'replica'>;
  readonly #state: Gauge<'replica' | 'state'>;
  readonly #purgeWarning: Gauge<'replica'>;
  readonly #filesPendingBytes: Gauge<'replica'>;
  readonly #filesPendingChanges: Gauge<'replica'>;
  readonly #filesOldestPendingSeconds: Gauge<'replica'>;
  readonly #binlogShipped: Counter<'replica'>;
  readonly #filesShipped: Counter<'replica'>;
  readonly #primaryReachable: Gauge;
  readonly #volumeSize: Gauge<'replica'>;
  readonly #volumeFree: Gauge<'replica'>;
  readonly #volumeChecked: Gauge<'replica'>;
  readonly #caughtUp: Gauge<'replica'>;
  /** Counters only go up: remember what each already shows and add the difference. */
  readonly #counted = new Map<string, number>();

  constructor() {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.#lagSeconds = new Gauge({ name: 'hotspare_replica_lag_seconds', help: 'Age of the oldest binlog event not yet durable on the replica (0 when caught up).', labelNames: ['replica'], registers });
    this.#lagBytes = new Gauge({ name: 'hotspare_replica_lag_bytes', help: 'Binlog bytes on the primary not yet durable on the replica, across files.', labelNames: ['replica'], registers });
    this.#up = new Gauge({ name: 'hotspare_replica_up', help: '1 while the replica has a live stream from the primary.', labelNames: ['replica'], registers });
    this.#state = new Gauge({ name: 'hotspare_replica_state', help: '1 for the replica\'s current state, 0 for the others.', labelNames: ['replica', 'state'], registers });
    this.#purgeWarning = new Gauge({ name: 'hotspare_replica_purge_warning', help: '1 when the primary is about to purge binlog the replica still needs.', labelNames: ['replica'], registers });
    this.#filesPendingBytes = new Gauge({ name: 'hotspare_files_pending_bytes', help: 'Spool bytes changed but not yet durable on the replica.', labelNames: ['replica'], registers });
    this.#filesPendingChanges = new Gauge({ name: 'hotspare_files_pending_changes', help: 'Spool changes not yet durable on the replica.', labelNames: ['replica'], registers });
    this.#filesOldestPendingSeconds = new Gauge({ name: 'hotspare_files_oldest_pending_seconds', help: 'Age of the oldest spool change not yet durable on the replica.', labelNames: ['replica'], registers });
    this.#binlogShipped = new Counter({ name: 'hotspare_binlog_bytes_shipped_total', help: 'Binlog bytes made durable on the replica by this agent process.', labelNames: ['replica'], registers });
    this.#filesShipped = new Counter({ name: 'hotspare_files_bytes_shipped_total', help: 'Spool bytes made durable on the replica by this agent process.', labelNames: ['replica'], registers });
    this.#primaryReachable = new Gauge({ name: 'hotspare_primary_reachable', help: '1 while the primary answers the agent\'s head checks (with its head, or with an error of its own: see /lag primary.error); 0 when it does not.', registers });
    this.#volumeSize = new Gauge({ name: 'hotspare_archive_volume_size_bytes', help: 'Size of a replica\'s archive volume (a remote one\'s as its receiver reports it; absent until read).', labelNames: ['replica'], registers });
    this.#volumeFree = new Gauge({ name: 'hotspare_archive_volume_free_bytes', help: 'Bytes the archive\'s writer may still write on a replica\'s archive volume (a remote one\'s as its receiver reports it; absent until read).', labelNames: ['replica'], registers });
    // A remote replica's reading comes from its receiver: while the receiver is away none
    // come, and the age says how old the room figures are.
    this.#volumeChecked = new Gauge({ name: 'hotspare_archive_volume_checked_timestamp_seconds', help: 'When the archive volume figures were read (Unix time).', labelNames: ['replica'], registers });
    // While the primary is unreachable the lag grows on every replica; this tells the ones that
    // hold all the agent ever saw of it (equal to the last head check) from the others.
    this.#caughtUp = new Gauge({ name: 'hotspare_replica_caught_up_timestamp_seconds', help: 'The latest time the replica is known to have held, durably, every binlog byte the primary had written (Unix time; absent until known).', labelNames: ['replica'], registers });
  }

  /** The text exposition of `report` plus the process metrics. */
  async render(report: LagReport): Promise<string> {
    this.#primaryReachable.set(report.primary.reachable ? 1 : 0);
    for (const r of report.replicas) {
      const replica = r.name;
      this.#lagSeconds.set({ replica }, r.binlog.secondsBehind);
      this.#lagBytes.set({ replica }, r.binlog.bytesBehind);
      this.#up.set({ replica }, r.up ? 1 : 0);
      for (const state of STATES) this.#state.set({ replica, state }, r.state === state ? 1 : 0);
      this.#purgeWarning.set({ replica }, r.warnings.some((w) => w.code === 'PURGE_SOON') ? 1 : 0);
      this.#filesPendingBytes.set({ replica }, r.files.pendingBytes);
      this.#filesPendingChanges.set({ replica }, r.files.pendingChanges);
      this.#filesOldestPendingSeconds.set({ replica }, r.files.oldestPendingSeconds);
      if (r.binlog.caughtUpAt === null) this.#caughtUp.remove({ replica });
      else this.#caughtUp.set({ replica }, Date.parse(r.binlog.caughtUpAt) / 1000);
      this.#advance(this.#binlogShipped, replica, 'binlog', r.binlog.bytesShippedTotal);
      this.#advance(this.#filesShipped, replica, 'files', r.files.bytesShippedTotal);
      if (r.volume === null) {
        this.#volumeSize.remove({ replica });
        this.#volumeFree.remove({ replica });
        this.#volumeChecked.remove({ replica });
      } else {
        this.#volumeSize.set({ replica }, r.volume.totalBytes);
        this.#volumeFree.set({ replica }, r.volume.freeBytes);
        this.#volumeChecked.set({ replica }, Date.parse(r.volume.checkedAt) / 1000);
      }
    }
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #advance(counter: Counter<'replica'>, replica: string, kind: string, total: number): void {
    const key = `${kind}\0${replica}`;
    const shown = this.#counted.get(key);
    if (shown === undefined) {
      counter.inc({ replica }, total);
    } else if (total > shown) {
      counter.inc({ replica }, total - shown);
    } else {
      return;
    }
    this.#counted.set(key, total);
  }
}
