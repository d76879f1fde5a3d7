import { describe, expect, it } from 'vitest';
import type { RecordedGap } from '../../../src/archive/binlog-gaps.js';
import { formatReport } from '../../../src/cmd/status.js';
import type { ArchiveReport } from '../../../src/standby/verify-archive.js';

/**
 * Goal: `hotspare status`'s summary line agrees with the recorded gaps it lists below (it said
 * "gaps/damage: none" right above "recorded gaps: 1"). Method: the formatter fed by hand.
 */
describe('status report', () => {
  const report = (over: Partial<ArchiveReport>): ArchiveReport => ({
    archive: '/a',
    primary: { serverId: 1, hostname: 'p', version: '10.11', flavor: 'mariadb' },
    bases: [],
    partialBases: [],
    recordedGaps: [],
    earlierBinlog: { files: 0, bytes: 0, first: undefined, last: undefined },
    binlog: { files: 1, first: { file: 'mysql-bin.000003', position: 4 }, last: { file: 'mysql-bin.000003', position: 900 }, bytes: 900 },
    latestRestorable: undefined,
    newestEventTime: undefined,
    partialTail: undefined,
    firstBad: undefined,
    endDamage: undefined,
    passedOverDamages: [],
    spoolSources: [],
    spool: [],
    spoolChecks: undefined,
    spoolUnchecked: undefined,
    lastHeard: undefined,
    promoted: undefined,
    intact: true,
    ...over,
  });
  const gap = { after: { file: 'mysql-bin.000001', position: 500 }, resumeAt: { file: 'mysql-bin.000003', position: 4 }, base: 'b2', primaryOldest: 'mysql-bin.000003', recordedAt: '2026-11-22T10:00:00.000Z', reason: 'purged' } satisfies RecordedGap;
  const summary = (r: ArchiveReport): string | undefined => formatReport(r).split('\n').find((l) => l.startsWith('  gaps/damage: '));

  it('says none only when there is neither damage nor a recorded gap', () => {
    expect(summary(report({}))).toBe('  gaps/damage: none');
  });

  it('counts the recorded gaps listed below it', () => {
    const text = formatReport(report({ recordedGaps: [gap] }));
    expect(text).toContain('  gaps/damage: 1 recorded gap (below), no damage\n  recorded gaps: 1 ');
    expect(summary(report({ recordedGaps: [gap, gap] }))).toBe('  gaps/damage: 2 recorded gaps (below), no damage');
  });

  it('names the first damage, and the recorded gaps beside it', () => {
    const firstBad = { kind: 'corrupt' as const, file: 'mysql-bin.000003', offset: 256, reason: 'CRC32 mismatch' };
    expect(summary(report({ firstBad, intact: false }))).toBe('  gaps/damage: mysql-bin.000003:256 (corrupt: CRC32 mismatch)');
    expect(summary(report({ firstBad, intact: false, recordedGaps: [gap] }))).toBe('  gaps/damage: mysql-bin.000003:256 (corrupt: CRC32 mismatch); 1 recorded gap (below)');
  });
});
