import { createHash, type Hash } from 'node:crypto';

/**
 * Block hashes kept as they are, up to this many (4 GiB of 64 KiB blocks, a few megabytes of
 * strings); past it they are folded into a SHA-256 digest, so that a read of a file of any size
 * keeps a bounded record.
 */
export const DEFAULT_READ_HASHES_KEPT_MAX = 65_536;

/**
 * The block hashes of one read of a file, in order, for telling whether a second read of the
 * same bytes found the same ones (the spool reader's double collect). Recording one costs a push;
 * the comparison stops at the first difference among the kept ones.
 */
export class ReadHashes {
  readonly #kept: string[] = [];
  #rest: Hash | undefined;

  constructor(private readonly keptMax = DEFAULT_READ_HASHES_KEPT_MAX) {}

  add(hash: string): void {
    if (this.#rest === undefined && this.#kept.length < this.keptMax) this.#kept.push(hash);
    else (this.#rest ??= createHash('sha256')).update(hash);
  }

  /** Records `hash` as the next one of a second read; false as soon as it differs from `first`'s hash at the same place. */
  addMatching(hash: string, first: ReadHashes): boolean {
    const i = this.#kept.length;
    this.add(hash);
    return this.#rest !== undefined || first.#kept[i] === hash;
  }

  /**
   * Whether this read found exactly `first`'s hashes (after addMatching accepted each one). Ends
   * both records: call once.
   */
  sameAs(first: ReadHashes): boolean {
    if (this.#kept.length !== first.#kept.length) return false;
    if (this.#rest === undefined || first.#rest === undefined) return this.#rest === first.#rest;
    return this.#rest.digest('base64') === first.#rest.digest('base64');
  }
}
