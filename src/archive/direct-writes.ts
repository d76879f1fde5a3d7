import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { writeAllAt } from '../platform/sliced-write.js';
import { AlignedBufferPool } from '../platform/aligned-buffer-pool.js';
import { O_DIRECT, memoryOffset } from '../platform/aligned-memory.js';

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

export interface DirectWriteLimits {
  /** Offsets, lengths and memory of O_DIRECT writes are multiples of this. */
  alignBytes: number;
  /** Aligned buffers the data is copied through: the memory bound. */
  buffers: number;
  /** Size of each buffer (a multiple of alignBytes). */
  bufferBytes: number;
}

/**
 * Writes with O_DIRECT, past the page cache. New archive data is written once and seldom read
 * again, and putting it in the page cache costs more than the copy itself: a fresh page for
 * every 4 KiB (on a virtual machine, often one the host has not backed yet), then the write-back
 * that fdatasync waits for. With O_DIRECT the device reads the bytes from memory that is used
 * again and again. Durability is unchanged: the device may still hold them in its cache, and
 * metadata (size, extents) is not written either, so ArchiveFiles.sync's fdatasync still does that.
 *
 * O_DIRECT wants aligned memory: data that lies aligned in memory from alignedMemory() is
 * written from where it is; anything else is copied through a few aligned buffers first. A file
 * system that refuses O_DIRECT (EINVAL) turns it off for this writer: the caller then writes the
 * same bytes through the page cache.
 */
export class DirectWriter {
  #enabled = O_DIRECT !== 0;
  readonly #pool: AlignedBufferPool;

  constructor(private readonly limits: DirectWriteLimits) {
    this.#pool = new AlignedBufferPool(limits.buffers, limits.bufferBytes);
  }

  get enabled(): boolean {
    return this.#enabled;
  }

  /** An O_DIRECT descriptor of the existing file `target`, or undefined when the file system refuses O_DIRECT (then it stays off). */
  async open(target: string): Promise<FileHandle | undefined> {
    if (!this.#enabled) return undefined;
    try {
      return await open(target, constants.O_WRONLY | O_DIRECT);
    } catch (err) {
      if (errCode(err) !== 'EINVAL') throw err;
      this.#enabled = false;
      return undefined;
    }
  }

  /**
   * Writes `data` at `offset` through `handle` (from open(); offset and length multiples of
   * alignBytes). Resolves true once written (not durable), false when the file system refuses
   * O_DIRECT: nothing may then be assumed written, and the caller writes it all through the page
   * cache.
   */
  async write(handle: FileHandle, offset: number, data: Buffer): Promise<boolean> {
    if (!this.#enabled) return false;
    const { alignBytes } = this.limits;
    if (offset % alignBytes !== 0 || data.length % alignBytes !== 0) throw new Error(`unaligned direct write (offset ${offset}, length ${data.length})`);
    const at = memoryOffset(data);
    if (at !== undefined && at % alignBytes === 0) {
      try {
        await writeAll(handle, data, offset);
        return true;
      } catch (err) {
        // EINVAL: the memory is not as aligned as the device wants after all; the copy is.
        if (errCode(err) !== 'EINVAL') throw err;
      }
    }
    // Copied through the aligned buffers; the pieces go out together, one buffer each, so
    // the device has several to work on.
    let failure: { err: unknown } | undefined;
    const pieces: Array<Promise<void>> = [];
    for (let from = 0; from < data.length && failure === undefined; ) {
      const buf = await this.#pool.take();
      const length = Math.min(buf.length, data.length - from);
      data.copy(buf, 0, from, from + length);
      pieces.push(
        writeAll(handle, buf.subarray(0, length), offset + from)
          .catch((err: unknown) => {
            failure ??= { err };
          })
          .finally(() => this.#pool.give(buf)),
      );
      from += length;
    }
    await Promise.all(pieces);
    if (failure !== undefined) {
      if (errCode(failure.err) !== 'EINVAL') throw failure.err;
      this.#enabled = false;
      return false;
    }
    return true;
  }

}

/** O_DIRECT writes skip the page cache, so they are not cut like buffered ones. */
const writeAll = (handle: FileHandle, data: Buffer, position: number): Promise<void> => writeAllAt(handle, data, position, Number.POSITIVE_INFINITY);
