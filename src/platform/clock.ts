/** Wall-clock time, passed in wherever time is needed so that tests can control it. */
export interface Clock {
  nowMs(): number;
}

export const systemClock: Clock = {
  nowMs: () => Date.now(),
};
