import { alignedMemory } from './aligned-memory.js';

/**
 * A fixed set of page-aligned buffers for O_DIRECT writes, taken and given back: the memory
 * bound of whoever writes through them. The memory is made at the first take(), so an owner
 * whose volume refuses O_DIRECT never holds any.
 */
export class AlignedBufferPool {
  #free: Buffer[] | undefined;
  #waiters: Array<(buf: Buffer) => void> = [];

  constructor(
    readonly buffers: number,
    readonly bufferBytes: number,
  ) {}

  /** A free buffer, waiting for one to be given back when all are taken. */
  async take(): Promise<Buffer> {
    if (this.#free === undefined) {
      const all = Buffer.from(alignedMemory(this.buffers * this.bufferBytes));
      this.#free = Array.from({ length: this.buffers }, (_, i) => all.subarray(i * this.bufferBytes, (i + 1) * this.bufferBytes));
    }
    const buf = this.#free.pop();
    if (buf !== undefined) return buf;
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  give(buf: Buffer): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(buf);
    else this.#free?.push(buf);
  }
}
