import { mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { utimesSeconds } from '../../../src/standby/spool-restore.js';

const dir = mkdtempSync(join(tmpdir(), 'hotspare-mtime-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('utimesSeconds (a restored file gets its stored mtime, to the microsecond)', () => {
  it('sets exactly the stored microsecond on a real file, also for times that lie on a millisecond', () => {
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    const wrong: string[] = [];
    // 2000 consecutive milliseconds near today, each with no sub-millisecond part (the case a
    // plain µs / 1e6 brought back a millisecond short about half the time), and odd nanoseconds.
    for (let i = 0n; i < 2000n; i += 1n) {
      for (const ns of [(1_796_413_739_000n + i) * 1_000_000n, (1_796_413_739_000n + i) * 1_000_000n + 123_456n]) {
        const seconds = utimesSeconds(ns.toString());
        utimesSync(file, seconds, seconds);
        const got = statSync(file, { bigint: true }).mtimeNs;
        if (got / 1000n !== ns / 1000n) wrong.push(`${ns} -> ${got}`);
      }
    }
    expect(wrong.slice(0, 5)).toEqual([]);
  });
});
