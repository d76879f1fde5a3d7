import type { ArchiveFiles } from '../archive/archive-files.js';
import { alignedMemory, memoryOffset } from '../platform/aligned-memory.js';
import { DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES } from '../config/defaults.js';
import { packDir, packPath, seqsOf } from './spool-format.js';

/** Batches and direct writes lie in memory the way they lie in the pack, modulo this (see below). */
const ALIGN = DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES;

/**
 * Appends block data to the source's current pack. Blocks are copied into a batch buffer; a
 * full batch is written in the background (without fsync) while the next one fills, and
 * `flush()` writes the rest and makes every pack written since the last flush durable with one
 * sync each: it must resolve before a journal line refers to the data. At most `batches` batch
 * buffers exist, being filled or written: a slow archive (a remote one) has that many in flight,
 * while a fast one gets its buffer back before the next is needed, and the one it gave back
 * last is filled again, so a pass touches little new memory (a fresh page costs more than the
 * copy into it). Their memory is made at the first batch and kept for the writer's session: a
 * WebAssembly memory (see below) is never given back in part, and one per pass would make V8
 * reserve address space for each; its pages an archive never needed stay untouched. Each agent
 * session starts a fresh pack, so a crash's partial tail is never appended to.
 *
 * Every write's bytes lie in page-aligned memory at the same offset modulo 4 KiB as in the pack,
 * so a local archive writes their aligned middle with O_DIRECT straight from there, without a
 * copy (see DirectWriter): a batch starts that far into its buffer, and before a direct write
 * from such memory the pack skips up to 4 KiB (a hole no block refers to; a pack's blocks are
 * found by offset, never by position).
 */
export class PackWriter {
  #seq: number;
  /** Next free offset in the current pack. */
  #offset = 0;
  /** The batch being filled: bytes [#bufAt, #bufAt + #fill) belong at pack offset #offset - #fill. */
  #buf: Buffer | undefined;
  #bufAt = 0;
  #fill = 0;
  /** The batch buffers' memory, made when the first one is needed. */
  #memory: Buffer | undefined;
  /** Batch buffers written and free again, the last one freed at the end. */
  #free: Buffer[] = [];
  /** Batch buffers that exist (filling, being written or free). */
  #allocated = 0;
  /** Batch writes under way. */
  readonly #writing = new Set<Promise<void>>();
  #writtenBytes = 0;
  #durableBytes = 0;
  /** Packs written since the last flush, to be synced by it. */
  readonly #unsynced = new Set<string>();
  /** Writes addDirect() launched from its callers' buffers, not settled yet. */
  readonly #direct = new Set<Promise<void>>();
  /** The first failed write (batch or direct): it fails the next add, addDirect or flush. */
  #failure: { err: unknown } | undefined;
  /** add() and flush() run one at a time, in call order (files are read concurrently). */
  #turn: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly files: ArchiveFiles,
    private readonly name: string,
    seq: number,
    private readonly batchBytes: number,
    private readonly packBytesMax: number,
    private readonly batches: number,
  ) {
    this.#seq = seq;
  }

  /** Writes from a new pack, numbered after every pack in the archive and at least `floor`. */
  static async open(files: ArchiveFiles, name: string, batchBytes: number, packBytesMax: number, batches: number, floor = 0): Promise<PackWriter> {
    const seqs = seqsOf(await files.list(packDir(name)), 'pack');
    return new PackWriter(files, name, Math.max((seqs[seqs.length - 1] ?? 0) + 1, floor), batchBytes, packBytesMax, Math.max(1, batches));
  }

  get seq(): number {
    return this.#seq;
  }

  /** Bytes made durable by flushes so far (for the shipped counter, counted once the journal commits). */
  get flushedBytes(): number {
    return this.#durableBytes;
  }

  /**
   * Copies a block into the batch and returns where it will live in the pack; waits only when
   * the batch is full and every other batch buffer is still being written. `data` may be reused once
   * the promise resolves.
   */
  add(data: Buffer): Promise<[pack: number, offset: number]> {
    return this.#inTurn(async () => {
      this.#throwFailure();
      if (this.#offset > 0 && this.#offset + data.length > this.packBytesMax) {
        this.#startWrite();
        this.#seq++;
        this.#offset = 0;
      }
      const at: [number, number] = [this.#seq, this.#offset];
      if (data.length > this.batchBytes) {
        // Larger than a batch (a block size above the batch size): written on its own.
        this.#startWrite();
        await this.#settled();
        this.#launch(packPath(this.name, this.#seq), this.#offset, Buffer.from(data), undefined);
        this.#offset += data.length;
        return at;
      }
      if (this.#buf !== undefined && this.#fill + data.length > this.batchBytes) this.#startWrite();
      if (this.#buf === undefined) {
        this.#buf = await this.#takeBuffer();
        this.#bufAt = this.#offset % ALIGN;
      }
      data.copy(this.#buf, this.#bufAt + this.#fill);
      this.#fill += data.length;
      this.#offset += data.length;
      return at;
    });
  }

  /**
   * Places `data` in the pack and writes it from the caller's buffer, without copying it into
   * a batch (for long runs of new blocks). Resolves with where it lives once the write is
   * under way; `written` settles when the caller's buffer may be reused (the data is durable
   * only after flush()). Several such writes may be in flight: their callers bound them.
   */
  addDirect(data: Buffer): Promise<{ at: [pack: number, offset: number]; written: Promise<void> }> {
    return this.#inTurn(async () => {
      this.#throwFailure();
      // The batch's bytes lie just before #offset: they are handed over before it moves on.
      this.#startWrite();
      let skip = skipFor(data, this.#offset);
      if (this.#offset > 0 && this.#offset + skip + data.length > this.packBytesMax) {
        this.#seq++;
        this.#offset = 0;
        skip = skipFor(data, 0);
      }
      this.#offset += skip;
      const at: [number, number] = [this.#seq, this.#offset];
      const path = packPath(this.name, this.#seq);
      this.#unsynced.add(path);
      const written = this.files.write(path, this.#offset, data).then(() => {
        this.#writtenBytes += data.length;
      });
      this.#direct.add(written);
      // Its failure surfaces at the caller's wait and at the next flush; not unhandled meanwhile.
      written
        .catch((err: unknown) => {
          this.#failure ??= { err };
        })
        .finally(() => this.#direct.delete(written));
      this.#offset += data.length;
      return { at, written };
    });
  }

  /** Writes what is buffered and makes every pack written since the last flush durable. */
  flush(): Promise<void> {
    return this.#inTurn(async () => {
      this.#startWrite();
      await this.#settled();
      await Promise.allSettled([...this.#direct]);
      this.#throwFailure();
      if (this.#unsynced.size > 0) await this.files.sync([...this.#unsynced]);
      this.#unsynced.clear();
      this.#durableBytes = this.#writtenBytes;
    });
  }

  /**
   * Waits until no write of this writer is under way (nothing is flushed; failures are not
   * thrown). A writer opened after a stop or a failure takes the next pack number from the
   * listing: a write still in flight that had not created its pack yet would otherwise land
   * in the new writer's pack, over blocks it made durable.
   */
  async close(): Promise<void> {
    await this.#turn;
    while (this.#writing.size > 0 || this.#direct.size > 0) await Promise.allSettled([...this.#writing, ...this.#direct]);
  }

  #inTurn<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(step);
    this.#turn = result.catch(() => undefined);
    return result;
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure.err;
  }

  /** Every batch write launched so far has settled. */
  async #settled(): Promise<void> {
    await Promise.allSettled([...this.#writing]);
  }

  /** A batch buffer: the one freed last, a new one while there are fewer than `batches`, or the next one a write frees. */
  async #takeBuffer(): Promise<Buffer> {
    for (;;) {
      const free = this.#free.pop();
      if (free !== undefined) return free;
      if (this.#allocated < this.batches) {
        // Room for a batch that starts up to ALIGN - 1 bytes in; untouched pages cost nothing.
        const bytes = this.batchBytes + ALIGN;
        this.#memory ??= Buffer.from(alignedMemory(this.batches * bytes));
        const i = this.#allocated++;
        return this.#memory.subarray(i * bytes, (i + 1) * bytes);
      }
      await Promise.race([...this.#writing]);
      this.#throwFailure();
    }
  }

  /** Hands the filled batch to a background write. */
  #startWrite(): void {
    if (this.#fill === 0 || this.#buf === undefined) return;
    const full = this.#buf;
    this.#launch(packPath(this.name, this.#seq), this.#offset - this.#fill, full.subarray(this.#bufAt, this.#bufAt + this.#fill), full);
    this.#buf = undefined;
    this.#fill = 0;
  }

  #launch(path: string, offset: number, data: Buffer, buffer: Buffer | undefined): void {
    this.#unsynced.add(path);
    const write: Promise<void> = this.files
      .write(path, offset, data)
      .then(
        () => {
          this.#writtenBytes += data.length;
        },
        (err: unknown) => {
          // Surfaces at the next add, addDirect or flush; not unhandled meanwhile.
          this.#failure ??= { err };
        },
      )
      .finally(() => {
        this.#writing.delete(write);
        // Free again for a later batch.
        if (buffer !== undefined) this.#free.push(buffer);
      });
    this.#writing.add(write);
  }
}

/** Bytes to skip in the pack at `offset` so that `data` lies there as it lies in aligned memory (none for other memory). */
function skipFor(data: Buffer, offset: number): number {
  const at = memoryOffset(data);
  return at === undefined ? 0 : (((at - offset) % ALIGN) + ALIGN) % ALIGN;
}
