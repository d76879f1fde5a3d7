import type { FileHandle } from 'node:fs/promises';
import { DEFAULT_PAGE_CACHE_WRITE_BYTES, DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT, DEFAULT_STREAMED_WRITEBACK_BYTES } from '../config/defaults.js';
import { writevAllAt } from './sliced-write.js';

export interface StreamedFileWriterLimits {
  /** Chunks are gathered into one writev of at least this many bytes (a larger chunk is cut into slices of it). */
  groupBytes: number;
  /** Writes in the thread pool at once; the producer waits while this many are. */
  writesInFlight: number;
  /** An fdatasync starts in the background after this many bytes since the last one began. */
  writebackBytes: number;
}

const DEFAULT_LIMITS: StreamedFileWriterLimits = {
  groupBytes: DEFAULT_PAGE_CACHE_WRITE_BYTES,
  writesInFlight: DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT,
  writebackBytes: DEFAULT_STREAMED_WRITEBACK_BYTES,
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
  ) {}

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
    // One slice at a time within a group: the count above is the number of thread-pool writes.
    void writevAllAt(this.handle, group, at, this.limits.groupBytes, 1)
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
    if (this.#sinceWriteback >= this.limits.writebackBytes && this.#writeback === undefined) this.#startWriteback();
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
      });
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.err;
  }
}
