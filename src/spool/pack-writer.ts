import type { ArchiveFiles } from '../archive/archive-files.js';
import { packDir, packPath, seqsOf } from './spool-format.js';

/**
 * Appends block data to the source's current pack. Blocks are copied into a batch buffer;
 * a full batch is written in the background (without fsync) while the next one fills, and
 * `flush()` writes the rest and makes every pack written since the last flush durable with one
 * sync each: it must resolve before a journal line refers to the data. Two batch buffers at
 * most are in memory, and they are let go at each flush. Each agent session starts a fresh
 * pack, so a crash's partial tail is never appended to.
 */
export class PackWriter {
  #seq: number;
  /** Next free offset in the current pack. */
  #offset = 0;
  /** The batch being filled (bytes [0, #fill) belong at pack offset #offset - #fill). */
  #buf: Buffer | undefined;
  #fill = 0;
  /** The other batch buffer: being written, or free once #writing has settled. */
  #spare: Buffer | undefined;
  #writtenBytes = 0;
  #durableBytes = 0;
  /** Packs written since the last flush, to be synced by it. */
  readonly #unsynced = new Set<string>();
  /** The write under way: batches are written in the background while the next is filled. */
  #writing: Promise<void> = Promise.resolve();
  /** Writes addDirect() launched from its callers' buffers, not settled yet. */
  readonly #direct = new Set<Promise<void>>();
  #directFailure: { err: unknown } | undefined;
  /** add() and flush() run one at a time, in call order (files are read concurrently). */
  #turn: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly files: ArchiveFiles,
    private readonly name: string,
    seq: number,
    private readonly batchBytes: number,
    private readonly packBytesMax: number,
  ) {
    this.#seq = seq;
  }

  static async open(files: ArchiveFiles, name: string, batchBytes: number, packBytesMax: number): Promise<PackWriter> {
    const seqs = seqsOf(await files.list(packDir(name)), 'pack');
    return new PackWriter(files, name, (seqs[seqs.length - 1] ?? 0) + 1, batchBytes, packBytesMax);
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
   * the batch is full and the previous one is still being written. `data` may be reused once
   * the promise resolves.
   */
  add(data: Buffer): Promise<[pack: number, offset: number]> {
    return this.#inTurn(async () => {
      if (this.#offset > 0 && this.#offset + data.length > this.packBytesMax) {
        await this.#startWrite();
        this.#seq++;
        this.#offset = 0;
      }
      const at: [number, number] = [this.#seq, this.#offset];
      if (data.length > this.batchBytes) {
        // Larger than a batch (a block size above the batch size): written on its own.
        await this.#startWrite();
        await this.#writing;
        this.#launch(packPath(this.name, this.#seq), this.#offset, Buffer.from(data), undefined);
        this.#offset += data.length;
        return at;
      }
      if (this.#buf !== undefined && this.#fill + data.length > this.#buf.length) await this.#startWrite();
      this.#buf ??= Buffer.allocUnsafe(this.batchBytes);
      data.copy(this.#buf, this.#fill);
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
      if (this.#offset > 0 && this.#offset + data.length > this.packBytesMax) {
        await this.#startWrite();
        this.#seq++;
        this.#offset = 0;
      }
      // The batch's bytes lie just before #offset: they are handed over before it moves on.
      await this.#startWrite();
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
          this.#directFailure ??= { err };
        })
        .finally(() => this.#direct.delete(written));
      this.#offset += data.length;
      return { at, written };
    });
  }

  /** Writes what is buffered and makes every pack written since the last flush durable. */
  flush(): Promise<void> {
    return this.#inTurn(async () => {
      await this.#startWrite();
      await this.#writing;
      await Promise.allSettled([...this.#direct]);
      if (this.#directFailure !== undefined) throw this.#directFailure.err;
      if (this.#unsynced.size > 0) await this.files.sync([...this.#unsynced]);
      this.#unsynced.clear();
      this.#durableBytes = this.#writtenBytes;
      // Idle sources hold no batch memory.
      this.#buf = undefined;
      this.#spare = undefined;
    });
  }

  #inTurn<T>(step: () => Promise<T>): Promise<T> {
    const result = this.#turn.then(step);
    this.#turn = result.catch(() => undefined);
    return result;
  }

  /** Hands the filled batch to the background writer once the previous write is done (its buffer becomes the next batch). */
  async #startWrite(): Promise<void> {
    if (this.#fill === 0 || this.#buf === undefined) return;
    await this.#writing;
    const full = this.#buf;
    const data = full.subarray(0, this.#fill);
    this.#launch(packPath(this.name, this.#seq), this.#offset - this.#fill, data, full);
    this.#buf = this.#spare;
    this.#spare = undefined;
    this.#fill = 0;
  }

  #launch(path: string, offset: number, data: Buffer, buffer: Buffer | undefined): void {
    this.#unsynced.add(path);
    this.#writing = this.files.write(path, offset, data).then(() => {
      this.#writtenBytes += data.length;
      // Free again for the batch after next.
      if (buffer !== undefined) this.#spare = buffer;
    });
    // A failed write surfaces at the next add or flush that waits for it; not unhandled meanwhile.
    this.#writing.catch(() => undefined);
  }
}
