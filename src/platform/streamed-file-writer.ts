import type { FileHandle } from 'node:fs/promises';
import { DEFAULT_PAGE_CACHE_WRITE_BYTES, DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT, DEFAULT_STREAMED_WRITE_SLOTS, DEFAULT_STREAMED_WRITEBACK_BYTES } from '../config/defaults.js';
import { assert } from '../core/assert.js';
import { writevAllAt } from './sliced-write.js';

/**
 * Thread-pool writes shared by every StreamedFileWriter of the process. Each writer bounds its
 * own writes too, but a logical base writes four files at once and a receiver takes several
 * uploads: counted per file only, a hung volume could again hold every thread of the pool.
 */
export class WriteSlots {
  #free: number;
  readonly #waiting: Array<() => void> = [];

  constructor(slots: number) {
    assert(Number.isInteger(slots) && slots >= 1, 'at least one write slot');
    this.#free = slots;
  }

  async take(): Promise<void> {
    if (this.#free > 0) {
      this.#free -= 1;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** A slot now, or false (for work that can wait for a later turn: a background write-back). */
  tryTake(): boolean {
    if (this.#free === 0) return false;
    this.#free -= 1;
    return true;
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next !== undefined) next();
    else this.#free += 1;
  }
}

/** The process's slots for streamed files (DEFAULT_STREAMED_WRITE_SLOTS). */
const PROCESS_WRITE_SLOTS = new WriteSlots(DEFAULT_STREAMED_WRITE_SLOTS);

export interface StreamedFileWriterLimits {
  /** Chunks are gathered into one writev of at least this many bytes (a larger chunk is cut into slices of it). */
  groupBytes: number;
  /** Writes in the thread pool at once; the producer waits while this many are. */
  writesInFlight: number;
  /** An fdatasync starts in the background after this many bytes since the last one began. */
  writebackBytes: number;
  /** Shared with the other writers: every write and write-back holds one while it runs. */
  slots: WriteSlots;
}

const DEFAULT_LIMITS: StreamedFileWriterLimits = {
  groupBytes: DEFAULT_PAGE_CACHE_WRITE_BYTES,
  writesInFlight: DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT,
  writebackBytes: DEFAULT_STREAMED_WRITEBACK_BYTES,
  slots: PROCESS_WRITE_SLOTS,
};

/**
 * Writes a stream of chunks one after the other into a new file without waiting for each
 * write before taking the next chunk, and makes the file durable as it goes.
 *
 * Written one chunk at a time, a mariabackup stream stalled on every write: its 64 KiB pipe
 * filled while this process waited for the thread pool, and the file's hundreds of megabytes
 * met the disk only at the final fsync, after the stream had ended (a 600 MB physical base:
 * 2.5 s, 0.6 s of it the fsync alone). Here chunks are gathered into writes of `groupBytes`, up
 * to `writesInFlight` of them are under way while the next chunks arrive, and an fdatasync every
 * `writebackBytes` sends what is written so far to the disk in the background, so the final sync
 * has only the tail left. The writes are counted, not only their bytes: a gzip stream's small
 * chunks would otherwise put hundreds of writes in the shared thread pool, and a hung volume
 * would then hold every thread the other replicas need. Nothing counts before `finish()`
 * resolves: the caller renames the file into place only then.
 */
export class StreamedFileWriter {
  /** Where the next group starts in the file. */
  #at = 0;
  #group: Buffer[] = [];
  #groupBytes = 0;
  #inFlight = 0;
  /** Wakes a producer waiting for a write to end. */
  #wake: (() => void) | undefined;
  #failure: { err: unknown } | undefined;
  #sinceWriteback = 0;
  #writeback: Promise<void> | undefined;

  constructor(
    private readonly handle: FileHandle,
    private readonly limits: StreamedFileWriterLimits = DEFAULT_LIMITS,
  ) {
    assert(limits.writesInFlight >= 1, 'a streamed file has at least one write in flight');
  }

  /** Bytes taken so far. */
  get bytes(): number {
    return this.#at + this.#groupBytes;
  }

  /** Takes `chunk` (after the bytes before it); resolves once there is room for more. Throws an earlier write's error. */
  async write(chunk: Buffer): Promise<void> {
    this.#throwIfFailed();
    if (chunk.length === 0) return;
    this.#group.push(chunk);
    this.#groupBytes += chunk.length;
    if (this.#groupBytes >= this.limits.groupBytes) await this.#flushGroup();
  }

  /** Writes what is gathered, waits for every write and fsyncs the file; throws the first error of any write or write-back. */
  async finish(): Promise<void> {
    if (this.#groupBytes > 0) await this.#flushGroup();
    await this.settle();
    this.#throwIfFailed();
    await this.handle.sync();
  }

  /** Waits for every write and write-back under way, whatever their outcome (before closing the file after a failure). */
  async settle(): Promise<void> {
    while (this.#inFlight > 0) await this.#nextWriteEnd();
    await this.#writeback;
  }

  async #flushGroup(): Promise<void> {
    while (this.#inFlight >= this.limits.writesInFlight) await this.#nextWriteEnd();
    this.#throwIfFailed();
    const group = this.#group;
    const bytes = this.#groupBytes;
    const at = this.#at;
    this.#group = [];
    this.#groupBytes = 0;
    this.#at += bytes;
    this.#inFlight += 1;
    const slots = this.limits.slots;
    // One slice at a time within a group: the counts are the number of thread-pool writes.
    void slots
      .take()
      .then(() => writevAllAt(this.handle, group, at, this.limits.groupBytes, 1).finally(() => slots.give()))
      .catch((err: unknown) => {
        this.#failure ??= { err };
      })
      .finally(() => {
        this.#inFlight -= 1;
        const wake = this.#wake;
        this.#wake = undefined;
        wake?.();
      });
    this.#sinceWriteback += bytes;
    // A write-back only when a slot is free at once; otherwise at a later group.
    if (this.#sinceWriteback >= this.limits.writebackBytes && this.#writeback === undefined && slots.tryTake()) this.#startWriteback();
  }

  #nextWriteEnd(): Promise<void> {
    return new Promise<void>((resolve) => {
      const previous = this.#wake;
      this.#wake = () => {
        previous?.();
        resolve();
      };
    });
  }

  #startWriteback(): void {
    this.#sinceWriteback = 0;
    // An error reported by this fdatasync is not reported again by a later fsync of the file
    // (Linux reports a write-back error once per open file), so it is kept and thrown.
    this.#writeback = this.handle
      .datasync()
      .catch((err: unknown) => {
        this.#failure ??= { err };
      })
      .finally(() => {
        this.#writeback = undefined;
        this.limits.slots.give();
      });
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.err;
  }
}
