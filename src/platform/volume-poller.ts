import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import { volumeSpace, type VolumeSpace } from './volume-space.js';

/** An archive volume as last read: its size and what this user may still write there. */
export interface VolumeReading extends VolumeSpace {
  atMs: number;
}

/**
 * Reads an archive volume (statfs) at start and every interval, so that the lag endpoint can
 * show how much room is left before a write fails with DISK_FULL (the agent for its `file`
 * replicas, the receiver for its archive, whose reading it sends to the agent). A failed
 * read (the volume gone, say) leaves no reading rather than a stale one.
 */
export class VolumePoller {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly options: {
      path: string;
      intervalMs: number;
      clock: Clock;
      logger: Logger;
      onReading: (reading: VolumeReading | undefined) => void;
    },
  ) {}

  start(): void {
    void this.#check();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  async #check(): Promise<void> {
    if (this.#stopped) return;
    try {
      const space = await volumeSpace(this.options.path);
      if (!this.#stopped) this.options.onReading({ ...space, atMs: this.options.clock.nowMs() });
    } catch (err) {
      this.options.logger.debug({ err, path: this.options.path }, 'cannot read the archive volume');
      if (!this.#stopped) this.options.onReading(undefined);
    }
    if (this.#stopped) return;
    this.#timer = setTimeout(() => void this.#check(), this.options.intervalMs);
    // A timer of its own must not keep a stopping agent alive.
    this.#timer.unref();
  }
}

