import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  it('refuses what is not ISO 8601, and more than one target', () => {
    expect(() => parseTargetSpec({ until: 'yesterday' })).toThrow(/--until: expected an ISO 8601 time/);
    expect(() => parseTargetSpec({ until: '22/11/2026' })).toThrow(/--until/);
    expect(() => parseTargetSpec({ until: '2026-11-22', 'until-gtid': '0-1-2' })).toThrow(/at most one/);
    expect(parseTargetSpec({ 'until-gtid': '0-1-42' })).toEqual({ kind: 'gtid', gtid: '0-1-42' });
    expect(() => parseTargetSpec({ 'until-gtid': '3E11FA47-71CA-11E1-9E33-C80AA9429562:23' })).toThrow(/a MySQL GTID: on MySQL, use --until-position/);
  });
});
