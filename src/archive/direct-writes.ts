import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { writeAllAt } from '../platform/sliced-write.js';

/** O_DIRECT where the platform has one (Linux); elsewhere 0, and every write stays buffered. */
const O_DIRECT = (constants as { O_DIRECT?: number }).O_DIRECT ?? 0;
/** WebAssembly memory grows in pages of this size. */
const WASM_PAGE_BYTES = 64 * 1024;
/** The one WebAssembly API used here (the project's TypeScript libraries do not declare it); absent under --jitless. */
const Memory = (globalThis as unknown as {
  WebAssembly?: { Memory: new (d: { initial: number; maximum?: number; shared?: boolean }) => { buffer: ArrayBuffer | SharedArrayBuffer } };
}).WebAssembly?.Memory;

export const alignDown = (n: number, align: number): number => n - (n % align);
export const alignUp = (n: number, align: number): number => alignDown(n + align - 1, align);

const errCode = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/** Memory made by alignedMemory(): its first byte is page-aligned. */
const pageAligned = new WeakSet<ArrayBufferLike>();

/**
 * Memory whose start is page-aligned, for buffers that O_DIRECT may write from without a copy.
 * Node can neither allocate aligned memory nor tell where a Buffer lies; a WebAssembly memory
 * is mapped by V8 on pages of its own, so its start is page-aligned. Its pages are the system's
 * zero pages until written, like any large allocation. `shared` makes it a SharedArrayBuffer.
 */
export function alignedMemory(bytes: number, shared = false): ArrayBuffer | SharedArrayBuffer {
  // Without WebAssembly, plain memory: writes from it are copied through DirectWriter's buffers.
  if (Memory === undefined) return shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  const pages = Math.ceil(bytes / WASM_PAGE_BYTES);
  const { buffer } = new Memory(shared ? { initial: pages, maximum: pages, shared } : { initial: pages });
  pageAligned.add(buffer);
  return buffer;
}

/** Where `data` starts in memory modulo any alignment up to a page, when known (memory from alignedMemory()); otherwise undefined. */
export function memoryOffset(data: Buffer): number | undefined {
  return pageAligned.has(data.buffer) ? data.byteOffset : undefined;
}

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
  /** Made at the first direct write: a writer that never has one holds no memory. */
  #free: Buffer[] | undefined;
  #waiters: Array<(buf: Buffer) => void> = [];

  constructor(private readonly limits: DirectWriteLimits) {}

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
      const buf = await this.#take();
      const length = Math.min(buf.length, data.length - from);
      data.copy(buf, 0, from, from + length);
      pieces.push(
        writeAll(handle, buf.subarray(0, length), offset + from)
          .catch((err: unknown) => {
            failure ??= { err };
          })
          .finally(() => this.#give(buf)),
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

  async #take(): Promise<Buffer> {
    this.#free ??= this.#allocate();
    const buf = this.#free.pop();
    if (buf !== undefined) return buf;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  #give(buf: Buffer): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(buf);
    else this.#free?.push(buf);
  }

  #allocate(): Buffer[] {
    const { buffers, bufferBytes } = this.limits;
    const all = Buffer.from(alignedMemory(buffers * bufferBytes));
    return Array.from({ length: buffers }, (_, i) => all.subarray(i * bufferBytes, (i + 1) * bufferBytes));
  }
}

/** O_DIRECT writes skip the page cache, so they are not cut like buffered ones. */
const writeAll = (handle: FileHandle, data: Buffer, position: number): Promise<void> => writeAllAt(handle, data, position, Number.POSITIVE_INFINITY);
