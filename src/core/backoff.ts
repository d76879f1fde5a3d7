/** Capped exponential backoff with jitter, as plain arithmetic (the random source is passed in). */
export interface BackoffPolicy {
  delayMsMin: number;
  delayMsMax: number;
  /** 0.3 spreads each delay over ±30%, so many agents do not retry in step. */
  jitterRatio: number;
}

/** The delay before retry number `attempt` (1 for the first retry). */
export function backoffDelayMs(attempt: number, policy: BackoffPolicy, random01: () => number): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 30);
  const base = Math.min(policy.delayMsMax, policy.delayMsMin * 2 ** exponent);
  const jitter = base * policy.jitterRatio * (random01() * 2 - 1);
  return Math.max(0, Math.min(policy.delayMsMax, Math.round(base + jitter)));
}
