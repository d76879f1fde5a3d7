/**
 * Lets at most `linesMax` log lines of one kind through per `windowMs`, and counts the rest: the
 * first line let through after some were held back says how many (`suppressed`). A peer that
 * opens thousands of connections a second (9,400 in 3 s in a review) wrote two warnings each,
 * enough for journald's rate limit to drop the warnings that mattered. Pure: the time is a
 * parameter.
 */
export class LogThrottle {
  #windowStartMs = Number.NEGATIVE_INFINITY;
  #lines = 0;
  #suppressed = 0;

  constructor(
    private readonly linesMax: number,
    private readonly windowMs: number,
  ) {}

  /** Whether a line may be logged at `nowMs`, and how many were held back since the last one was. */
  take(nowMs: number): { log: boolean; suppressed: number } {
    if (nowMs - this.#windowStartMs >= this.windowMs) {
      this.#windowStartMs = nowMs;
      this.#lines = 0;
    }
    if (this.#lines >= this.linesMax) {
      this.#suppressed += 1;
      return { log: false, suppressed: 0 };
    }
    this.#lines += 1;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return { log: true, suppressed };
  }
}
