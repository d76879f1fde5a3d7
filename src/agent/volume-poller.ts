import type { StatsFs } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';

/** A `file` replica's archive volume as last read: its size and what this user may still write there. */
export interface VolumeReading {
  totalBytes: number;
  freeBytes: number;
  atMs: number;
}

/**
 * Reads a `file` replica's archive volume (statfs) at start and every interval, so that the
 * lag endpoint can show how much room is left before a write fails with DISK_FULL. A failed
 * read (the volume unmounted, the folder not made yet) leaves the last reading out.
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
      const fs = await statfsNearest(this.options.path);
      if (!this.#stopped) this.options.onReading({ totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize, atMs: this.options.clock.nowMs() });
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

/**
 * statfs of `path`, or of its nearest existing ancestor while the archive folder is not made
 * yet (the agent makes it when the replica's session first opens): the same volume, unless
 * the folder would itself be a mount point, which cannot be mounted before it exists.
 */
async function statfsNearest(path: string): Promise<StatsFs> {
  for (let at = path; ; at = dirname(at)) {
    try {
      return await statfs(at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
    }
  }
}
