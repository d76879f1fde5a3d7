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
/** Whose point it is: a point is used only for the same replica of the same primary and archive. */
export interface PointOwner {
  /** The primary (serverId@hostname, or its server_uuid). */
  primary: string;
  /** The replica's archive: a file replica's path, a remote one's address. */
  target: string;
}

interface SavedPoint extends PointOwner {
  point: DurablePoint;
  /** A time by which the replica held every byte the primary had written (ReplicaSnapshot.caughtUpAtMs), when known. */
  caughtUpAtMs?: number | undefined;
}

export class DurablePointsFile {
  readonly #path: string;
  readonly #points = new Map<string, SavedPoint>();
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
    for (const [name, saved] of readSaved(stateDir, logger)) this.#points.set(name, saved);
    this.#timer = interval(intervalMs, scheduler).subscribe(() => this.#save());
  }

  /**
   * The point the last run saved for `replica`, if it was saved for the same primary and the
   * same archive (a failover to another primary, a RESET MASTER's new server, a replica name
   * moved to another standby: none).
   */
  static load(stateDir: string, replica: string, owner: PointOwner, logger: Logger): { point: DurablePoint; caughtUpAtMs: number | undefined } | undefined {
    const saved = readSaved(stateDir, logger).get(replica);
    if (saved === undefined || saved.primary !== owner.primary || saved.target !== owner.target) return undefined;
    return { point: saved.point, caughtUpAtMs: typeof saved.caughtUpAtMs === 'number' && Number.isFinite(saved.caughtUpAtMs) ? saved.caughtUpAtMs : undefined };
  }

  update(replica: string, owner: PointOwner, point: DurablePoint, caughtUpAtMs: number | undefined): void {
    this.#points.set(replica, { ...owner, point, ...(caughtUpAtMs === undefined ? {} : { caughtUpAtMs }) });
    this.#dirty = true;
  }

  /**
   * A later "caught up by" time for a replica whose point is already kept: saved only once it
   * has moved `stepMs` (an idle primary's heartbeats move it every second).
   */
  updateCaughtUp(replica: string, caughtUpAtMs: number | undefined, stepMs: number): void {
    const saved = this.#points.get(replica);
    if (saved === undefined || caughtUpAtMs === undefined || caughtUpAtMs - (saved.caughtUpAtMs ?? -Infinity) < stepMs) return;
    saved.caughtUpAtMs = caughtUpAtMs;
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

/** The saved points by replica (none if none were saved, or the file does not parse). */
function readSaved(stateDir: string, logger: Logger): Map<string, SavedPoint> {
  const out = new Map<string, SavedPoint>();
  let text: string;
  try {
    text = readFileSync(join(stateDir, DURABLE_POINTS_FILE), 'utf8');
  } catch {
    return out;
  }
  try {
    const parsed = JSON.parse(text) as Record<string, SavedPoint>;
    for (const [name, saved] of Object.entries(parsed)) {
      const p = saved?.point;
      if (typeof saved?.primary === 'string' && typeof saved.target === 'string' && typeof p?.file === 'string' && Number.isSafeInteger(p.position)) out.set(name, saved);
    }
  } catch (err) {
    logger.warn({ err, path: join(stateDir, DURABLE_POINTS_FILE) }, 'the saved durable points do not parse; the replicas not reached yet count from the primary\'s oldest file');
  }
  return out;
}
