import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { writevAllAt, writeAllAt } from '../platform/sliced-write.js';
import { AlignedBufferPool } from '../platform/aligned-buffer-pool.js';
import { O_DIRECT, alignDown } from '../platform/aligned-memory.js';


export interface DirectAppendLimits {
  /** O_DIRECT offsets, lengths and memory are multiples of this (the file system's block). */
  alignBytes: number;
  /** Aligned buffers the bytes are copied through, each `bufferBytes` long: the memory bound. */
  buffers: number;
  bufferBytes: number;
}

/**
 * What the files of one writer share (one file is appended to at a time): the aligned buffers,
 * and whether their volume takes O_DIRECT at all.
 */
export class DirectAppendBuffers {
  readonly pool: AlignedBufferPool;
  /** Off after a file system refused O_DIRECT: every later file of the writer is buffered. */
  enabled = O_DIRECT !== 0;
  /** Opens the O_DIRECT descriptor (a test may wrap it to make its writes fail). */
  readonly openDirect: (path: string) => Promise<FileHandle>;

  constructor(
    readonly limits: DirectAppendLimits,
    options: { openDirect?: (path: string) => Promise<FileHandle> } = {},
  ) {
    // No buffer would make take() wait forever; an unaligned one would only ever meet EINVAL.
    if (!Number.isInteger(limits.buffers) || limits.buffers < 1) throw new Error(`direct appends need at least one buffer, not ${limits.buffers}`);
    if (!(limits.alignBytes > 0) || limits.bufferBytes < limits.alignBytes || limits.bufferBytes % limits.alignBytes !== 0) {
      throw new Error(`direct append buffers of ${limits.bufferBytes} bytes are not whole blocks of ${limits.alignBytes}`);
    }
    this.pool = new AlignedBufferPool(limits.buffers, limits.bufferBytes);
    this.openDirect = options.openDirect ?? ((path) => open(path, constants.O_WRONLY | O_DIRECT));
  }
}

/**
 * One archived binlog file, appended to at its end. Whole blocks go to the disk with O_DIRECT,
 * copied through aligned buffers; the last, partial block is written through the page cache and
 * kept in memory, to be written again as the head of the next direct write once it fills.
 *
 * Why: on this project's virtual machines a buffered append pays for a fresh page-cache page per
 * 4 KiB (often one the host has not backed yet) and then for the write-back that fdatasync waits
 * for. 256 MB appended in 16 MB batches, each fdatasynced: buffered 0.29-1.08 s with 0.16-0.96 s
 * of system CPU, O_DIRECT 0.14-0.15 s with 0.02 s. During a catch-up that CPU is taken from the
 * dump on a two-core machine. Durability is unchanged: the device may hold direct writes in its
 * cache, and fdatasync (on `handle`) flushes that cache, the partial block and the file's size.
 *
 * The kernel keeps the two paths coherent: a direct write first writes back and drops the page
 * of the partial block it covers, and the next buffered write of a partial block happens only
 * after the direct write completed. A crash may leave the direct blocks without the partial one
 * after them (a hole of zeros); recovery cuts the tail at the first invalid event.
 */
export class BinlogAppendFile {
  /** The file's end: where the next append goes. */
  #end: number;
  /** The bytes of the partial block at the end: [alignDown(end), end). */
  readonly #head: Buffer;
  #headLength: number;
  #directBytes = 0;

  private constructor(
    /** Buffered descriptor: partial blocks, fdatasync, truncate, reads. */
    readonly handle: FileHandle,
    /** O_DIRECT descriptor of the same file, undefined when the volume refuses O_DIRECT. */
    private direct: FileHandle | undefined,
    private readonly buffers: DirectAppendBuffers,
    end: number,
    head: Buffer,
  ) {
    this.#end = end;
    this.#head = Buffer.alloc(buffers.limits.alignBytes);
    head.copy(this.#head);
    this.#headLength = head.length;
  }

  /** Creates `path` empty (mode `mode`). */
  static async create(path: string, mode: number, buffers: DirectAppendBuffers): Promise<BinlogAppendFile> {
    const handle = await open(path, 'w+', mode);
    try {
      return new BinlogAppendFile(handle, await openDirect(path, buffers), buffers, 0, Buffer.alloc(0));
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Opens the existing `path` to append at `end` (its partial block is read back once). */
  static async openAt(path: string, end: number, buffers: DirectAppendBuffers): Promise<BinlogAppendFile> {
    const handle = await open(path, 'r+');
    try {
      const head = await readHead(handle, end, buffers.limits.alignBytes);
      return new BinlogAppendFile(handle, await openDirect(path, buffers), buffers, end, head);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  get end(): number {
    return this.#end;
  }

  /** Bytes written with O_DIRECT so far (the rest went through the page cache). */
  get directBytes(): number {
    return this.#directBytes;
  }

  /** Appends `data` at the end. Not durable until datasync(). One append at a time. */
  async append(data: readonly Buffer[]): Promise<void> {
    let total = 0;
    for (const b of data) total += b.length;
    if (total === 0) return;
    const wholeBytes = alignDown(this.#headLength + total, this.buffers.limits.alignBytes);
    if (this.direct !== undefined && wholeBytes > 0 && (await this.#appendDirect(data, wholeBytes))) {
      // The new partial block, past the last whole one, through the page cache.
      this.#remember(data, total);
      if (this.#headLength > 0) await writeAllAt(this.handle, this.#head.subarray(0, this.#headLength), this.#end - this.#headLength);
      return;
    }
    // Within the partial block, or no O_DIRECT: through the page cache.
    await writevAllAt(this.handle, data, this.#end);
    this.#remember(data, total);
  }

  /**
   * Writes the partial block's bytes and `data`'s, up to `wholeBytes` from the partial block's
   * start, with O_DIRECT. False when the volume took the O_DIRECT open but refuses the write
   * (an odd alignment), or there is no aligned memory to be had: direct writes are then off,
   * and the caller writes the same bytes through the page cache. Whatever direct write did land
   * holds these very bytes at these very offsets.
   */
  async #appendDirect(data: readonly Buffer[], wholeBytes: number): Promise<boolean> {
    const sources = this.#headLength > 0 ? [this.#head.subarray(0, this.#headLength), ...data] : data;
    try {
      await this.#writeDirect(sources, this.#end - this.#headLength, wholeBytes);
    } catch (err) {
      if (!(err instanceof DirectRefused) && (err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
      await this.#stopDirect();
      return false;
    }
    this.#directBytes += wholeBytes;
    return true;
  }

  /** Cuts the file back to `end` (bytes before it stay as they are). */
  async truncate(end: number): Promise<void> {
    await this.handle.truncate(end);
    const head = await readHead(this.handle, end, this.buffers.limits.alignBytes);
    head.copy(this.#head);
    this.#headLength = head.length;
    this.#end = end;
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  async close(): Promise<void> {
    try {
      await this.direct?.close();
    } finally {
      this.direct = undefined;
      await this.handle.close();
    }
  }

  /** Writes `wholeBytes` of `sources` (a multiple of the alignment) at `at`, buffer by buffer, several at once. */
  async #writeDirect(sources: readonly Buffer[], at: number, wholeBytes: number): Promise<void> {
    const direct = this.direct;
    if (direct === undefined) throw new Error('no O_DIRECT descriptor');
    const writes: Array<Promise<void>> = [];
    let failure: { err: unknown } | undefined;
    let source = 0;
    let sourceAt = 0;
    for (let done = 0; done < wholeBytes && failure === undefined; ) {
      let buf: Buffer;
      try {
        buf = await this.buffers.pool.take();
      } catch (err) {
        // The aligned memory could not be made (an address-space limit, say): no direct writes.
        await Promise.all(writes);
        throw new DirectRefused(err);
      }
      if (failure !== undefined) {
        // A write failed while this one waited for its buffer: start nothing more.
        this.buffers.pool.give(buf);
        break;
      }
      const length = Math.min(buf.length, wholeBytes - done);
      // Gather the next `length` bytes of the sources into the aligned buffer. One set() per
      // event (a whole event is the common case): Buffer.copy's argument checks and the view it
      // makes of every source cost a catch-up's main thread a few ms per 250 MB for nothing.
      for (let filled = 0; filled < length; ) {
        const from = sources[source] as Buffer;
        const n = Math.min(from.length - sourceAt, length - filled);
        buf.set(sourceAt === 0 && n === from.length ? from : new Uint8Array(from.buffer, from.byteOffset + sourceAt, n), filled);
        filled += n;
        sourceAt += n;
        if (sourceAt === from.length) {
          source += 1;
          sourceAt = 0;
        }
      }
      const position = at + done;
      writes.push(
        writeDirectFully(direct, this.handle, buf.subarray(0, length), position, this.buffers.limits.alignBytes)
          .catch((err: unknown) => {
            failure ??= { err };
          })
          .finally(() => this.buffers.pool.give(buf)),
      );
      done += length;
    }
    await Promise.all(writes);
    if (failure !== undefined) throw failure.err;
  }

  async #stopDirect(): Promise<void> {
    this.buffers.enabled = false;
    const direct = this.direct;
    this.direct = undefined;
    await direct?.close();
  }

  /** Moves the end past appended bytes and keeps the partial block they leave at the end. */
  #remember(data: readonly Buffer[], total: number): void {
    const { alignBytes } = this.buffers.limits;
    const blockStart = this.#end - this.#headLength;
    this.#end += total;
    const newStart = alignDown(this.#end, alignBytes);
    if (newStart === blockStart) {
      for (const b of data) {
        b.copy(this.#head, this.#headLength);
        this.#headLength += b.length;
      }
      return;
    }
    // A later block: its bytes are the last (end - newStart) of what was appended.
    const rest = this.#end - newStart;
    copyTail(data, total - rest, rest, this.#head);
    this.#headLength = rest;
  }
}

/** Direct writes are impossible here for a reason other than the volume's EINVAL. */
class DirectRefused extends Error {
  constructor(cause: unknown) {
    super('no aligned memory for direct writes', { cause });
  }
}

/** An O_DIRECT descriptor of `path`, or undefined (and direct appends off) when its volume refuses O_DIRECT. */
async function openDirect(path: string, buffers: DirectAppendBuffers): Promise<FileHandle | undefined> {
  if (!buffers.enabled) return undefined;
  try {
    return await buffers.openDirect(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    buffers.enabled = false;
    return undefined;
  }
}

/** The bytes of the partial block before `end`, read from the file. */
async function readHead(handle: FileHandle, end: number, alignBytes: number): Promise<Buffer> {
  const start = alignDown(end, alignBytes);
  const head = Buffer.alloc(end - start);
  for (let got = 0; got < head.length; ) {
    const { bytesRead } = await handle.read(head, got, head.length - got, start + got);
    if (bytesRead === 0) throw new Error(`the file ends before ${end}, where it is to be appended to`);
    got += bytesRead;
  }
  return head;
}

/** Copies `length` bytes starting `from` bytes into the concatenation of `sources` into `into`. */
function copyTail(sources: readonly Buffer[], from: number, length: number, into: Buffer): void {
  let skip = from;
  let filled = 0;
  for (const b of sources) {
    if (skip >= b.length) {
      skip -= b.length;
      continue;
    }
    const n = Math.min(b.length - skip, length - filled);
    b.copy(into, filled, skip, skip + n);
    filled += n;
    skip = 0;
    if (filled === length) return;
  }
}

/**
 * A direct write of an aligned buffer, going on after a short write: with O_DIRECT where the
 * rest is still aligned, else through the page cache (a short write is rare: a full disk).
 */
async function writeDirectFully(direct: FileHandle, buffered: FileHandle, data: Buffer, position: number, alignBytes: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await direct.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw new Error(`a direct write of ${data.length - done} bytes at ${position + done} wrote nothing`);
    done += bytesWritten;
    if (done < data.length && done % alignBytes !== 0) {
      await writeAllAt(buffered, data.subarray(done), position + done);
      return;
    }
  }
}
