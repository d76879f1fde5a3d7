import { DEFAULT_SPOOL_IDLE_READERS_MAX } from '../config/defaults.js';
import type { Logger } from '../platform/logger.js';
import { FileReader, sameReaderConfig, type ReaderConfig } from './file-reader.js';

/**
 * Spool readers kept between the syncers that use them one after another: each session of a
 * replica (every reconnect of a standby) starts a syncer per source, and a new reader thread
 * took 35-40 ms to load and then walked and read as cold code. Measured on the benchmark's tree
 * (231 MiB in 3,154 files, a new archive each time): with a new thread the walk was done 65 ms
 * after the start and the reads took 230-330 ms more; with a kept one, the walk was done when
 * the archive was open (20 ms) and the reads took 220-240 ms, 0.24 s in all instead of 0.33,
 * and a third less CPU. A reader is lent to one syncer at a time, never shared: syncers that
 * run side by side (a replica each) each have their own thread and buffers, so a slow replica
 * holding its buffers never stalls another's reads. A kept reader's thread ends by itself after
 * its idleMs without work, as any reader's does; the pool then holds only the small object,
 * at most `idleMax` of them.
 */
export class ReaderPool {
  readonly #idle: FileReader[] = [];

  constructor(private readonly idleMax = DEFAULT_SPOOL_IDLE_READERS_MAX) {}

  /** A reader of `config` for the caller alone until it is released: a kept one if there is one, else a new one. */
  acquire(config: ReaderConfig, idleMs: number, log: Logger): FileReader {
    const i = this.#idle.findIndex((r) => r.idleMs === idleMs && sameReaderConfig(r.config, config));
    const kept = i < 0 ? undefined : this.#idle.splice(i, 1)[0];
    if (kept === undefined) return new FileReader(config, idleMs, log);
    kept.log = log;
    return kept;
  }

  /**
   * Takes a reader back. One still working (a walk its syncer asked for and never took) is
   * closed rather than kept: the next syncer would find its thread busy with another's work.
   */
  release(reader: FileReader): void {
    // Given back twice: it is kept once already (closing it would stop the thread it keeps).
    if (this.#idle.includes(reader)) return;
    if (reader.busy || this.#idle.length >= this.idleMax) {
      void reader.close();
      return;
    }
    this.#idle.push(reader);
  }

  /** Readers kept for the next syncer. */
  get kept(): number {
    return this.#idle.length;
  }
}

/** The process's pool: every syncer's unless it is given another. */
export const sharedReaders = new ReaderPool();
