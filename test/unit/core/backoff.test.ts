import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../../src/core/backoff.js';

// Goal: retries back off exponentially, stay within the cap, and spread by the jitter ratio.
describe('backoffDelayMs', () => {
  const policy = { delayMsMin: 200, delayMsMax: 30_000, jitterRatio: 0.3 };
  it('doubles from the minimum to the cap', () => {
    const mid = () => 0.5;
    expect([1, 2, 3, 4, 20, 1000].map((a) => backoffDelayMs(a, policy, mid))).toEqual([200, 400, 800, 1600, 30_000, 30_000]);
  });
  it('keeps jitter within the ratio and never exceeds the cap', () => {
    expect(backoffDelayMs(1, policy, () => 0)).toBe(140);
    expect(backoffDelayMs(1, policy, () => 0.999999)).toBe(260);
    expect(backoffDelayMs(50, policy, () => 0.999999)).toBe(30_000);
  });
});
