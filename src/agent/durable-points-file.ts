import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { asyncScheduler, interval, type SchedulerLike, type Subscription } from 'rxjs';
import type { DurablePoint } from '../core/binlog-record.js';
import { writeFileDurable } from '../platform/durable-file.js';
import type { Logger } from '../platform/logger.js';

/** The file in the agent's stateDir. */
export const DURABLE_POINTS_FILE = 'durable-points.json';

/**
 * Each replica's last durable point, kept in the agent's stateDir: a restarted agent knows where
 * a standby it cannot reach yet stands, so its lag counts from there (the bytes the primary
 * wrote since) instead of from the primary's oldest binlog file, which read as gigabytes
 * behind, in /lag and in `hotspare_replica_lag_bytes`, for a standby that held nearly
 * everything. The point may be a few seconds older than the archive's (saved every
 * `intervalMs`, and at stop): only this agent writes the archive, so it is never ahead of it.
 */
export class DurablePointsFile {
  readonly #path: string;
  readonly #points = new Map<string, DurablePoint>();
  #dirty = false;
  #saving: Promise<void> = Promise.resolve();
  readonly #timer: Subscription;

  constructor(
    stateDir: string,
    intervalMs: number,
    private readonly logger: Logger,
    scheduler: SchedulerLike = asyncScheduler,
  ) {
    this.#path = join(stateDir, DURABLE_POINTS_FILE);
    for (const [name, point] of DurablePointsFile.load(stateDir, logger)) this.#points.set(name, point);
    this.#timer = interval(intervalMs, scheduler).subscribe(() => this.#save());
  }

  /** The points the last run saved (none if it saved none, or the file does not parse). */
  static load(stateDir: string, logger: Logger): Map<string, DurablePoint> {
    const out = new Map<string, DurablePoint>();
    let text: string;
    try {
      text = readFileSync(join(stateDir, DURABLE_POINTS_FILE), 'utf8');
    } catch {
      return out;
    }
    try {
      const parsed = JSON.parse(text) as Record<string, DurablePoint>;
      for (const [name, p] of Object.entries(parsed)) {
        if (typeof p?.file === 'string' && Number.isSafeInteger(p.position)) out.set(name, p);
      }
    } catch (err) {
      logger.warn({ err, path: join(stateDir, DURABLE_POINTS_FILE) }, 'the saved durable points do not parse; the replicas not reached yet count from the primary\'s oldest file');
    }
    return out;
  }

  update(replica: string, point: DurablePoint): void {
    this.#points.set(replica, point);
    this.#dirty = true;
  }

  /** Stops the timer and saves what changed since the last save. */
  async close(): Promise<void> {
    this.#timer.unsubscribe();
    this.#save();
    await this.#saving;
  }

  #save(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    const text = `${JSON.stringify(Object.fromEntries(this.#points))}\n`;
    // One save at a time; a failed one is only a staler estimate at the next start.
    this.#saving = this.#saving.then(() =>
      writeFileDurable(this.#path, text).catch((err: unknown) => {
        this.#dirty = true;
        this.logger.debug({ err }, 'could not save the replicas\' durable points');
      }),
    );
  }
}
