import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cmd/cli-failure.js';
import { parseTargetSpec } from '../../../src/cmd/promote.js';

// Goal: `--until` reads ISO 8601 as the contract says: with a zone as given, without one as
// local time, and a date alone as that local day's midnight.

describe('promote --until', () => {
  // A zone away from UTC, so that local time and UTC differ (Node applies a change of TZ at once).
  const zone = process.env['TZ'];
  beforeAll(() => {
    process.env['TZ'] = 'America/New_York';
  });
  afterAll(() => {
    if (zone === undefined) delete process.env['TZ'];
    else process.env['TZ'] = zone;
  });

  it('runs in a zone away from UTC', () => {
    expect(new Date(2026, 10, 22).getTime()).not.toBe(Date.UTC(2026, 10, 22));
  });

  it('reads a zone as given and a time without one as local time', () => {
    expect(parseTargetSpec({ until: '2026-11-22T10:00:00Z' })).toEqual({ kind: 'time', atMs: Date.UTC(2026, 10, 22, 10, 0, 0) });
    expect(parseTargetSpec({ until: '2026-11-22T10:00:00+02:00' })).toEqual({ kind: 'time', atMs: Date.UTC(2026, 10, 22, 8, 0, 0) });
    expect(parseTargetSpec({ until: '2026-11-22T10:00:00' })).toEqual({ kind: 'time', atMs: new Date(2026, 10, 22, 10, 0, 0).getTime() });
    expect(parseTargetSpec({ until: '2026-11-22 10:00:00.250' })).toEqual({ kind: 'time', atMs: new Date(2026, 10, 22, 10, 0, 0, 250).getTime() });
  });

  it('reads a date alone as local midnight, or midnight in the zone it names', () => {
    expect(parseTargetSpec({ until: '2026-11-22' })).toEqual({ kind: 'time', atMs: new Date(2026, 10, 22).getTime() });
    expect(parseTargetSpec({ until: '2026-11-22Z' })).toEqual({ kind: 'time', atMs: Date.UTC(2026, 10, 22) });
  });

  it('refuses an impossible date or time, naming the option and the value, instead of rolling it over', () => {
    // Date.parse took 2026-02-30 for 2026-03-02: a restore to a point nobody asked for.
    for (const until of ['2026-02-30T10:00:00Z', '2026-02-29T00:00:00Z', '2026-04-31T00:00:00', '2026-06-31', '2026-13-01T00:00:00Z', '2026-00-10T00:00:00Z', '2026-11-00T00:00:00Z', '2026-11-22T25:00:00Z', '2026-11-22T24:00:01Z', '2026-11-22T10:61:00Z', '2026-11-22T10:00:60Z', '2026-11-22T10:00:00+24:00']) {
      let thrown: unknown;
      try {
        parseTargetSpec({ until });
      } catch (err) {
        thrown = err;
      }
      expect(thrown, until).toBeInstanceOf(UsageError);
      expect((thrown as Error).message, until).toContain(`--until: ${JSON.stringify(until)} is not a real date and time`);
    }
    expect(() => parseTargetSpec({ until: '2026-02-30T10:00:00Z' })).toThrow(/day 30 of a month with 28 days/);
  });

  it('takes what is real: a leap day, the last day of each month, 24:00 as the end of the day', () => {
    expect(parseTargetSpec({ until: '2028-02-29T10:00:00Z' })).toEqual({ kind: 'time', atMs: Date.UTC(2028, 1, 29, 10) });
    expect(parseTargetSpec({ until: '2000-02-29T00:00:00Z' })).toEqual({ kind: 'time', atMs: Date.UTC(2000, 1, 29) });
    expect(parseTargetSpec({ until: '2026-04-30T23:59:59.999Z' })).toEqual({ kind: 'time', atMs: Date.UTC(2026, 3, 30, 23, 59, 59, 999) });
    expect(parseTargetSpec({ until: '2026-12-31T10:00:00-0530' })).toEqual({ kind: 'time', atMs: Date.UTC(2026, 11, 31, 15, 30) });
    expect(parseTargetSpec({ until: '2026-11-22T24:00:00Z' })).toEqual({ kind: 'time', atMs: Date.UTC(2026, 10, 23) });
    expect(parseTargetSpec({ until: '2026-11-22T10:00' })).toEqual({ kind: 'time', atMs: new Date(2026, 10, 22, 10, 0).getTime() });
  });

  it('refuses what is not ISO 8601, and more than one target', () => {
    expect(() => parseTargetSpec({ until: 'yesterday' })).toThrow(/--until: expected an ISO 8601 time/);
    expect(() => parseTargetSpec({ until: '22/11/2026' })).toThrow(/--until/);
    expect(() => parseTargetSpec({ until: '2026-11-22', 'until-gtid': '0-1-2' })).toThrow(/at most one/);
    expect(parseTargetSpec({ 'until-gtid': '0-1-42' })).toEqual({ kind: 'gtid', gtid: '0-1-42' });
    expect(() => parseTargetSpec({ 'until-gtid': '3E11FA47-71CA-11E1-9E33-C80AA9429562:23' })).toThrow(/a MySQL GTID: on MySQL, use --until-position/);
  });
});
