import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { within } from '../../../src/platform/within.js';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('within', () => {
  it('gives the value of a promise that settles in time, undefined for one that does not, and passes a rejection on', async () => {
    expect(await within(Promise.resolve(7), 100)).toEqual({ value: 7 });
    const never = within(new Promise<number>(() => undefined), 100);
    await vi.advanceTimersByTimeAsync(100);
    expect(await never).toBeUndefined();
    await expect(within(Promise.reject(new Error('refused')), 100)).rejects.toThrow('refused');
    // No timer outlives the wait.
    expect(vi.getTimerCount()).toBe(0);
  });
});
