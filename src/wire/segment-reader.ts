/**
 * Reads a run of bytes that arrived in pieces (socket chunks) front to back without joining
 * them: each take() is a view when its bytes lie in one piece, and a copy of just those bytes
 * when they straddle two. A large frame is then never copied whole. Pure: no I/O.
 */
export class SegmentReader {
  readonly #segments: readonly Buffer[];
  #index = 0;
  #at = 0;
  #remaining: number;

  constructor(segments: readonly Buffer[]) {
    this.#segments = segments;
    this.#remaining = segments.reduce((n, s) => n + s.length, 0);
  }

  /** Bytes not yet taken. */
  get remaining(): number {
    return this.#remaining;
  }

  /** The next `n` bytes; undefined (nothing taken) when fewer remain. */
  take(n: number): Buffer | undefined {
    if (n > this.#remaining) return undefined;
    this.#remaining -= n;
    this.#skipEmpty();
    const segment = this.#segments[this.#index];
    if (segment === undefined || this.#at + n <= segment.length) {
      const view = segment === undefined ? Buffer.alloc(0) : segment.subarray(this.#at, this.#at + n);
      this.#advance(n);
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const piece = this.#segments[this.#index] as Buffer;
      const k = Math.min(n - filled, piece.length - this.#at);
      piece.copy(out, filled, this.#at, this.#at + k);
      filled += k;
      this.#advance(k);
    }
    return out;
  }

  #advance(n: number): void {
    this.#at += n;
    this.#skipEmpty();
  }

  #skipEmpty(): void {
    for (let s = this.#segments[this.#index]; s !== undefined && this.#at >= s.length; s = this.#segments[this.#index]) {
      this.#index += 1;
      this.#at = 0;
    }
  }
}
