/** Wall-clock time, passed in wherever time is needed so that tests can control it. */
export interface Clock {
  /** Milliseconds since the epoch; may have a fraction (a scaled or monotonic clock), so code that needs a whole number floors it. */
  nowMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
};
