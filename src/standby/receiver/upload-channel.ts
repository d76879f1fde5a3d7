/**
 * Turns PUT_CHUNK frames into the AsyncIterable that ArchiveFiles.putFile consumes, one chunk
 * at a time: push() resolves once the writer has taken the chunk, which it does while it has
 * room (StreamedFileWriter: a group of 256 KiB being gathered and four writes under way), so
 * the agent's next chunk waits for the disk, and a receiver holds about 1 MiB and a few chunks
 * per upload.
 */
export class UploadChannel {
  #item: { chunk: Buffer | null; taken: () => void } | undefined;
  #wake: (() => void) | undefined;
  #failure: Error | undefined;
  #finished = false;

  async *chunks(): AsyncGenerator<Buffer> {
    for (;;) {
      while (this.#item === undefined && this.#failure === undefined) await new Promise<void>((r) => (this.#wake = r));
      if (this.#failure !== undefined) throw this.#failure;
      const item = this.#item;
      if (item === undefined) continue;
      this.#item = undefined;
      if (item.chunk === null) {
        item.taken();
        return;
      }
      yield item.chunk;
      item.taken();
    }
  }

  /** Hands a chunk to the writer; resolves when the writer has taken it (the file is durable only once the upload ends). */
  push(chunk: Buffer): Promise<void> {
    return this.#put(chunk);
  }

  /** Ends the upload. */
  end(): Promise<void> {
    return this.#put(null);
  }

  /** Makes the writer fail (its temporary file is removed). */
  fail(err: Error): void {
    this.#failure = err;
    this.#finished = true;
    this.#item?.taken();
    this.#wake?.();
  }

  #put(chunk: Buffer | null): Promise<void> {
    if (this.#finished || this.#item !== undefined) return Promise.reject(new Error('upload is finished or busy'));
    if (chunk === null) this.#finished = true;
    return new Promise<void>((resolve) => {
      this.#item = { chunk, taken: resolve };
      this.#wake?.();
      this.#wake = undefined;
    });
  }
}
