import { describe, expect, it } from 'vitest';
import { HeadTimeline, bytesBetween, purgeRisk, replicaLag, type PrimaryHeadView } from '../../../src/core/lag.js';

const files = [
  { name: 'mysql-bin.000009', sizeBytes: 1_000 },
  { name: 'mysql-bin.000010', sizeBytes: 2_000 },
  { name: 'mysql-bin.000011', sizeBytes: 3_000 },
  { name: 'mysql-bin.000012', sizeBytes: 500 },
];

function view(over: Partial<PrimaryHeadView> = {}): PrimaryHeadView {
  return {
    head: { file: 'mysql-bin.000012', position: 500 },
    checkedAtMs: 10_000,
    fresh: true,
    files,
    expireLogsSeconds: 0,
    rotatedAtMs: new Map(),
    sinceMs: 0,
    ...over,
  };
}

describe('bytesBetween', () => {
  it('counts within a file and across files', () => {
    expect(bytesBetween({ file: 'mysql-bin.000012', position: 100 }, { file: 'mysql-bin.000012', position: 500 }, files)).toBe(400);
    // rest of 10 (1500) + all of 11 (3000) + 500 of 12
    expect(bytesBetween({ file: 'mysql-bin.000010', position: 500 }, { file: 'mysql-bin.000012', position: 500 }, files)).toBe(5_000);
    expect(bytesBetween({ file: 'mysql-bin.000012', position: 500 }, { file: 'mysql-bin.000011', position: 5 }, files)).toBe(0);
  });
  it('orders files by sequence number, not text', () => {
    const wide = [{ name: 'b.999999', sizeBytes: 10 }, { name: 'b.1000000', sizeBytes: 20 }];
    expect(bytesBetween({ file: 'b.999999', position: 4 }, { file: 'b.1000000', position: 8 }, wide)).toBe(14);
  });
});

describe('HeadTimeline', () => {
  it('dates the oldest byte beyond the durable point by its first observation', () => {
    const t = new HeadTimeline();
    t.observe({ file: 'f.000001', position: 100 }, 1_000);
    t.observe({ file: 'f.000001', position: 200 }, 2_000);
    t.observe({ file: 'f.000001', position: 200 }, 3_000); // seen again later: changes nothing
    t.observe({ file: 'f.000002', position: 50 }, 4_000);
    expect(t.firstBeyondMs({ file: 'f.000001', position: 99 })).toBe(1_000);
    expect(t.firstBeyondMs({ file: 'f.000001', position: 100 })).toBe(2_000);
    t.durableAt({ file: 'f.000001', position: 200 });
    expect(t.firstBeyondMs({ file: 'f.000001', position: 200 })).toBe(4_000);
    expect(t.size).toBe(1);
  });
  it('an earlier observation further along supersedes later ones before it', () => {
    const t = new HeadTimeline();
    t.observe({ file: 'f.000001', position: 100 }, 5_000); // the poller saw the head late
    t.observe({ file: 'f.000001', position: 300 }, 1_000); // the stream had it earlier
    expect(t.firstBeyondMs({ file: 'f.000001', position: 0 })).toBe(1_000);
    expect(t.size).toBe(1);
  });
  it('stays bounded during a long outage and keeps the oldest mark and the newest', () => {
    const t = new HeadTimeline();
    for (let i = 1; i <= 10_000; i++) {
      t.observe({ file: 'f.000001', position: i }, i);
      // Also right after each thinning: the stream's furthest point is the last observation.
      expect(t.furthest?.position).toBe(i);
    }
    expect(t.size).toBeLessThanOrEqual(4_096);
    expect(t.firstBeyondMs({ file: 'f.000001', position: 0 })).toBe(1);
  });
});

describe('replicaLag', () => {
  it('is 0/0 when the durable point equals a fresh head', () => {
    expect(replicaLag({ durable: { file: 'mysql-bin.000012', position: 500 }, firstBeyondMs: undefined, furthest: undefined }, view(), 99_000)).toEqual({ bytesBehind: 0, secondsBehind: 0 });
  });
  it('counts the age from the first observation beyond the durable point', () => {
    expect(replicaLag({ durable: { file: 'mysql-bin.000011', position: 3_000 }, firstBeyondMs: 7_500, furthest: undefined }, view(), 10_000)).toEqual({ bytesBehind: 500, secondsBehind: 2.5 });
  });
  it('counts bytes to what the stream saw when it is ahead of the last head check', () => {
    const lag = replicaLag({ durable: { file: 'mysql-bin.000012', position: 500 }, firstBeyondMs: 9_900, furthest: { file: 'mysql-bin.000012', position: 800 } }, view(), 10_000);
    expect(lag.bytesBehind).toBe(300);
    expect(lag.secondsBehind).toBeCloseTo(0.1);
  });
  it('with the head unknown, the age grows from the last successful check', () => {
    const stale = view({ fresh: false });
    const durable = { file: 'mysql-bin.000012', position: 500 };
    expect(replicaLag({ durable, firstBeyondMs: undefined, furthest: undefined }, stale, 13_000).secondsBehind).toBe(3);
    expect(replicaLag({ durable, firstBeyondMs: undefined, furthest: undefined }, stale, 20_000).secondsBehind).toBe(10);
  });

  // A standby already behind when the agent started (down, or cut off by a purge): its last
  // durable commit was at 1,000 s; the agent's first head check, at 1,010 s, saw the head at
  // mysql-bin.000012:500 and is the first mark beyond the durable point; now is 1,025 s.
  const firstHead = { head: { file: 'mysql-bin.000012', position: 500 }, checkedAtMs: 1_010_000 };
  const started = view({ checkedAtMs: 1_024_000, firstHead });
  const behind = { file: 'mysql-bin.000012', position: 100, commitTimestampS: 1_000 };
  it('a replica behind since before the agent started ages from its last durable commit, not from the agent\'s first look', () => {
    expect(replicaLag({ durable: behind, firstBeyondMs: 1_010_000, furthest: undefined }, started, 1_025_000)).toEqual({ bytesBehind: 400, secondsBehind: 25 });
    // The same with the head checks failing since (the primary unreachable).
    expect(replicaLag({ durable: behind, firstBeyondMs: 1_010_000, furthest: undefined }, { ...started, fresh: false }, 1_025_000).secondsBehind).toBe(25);
    // Its binlog purged meanwhile (state gap): the durable file is no longer listed.
    const purged = { file: 'mysql-bin.000007', position: 900, commitTimestampS: 1_000 };
    expect(replicaLag({ durable: purged, firstBeyondMs: 1_010_000, furthest: undefined }, started, 1_025_000).secondsBehind).toBe(25);
  });
  it('an idle primary: the last run saw the replica hold everything until shortly before, so a restart\'s few bytes are not as old as the last commit', () => {
    // Last commit at 1,000 s, the primary idle since; the last run saw the replica caught up at
    // 1,008 s (its heartbeats), then the primary restarted and wrote a few events of its own.
    expect(replicaLag({ durable: behind, firstBeyondMs: 1_010_000, furthest: undefined, caughtUpAtMs: 1_008_000 }, started, 1_025_000).secondsBehind).toBe(17);
    // Never later than the marks (a saved time after the first look would be a clock's error).
    expect(replicaLag({ durable: behind, firstBeyondMs: 1_010_000, furthest: undefined, caughtUpAtMs: 1_012_000 }, started, 1_025_000).secondsBehind).toBe(15);
  });
  it('a caught-up replica is 0/0 whatever its last commit\'s age', () => {
    const atHead = { file: 'mysql-bin.000012', position: 500, commitTimestampS: 1_000 };
    expect(replicaLag({ durable: atHead, firstBeyondMs: undefined, furthest: undefined }, started, 1_025_000)).toEqual({ bytesBehind: 0, secondsBehind: 0 });
  });
  it('bytes the agent saw arrive are dated by their marks, not by the last commit', () => {
    // Caught up at the agent's first look (an idle primary since 1,000 s), then written to: the head check at 1,020 s dates it.
    const caughtUpThen = view({ firstHead: { head: { file: 'mysql-bin.000012', position: 100 }, checkedAtMs: 1_010_000 } });
    expect(replicaLag({ durable: behind, firstBeyondMs: 1_020_000, furthest: undefined }, caughtUpThen, 1_025_000).secondsBehind).toBe(5);
    // Behind at the agent's first look, but the backlog's header time (1,005 s) dates its first event.
    expect(replicaLag({ durable: behind, firstBeyondMs: 1_005_999, furthest: undefined }, started, 1_025_000).secondsBehind).toBeCloseTo(19.001, 6);
  });
  it('without a commit time (an archive from before they were recorded), or with a later one (the primary\'s clock ahead), the age is the marks\'', () => {
    const unknown = { file: 'mysql-bin.000012', position: 100, commitTimestampS: undefined };
    expect(replicaLag({ durable: unknown, firstBeyondMs: 1_010_000, furthest: undefined }, started, 1_025_000).secondsBehind).toBe(15);
    const { commitTimestampS: _none, ...withoutField } = unknown;
    expect(replicaLag({ durable: withoutField, firstBeyondMs: 1_010_000, furthest: undefined }, started, 1_025_000).secondsBehind).toBe(15);
    const ahead = { ...behind, commitTimestampS: 1_015 };
    expect(replicaLag({ durable: ahead, firstBeyondMs: 1_010_000, furthest: undefined }, started, 1_025_000).secondsBehind).toBe(15);
  });
});

describe('purgeRisk', () => {
  const input = { needFileWrittenAtLeastMs: undefined, warningFiles: 2, warningExpireRatio: 0.75 };
  it('never warns about the newest file', () => {
    expect(purgeRisk({ ...input, needFile: 'mysql-bin.000012' }, view(), 0).kind).toBe('none');
  });
  it('warns when few files are older than the needed one on a primary seen purging, and not otherwise', () => {
    expect(purgeRisk({ ...input, needFile: 'mysql-bin.000010' }, view({ purgesSeen: true }), 0)).toMatchObject({ kind: 'warning', code: 'PURGE_SOON' });
    expect(purgeRisk({ ...input, needFile: 'mysql-bin.000011', warningFiles: 1 }, view({ purgesSeen: true }), 0).kind).toBe('none');
    // A primary that purges nothing (a young one after a restart keeps two files): no alarm.
    expect(purgeRisk({ ...input, needFile: 'mysql-bin.000010' }, view(), 0).kind).toBe('none');
  });
  it('warns when the needed file nears binlog_expire_logs_seconds', () => {
    const v = view({ expireLogsSeconds: 100, rotatedAtMs: new Map([['mysql-bin.000011', 0]]) });
    const need = { ...input, needFile: 'mysql-bin.000011', warningFiles: 1 };
    expect(purgeRisk(need, v, 70_000).kind).toBe('none');
    expect(purgeRisk(need, v, 80_000)).toMatchObject({ kind: 'warning', code: 'PURGE_SOON' });
  });
  it('reports a needed file older than the oldest as gone', () => {
    expect(purgeRisk({ ...input, needFile: 'mysql-bin.000007' }, view(), 0)).toMatchObject({ kind: 'gone', code: 'BINLOG_PURGED' });
  });
});
