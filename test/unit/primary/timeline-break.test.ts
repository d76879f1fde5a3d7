import { describe, expect, it } from 'vitest';
import { timelineBreak } from '../../../src/primary/base/timeline-break.js';

/**
 * Goal: the one check that a primary's binlog continues the archive's (used before a chain
 * restart after a purge and before `hotspare base`). Method: the pure function on file lists.
 */
describe('timelineBreak', () => {
  const end = { file: 'mysql-bin.000007', position: 5000 };
  const files = (...list: Array<[number, number]>) => list.map(([n, size]) => ({ name: `mysql-bin.${String(n).padStart(6, '0')}`, sizeBytes: size }));

  it('the same timeline: the end file at least as long, or purged with only later files left', () => {
    expect(timelineBreak(files([7, 5000], [8, 200]), end)).toBeUndefined();
    expect(timelineBreak(files([9, 100], [10, 300]), end)).toBeUndefined();
    expect(timelineBreak([], end)).toBeUndefined();
    // A file the server cannot open is listed at 0 bytes: not taken for a short one.
    expect(timelineBreak(files([7, 0], [8, 10]), end)).toBeUndefined();
  });

  it('names that started again: the end file gone with an older or equal name still there, or shorter than archived', () => {
    expect(timelineBreak(files([1, 900]), end)).toMatchObject({ code: 'BINLOG_GAP', message: expect.stringContaining('names started again') });
    expect(timelineBreak(files([3, 900], [4, 100]), end)?.code).toBe('BINLOG_GAP');
    expect(timelineBreak(files([6, 100], [7, 4000]), end)).toMatchObject({ code: 'BINLOG_GAP', message: expect.stringContaining('holds only 4000 bytes of mysql-bin.000007') });
  });
});
