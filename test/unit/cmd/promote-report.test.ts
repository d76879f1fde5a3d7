import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { filesOnlyCommandLine, formatReport } from '../../../src/cmd/promote.js';
import type { PromotionReport } from '../../../src/standby/promote.js';
import { unwatchedWindowWords } from '../../../src/standby/spool-restore.js';

/**
 * Goal: the text report's loss-window line says what its figure means: 0 (the archive held
 * everything when the primary was last heard) is not described as a window of transactions
 * that may be lost, and a figure is whole milliseconds. Method: the report formatter on a
 * report made by hand.
 */
describe('promote text report', () => {
  const report = (lossWindowSeconds: number | undefined): PromotionReport =>
    ({
      archive: '/a',
      primary: 'db',
      target: 'root@standby',
      targetPoint: 'the end of the archive',
      base: { id: 'b1', method: 'logical', binlog: { file: 'mysql-bin.000001', position: 4 } },
      physical: undefined,
      replay: [],
      lastTransaction: { file: 'mysql-bin.000001', position: 900, gtid: '0-1-5', commitTime: '2026-12-06T14:44:03.000Z' },
      lastHeard: { time: '2026-12-06T14:44:23.709Z', source: 'state/last-heard.json', caughtUp: lossWindowSeconds === 0 },
      lossWindowSeconds,
      damagedBases: [],
      stoppedBeforeDamage: undefined,
      partialTailCut: undefined,
      filesRestored: [],
      hooks: [],
      steps: [],
    }) as unknown as PromotionReport;

  it('0 s: the archive held everything when last heard; otherwise the window, in milliseconds at most', () => {
    const whole = formatReport(report(0), false, true);
    expect(whole).toMatch(/^ {2}loss window: +0 s \(the archive held everything the primary had written when it was last heard/m);
    expect(whole).not.toContain('may be lost');
    const behind = formatReport(report(20.709), false, true);
    expect(behind).toMatch(/^ {2}loss window: +20\.709 s \(transactions committed after the last one above and before the primary was last heard may be lost\)/m);
    // 0 from clocks that differ (the archive was behind): not "held everything".
    const skewed = report(0);
    skewed.lastHeard = { time: '2026-12-06T14:44:03.000Z', source: 'state/last-heard.json', caughtUp: false };
    expect(formatReport(skewed, false, true)).toMatch(/^ {2}loss window: +0 s \(transactions committed after the last one above and before the primary was last heard may be lost\)/m);
    // No record of when the primary was last heard: no figure (the plan leaves it out), unknown.
    const unrecorded = report(undefined);
    unrecorded.lastHeard = { time: '2026-12-06T14:44:03.000Z', source: 'newest archived event (no state/last-heard.json)', caughtUp: false };
    expect(formatReport(unrecorded, false, true)).toMatch(/^ {2}loss window: +unknown \(the archive holds no transaction, or no record of when the primary was last heard\)/m);
  });

  it('spool files restored at a point inside an unwatched window: a SPOOL_POINT_UNCERTAIN warning line after the source', () => {
    const inside = report(undefined);
    const uncertain = { fromMs: Date.parse('2026-12-06T22:03:58.995Z'), toMs: Date.parse('2026-12-06T22:04:10.100Z'), placedBefore: 6, placedAfter: 0, unplaced: 0, unplacedNamed: [] };
    inside.filesRestored = [
      { name: 'spool', path: '/r/spool', pointMs: Date.parse('2026-12-06T22:04:00.000Z'), files: 7, dirs: 2, links: 0, bytes: 100, removed: 3, uncertain, uncertainWhy: unwatchedWindowWords(uncertain, Date.parse('2026-12-06T22:04:03.999Z')) },
    ];
    expect(formatReport(inside, false, false)).toMatch(
      /^ {2}files restored: +spool to \/r\/spool as of 2026-12-06T22:04:00\.000Z \(7 files, 2 dirs, 0 links, 100 bytes; removed 3 paths the tree at that point does not hold\)\n {2}WARNING: +SPOOL_POINT_UNCERTAIN: files of spool: files changed while the standby \(or agent\) was away from 2026-12-06T22:03:58\.995Z to 2026-12-06T22:04:10\.100Z; their state at 2026-12-06T22:04:03\.999Z is not known: 6 created or changed files, folders and links placed by their mtime \(6 at or before it, 0 after\); no delete or rename to place$/m,
    );
    expect(formatReport(report(undefined), false, false)).not.toContain('SPOOL_POINT_UNCERTAIN');
  });

  it('a source skipped once its restore had begun says it may be partly restored, not that it was left as it is', () => {
    const failed = report(undefined);
    const skipped = { path: '/r/gw', pointMs: 0, files: 0, dirs: 0, links: 0, bytes: 0, removed: 0, skipCode: 'SPOOL_RESTORE_IO' };
    failed.filesRestored = [
      { ...skipped, name: 'gw', skipped: 'restoring spool source gw into /r/gw: EACCES; not restored (/r/gw may be partly restored)', partly: true },
      { ...skipped, name: 'cfg', path: '/r/cfg', skipCode: 'SPOOL_NO_HISTORY', skipped: 'no history; not restored' },
    ];
    const text = formatReport(failed, false, false);
    expect(text).toMatch(/^ {2}files NOT restored: gw \(may be partly restored at \/r\/gw\): /m);
    expect(text).toMatch(/^ {2}files NOT restored: cfg \(left as it is at \/r\/cfg\): /m);
  });

  it('damage a newer base passed over is a warning that names it and the base restored from', () => {
    const passed = report(0);
    passed.passedOverDamage = { kind: 'corrupt', file: 'mysql-bin.000002', offset: 1234, reason: 'CRC32 mismatch' };
    expect(formatReport(passed, false, true)).toMatch(/^ {2}WARNING: +passed over damage before the chain restored from \(base b1\): mysql-bin\.000002:1234 \(corrupt: CRC32 mismatch\); older points in time need it mended$/m);
    expect(formatReport(report(0), false, true)).not.toContain('passed over damage');
    // Every damage passed over is named, not only the first.
    const twice = report(0);
    twice.passedOverDamages = [
      { kind: 'corrupt', file: 'mysql-bin.000002', offset: 1234, reason: 'CRC32 mismatch' },
      { kind: 'gap', file: 'mysql-bin.000005', offset: 0, reason: 'mysql-bin.000005 is missing' },
    ];
    twice.passedOverDamage = twice.passedOverDamages[0];
    expect(formatReport(twice, false, true).match(/passed over damage before the chain/g)).toHaveLength(2);
  });

  it('the --files-only command it gives restores as the promotion would have: its archive, point and destination, absolute and quoted', () => {
    expect(filesOnlyCommandLine('/srv/arch ive', { kind: 'time', atMs: Date.parse('2026-12-06T14:44:03.250Z') }, '/restore', ['gateway', "it's"])).toBe(
      "hotspare promote --files-only --archive '/srv/arch ive' --until 2026-12-06T14:44:03.250Z --files-root /restore --source gateway --source 'it'\\''s'",
    );
    expect(filesOnlyCommandLine('/a', { kind: 'position', at: { file: 'mysql-bin.000002', position: 120 } }, undefined, ['q'])).toBe('hotspare promote --files-only --archive /a --until-position mysql-bin.000002:120 --source q');
    // A relative path as typed would only work from the same folder.
    expect(filesOnlyCommandLine('arch', { kind: 'end' }, 'out', ['q'])).toBe(`hotspare promote --files-only --archive ${join(process.cwd(), 'arch')} --files-root ${join(process.cwd(), 'out')} --source q`);
  });

  it("a failed hook's line is followed by the command that runs it again as it ran, quoted for a shell", () => {
    const failed = report(0);
    failed.hooks = [
      { source: 'gateway', run: 'systemctl start gw', exitCode: 0, signal: null, timedOut: false, env: { HOTSPARE_SOURCE_NAME: 'gateway' } },
      { source: 'gateway', run: "notify 'promoted'", exitCode: 3, signal: null, timedOut: false, env: { HOTSPARE_SOURCE_NAME: 'gateway', HOTSPARE_SOURCE_PATH: '/srv/gate way' } },
    ];
    const text = formatReport(failed, false, true);
    expect(text).toMatch(/^ {2}hook: +gateway: notify 'promoted' -> FAILED \(exit 3\)\n {4}run again: +env HOTSPARE_SOURCE_NAME=gateway 'HOTSPARE_SOURCE_PATH=\/srv\/gate way' \/bin\/sh -c 'notify '\\''promoted'\\'''$/m);
    // Only failed hooks get one.
    expect(text.match(/run again:/g)).toHaveLength(1);
  });
});
