import { describe, expect, it } from 'vitest';
import { LogThrottle } from '../../../src/core/log-throttle.js';

/** Goal: a flood of one kind of line is cut to a budget per window, and the next line let through says how many were held back. */
describe('LogThrottle', () => {
  it('lets linesMax through per window, counts the rest, and reports them with the next line', () => {
    const throttle = new LogThrottle(2, 1_000);
    expect([0, 10, 20, 30].map((t) => throttle.take(t))).toEqual([
      { log: true, suppressed: 0 },
      { log: true, suppressed: 0 },
      { log: false, suppressed: 0 },
      { log: false, suppressed: 0 },
    ]);
    // A new window: the first line says two were held back; the count starts again.
    expect(throttle.take(1_000)).toEqual({ log: true, suppressed: 2 });
    expect(throttle.take(1_001)).toEqual({ log: true, suppressed: 0 });
    expect(throttle.take(1_002)).toEqual({ log: false, suppressed: 0 });
    expect(throttle.take(5_000)).toEqual({ log: true, suppressed: 1 });
  });
});
