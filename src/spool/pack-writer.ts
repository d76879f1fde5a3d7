import type { ArchiveFiles } from '../archive/archive-files.js';
import { packDir, packPath, seqsOf } from './spool-format.js';

/**
 * Appends block data to the source's current pack. Data is buffered up to a batch size and
 * written with one durable write; `flush()` must resolve before a journal line refers to it.
 * Each agent session starts a fresh pack, so a crash's partial tail is never appended to.
 */
export class PackWriter {
  #seq: number;
  #offset = 0;
  #buffered: Buffer[] = [];
  #bufferedBytes = 0;
  #flushedBytes = 0;
  /** The write under way: batches are written in the background while the next is read. */
  #writing: Promise<void> = Promise.resolve();

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

  /** Bytes written durably so far (for the shipped counter, counted once the journal commits). */
  get flushedBytes(): number {
    return this.#flushedBytes;
  }

  /** Queues a block and returns where it will live; flushes when the batch is full. */
  async add(data: Buffer): Promise<[pack: number, offset: number]> {
    if (this.#offset + data.length > this.packBytesMax && this.#offset > 0) {
      await this.flush();
      this.#seq++;
      this.#offset = 0;
    }
    const at: [number, number] = [this.#seq, this.#offset];
    this.#buffered.push(data);
    this.#bufferedBytes += data.length;
    this.#offset += data.length;
    if (this.#bufferedBytes >= this.batchBytes) await this.#startWrite();
    return at;
  }

  /** Hands the buffer to the background writer; waits for the previous write, so at most two batches are in memory. */
  async #startWrite(): Promise<void> {
    if (this.#bufferedBytes === 0) return;
    const data = this.#buffered.length === 1 ? (this.#buffered[0] as Buffer) : Buffer.concat(this.#buffered);
    const start = this.#offset - this.#bufferedBytes;
    const path = packPath(this.name, this.#seq);
    this.#buffered = [];
    this.#bufferedBytes = 0;
    await this.#writing;
    this.#writing = this.files.writeAt(path, start, data).then(() => {
      this.#flushedBytes += data.length;
    });
    // A failed write surfaces at the next flush; keep it from being an unhandled rejection meanwhile.
    this.#writing.catch(() => undefined);
  }

  /** Writes what is buffered and waits until every write is durable. */
  async flush(): Promise<void> {
    await this.#startWrite();
    await this.#writing;
  }
}
