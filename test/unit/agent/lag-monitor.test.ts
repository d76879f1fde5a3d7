import { describe, expect, it } from 'vitest';
import { LagMonitor } from '../../../src/agent/lag-monitor.js';
import { ReplicaTracker } from '../../../src/agent/replica-tracker.js';
import type { ReplicaDefinition } from '../../../src/config/schema.js';
import { evaluateLag } from '../../../src/cmd/check.js';
import { LagMetrics } from '../../../src/http/lag-metrics.js';

/**
 * Goal: a replica whose archive has not yet said where it ends (a standby down since the agent
 * started) raises no LAG_* alarm from the guess that it holds nothing (the primary's whole
 * binlog); it is DISCONNECTED once its grace has passed. Method: the monitor fed by hand.
 */

/** Two file replicas, both durable at mysql-bin.000012:4000 and streaming since 1,000 ms, under one monitor (head poll 500 ms). */
function twoStreams(names: [string, string], maxLagSeconds: number) {
  const definitions = names.map((name) => ({ name, type: 'file', thresholds: { maxLagSeconds, maxLagBytes: 1 << 30 } }) as unknown as ReplicaDefinition);
  const trackers = names.map((name) => new ReplicaTracker(name, 0)) as [ReplicaTracker, ReplicaTracker];
  const monitor = new LagMonitor(
    definitions.map((definition, i) => ({ definition, tracker: trackers[i] as ReplicaTracker })),
    { headPollIntervalMs: 500, startedAtMs: 0 },
  );
  const point = { file: 'mysql-bin.000012', position: 4_000, boundaryFile: 'mysql-bin.000012', boundaryPosition: 4_000, commitTimestampS: 1, gtid: undefined };
  for (const t of trackers) {
    t.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
    t.apply({ kind: 'connected', start: { file: 'mysql-bin.000012', position: 4_000 } }, 1_000);
  }
  return { monitor, trackers, point };
}

describe('LagMonitor', () => {
  it('no LAG_BYTES or LAG_SECONDS for a replica whose durable point is unknown; DISCONNECTED after the grace', () => {
    const definition = { name: 'standby-b', type: 'remote', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const tracker = new ReplicaTracker('standby-b', 0);
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0 });
    const gib = 1024 * 1024 * 1024;
    const files = Array.from({ length: 10 }, (_, i) => ({ name: `mysql-bin.${String(i + 1).padStart(6, '0')}`, sizeBytes: gib }));
    monitor.observeHead({ head: { file: 'mysql-bin.000010', position: gib }, files, expireLogsSeconds: 0, checkedAtMs: 1_000 });
    const early = monitor.report(1_000).replicas[0];
    expect(early?.problems).toEqual([]);
    monitor.observeHead({ head: { file: 'mysql-bin.000010', position: gib }, files, expireLogsSeconds: 0, checkedAtMs: 70_000 });
    const late = monitor.report(70_000).replicas[0];
    expect(late?.state).toBe('disconnected');
    expect(late?.problems.map((p) => p.code)).toEqual(['DISCONNECTED']);
  });

  it('a backlog found after a restart is dated by its events\' headers, not by when it arrived', () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const tracker = new ReplicaTracker('a', 0);
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 3_600_000 });
    const point = { file: 'mysql-bin.000001', position: 100, boundaryFile: 'mysql-bin.000001', boundaryPosition: 100, commitTimestampS: 1, gtid: undefined };
    tracker.apply({ kind: 'durable', point, shippedBytes: 0 }, 3_600_000);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 100 } }, 3_600_000);
    // The agent was down for an hour: the first event beyond the archive was written at 0:00:10.
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 5_000, atMs: 3_600_500, first: { file: 'mysql-bin.000001', position: 200, timestampS: 10 } }, 3_600_500);
    const files = [{ name: 'mysql-bin.000001', sizeBytes: 9_000 }];
    monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 9_000 }, files, expireLogsSeconds: 0, checkedAtMs: 3_600_600 });
    expect(monitor.report(3_601_000).replicas[0]?.binlog.secondsBehind).toBeCloseTo(3_601 - 10.999, 3);
    // The catch-up goes on: each report's first event is dated by its header while it lies
    // before the head the first check after the connect saw (9,000), so the lag stays the
    // backlog's age once the first event is durable (it read ~0.4 s: the receive and
    // head-check times were all that was left).
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 9_000, atMs: 3_600_700, first: { file: 'mysql-bin.000001', position: 5_200, timestampS: 20 } }, 3_600_700);
    tracker.apply({ kind: 'durable', point: { ...point, position: 5_000, boundaryPosition: 5_000 }, shippedBytes: 0 }, 3_600_800);
    expect(monitor.report(3_601_000).replicas[0]?.binlog.secondsBehind).toBeCloseTo(3_601 - 20.999, 3);
    // Past the backlog's end the stream is live: an old header (a long transaction) no longer dates anything.
    tracker.apply({ kind: 'durable', point: { ...point, position: 9_000, boundaryPosition: 9_000 }, shippedBytes: 0 }, 3_601_000);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 9_500, atMs: 3_602_000, first: { file: 'mysql-bin.000001', position: 9_400, timestampS: 3_500 } }, 3_602_000);
    expect(monitor.report(3_602_500).replicas[0]?.binlog.secondsBehind).toBeCloseTo(0.5, 3);
    // Streaming near real time, the receive time stays the finer measure.
    const live = new ReplicaTracker('b', 0);
    live.apply({ kind: 'durable', point, shippedBytes: 0 }, 20_000);
    live.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 100 } }, 20_000);
    live.apply({ kind: 'received', file: 'mysql-bin.000001', position: 300, atMs: 20_050, first: { file: 'mysql-bin.000001', position: 300, timestampS: 20 } }, 20_050);
    expect(live.timeline.firstBeyondMs(point)).toBe(20_050);
    // Later, live: a long transaction whose header says it began a minute ago is dated by its arrival.
    live.apply({ kind: 'durable', point: { ...point, position: 300, boundaryPosition: 300 }, shippedBytes: 0 }, 90_000);
    live.apply({ kind: 'received', file: 'mysql-bin.000001', position: 900, atMs: 90_100, first: { file: 'mysql-bin.000001', position: 900, timestampS: 30 } }, 90_100);
    expect(live.timeline.firstBeyondMs({ file: 'mysql-bin.000001', position: 300 })).toBe(90_100);
  });

  it('head checks failing while the live stream shows the replica caught up: no lag grows; once the stream goes quiet it does', () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const tracker = new ReplicaTracker('a', 0);
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0 });
    const point = { file: 'mysql-bin.000001', position: 1_000, boundaryFile: 'mysql-bin.000001', boundaryPosition: 1_000, commitTimestampS: 1, gtid: undefined };
    tracker.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 1_000 } }, 1_000);
    monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 1_000 }, files: [{ name: 'mysql-bin.000001', sizeBytes: 1_000 }], expireLogsSeconds: 0, checkedAtMs: 1_000 });
    // The head checks fail from here (max_connections reached, say); the dump, already connected, goes on.
    monitor.headFailed({ code: 'PRIMARY_UNREACHABLE', message: 'too many connections', atMs: 2_000 });
    // An idle primary: heartbeats at the durable point.
    for (let at = 2_000; at <= 50_000; at += 1_000) tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 1_000, atMs: at, idle: true }, at);
    const idle = monitor.report(50_400).replicas[0];
    expect(idle?.binlog.secondsBehind).toBeCloseTo(0.4, 3);
    expect(idle?.problems).toEqual([]);
    // A busy one (no heartbeats at all): each batch of commits arrives moments after it was
    // written and becomes durable in turn.
    let position = 1_000;
    for (let at = 50_100; at <= 100_000; at += 100) {
      position += 200;
      tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position, atMs: at, lastCommitS: Math.floor((at - 50) / 1000) }, at);
      tracker.apply({ kind: 'durable', point: { ...point, position, boundaryPosition: position }, shippedBytes: 0 }, at + 5);
    }
    const busy = monitor.report(100_050).replicas[0];
    expect(busy?.binlog.secondsBehind).toBeLessThan(1.1);
    expect(busy?.problems).toEqual([]);
    // A stream far behind the primary (its commits a minute old when they arrive) that the
    // archive keeps up with is not caught up: its age is the commits' age.
    const behind = new ReplicaTracker('b', 0);
    const behindMonitor = new LagMonitor([{ definition, tracker: behind }], { headPollIntervalMs: 500, startedAtMs: 0 });
    behind.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
    behind.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 1_000 } }, 1_000);
    behindMonitor.observeHead({ head: { file: 'mysql-bin.000001', position: 1_000 }, files: [{ name: 'mysql-bin.000001', sizeBytes: 1_000 }], expireLogsSeconds: 0, checkedAtMs: 1_000 });
    behindMonitor.headFailed({ code: 'PRIMARY_UNREACHABLE', message: 'too many connections', atMs: 2_000 });
    let p2 = 1_000;
    for (let at = 2_000; at <= 100_000; at += 100) {
      p2 += 200;
      behind.apply({ kind: 'received', file: 'mysql-bin.000001', position: p2, atMs: at, lastCommitS: Math.floor((at - 60_000) / 1000) }, at);
      behind.apply({ kind: 'durable', point: { ...point, position: p2, boundaryPosition: p2 }, shippedBytes: 0 }, at + 5);
    }
    expect(behindMonitor.report(100_050).replicas[0]?.binlog.secondsBehind).toBeGreaterThan(59);
    // The stream goes quiet (the link died silently): the age grows from the last it brought.
    const silent = monitor.report(200_000).replicas[0];
    expect(silent?.binlog.secondsBehind).toBeCloseTo(100, 0);
    expect(silent?.problems.map((p) => p.code)).toEqual(['LAG_SECONDS']);
  });

  it('the primary\'s position is never behind a replica\'s: a stream past the last head check moves it', () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const tracker = new ReplicaTracker('a', 0);
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0 });
    const point = { file: 'mysql-bin.000001', position: 29_710, boundaryFile: 'mysql-bin.000001', boundaryPosition: 29_710, commitTimestampS: 1, gtid: undefined };
    tracker.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 29_710 } }, 1_000);
    monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 29_710 }, files: [{ name: 'mysql-bin.000001', sizeBytes: 29_710 }], expireLogsSeconds: 0, checkedAtMs: 1_000 });
    // A transaction arrives and is durable before the next head check.
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 30_501, atMs: 1_100 }, 1_100);
    tracker.apply({ kind: 'durable', point: { ...point, position: 30_501, boundaryPosition: 30_501 }, shippedBytes: 0 }, 1_150);
    const r = monitor.report(1_200);
    expect(r.primary).toMatchObject({ file: 'mysql-bin.000001', position: 30_501 });
    expect(r.replicas[0]?.binlog).toMatchObject({ position: 30_501, bytesBehind: 0 });
  });

  it("a replica behind another replica's stream is behind by that much, also after the primary died (its own stream is not the primary's end)", () => {
    const { monitor, trackers: [ahead, behind], point } = twoStreams(['remote', 'file'], 60);
    const files = [{ name: 'mysql-bin.000012', sizeBytes: 4_000 }];
    monitor.observeHead({ head: { file: 'mysql-bin.000012', position: 4_000 }, files, expireLogsSeconds: 0, checkedAtMs: 1_000 });
    // A large transaction streams; one replica's dump is 6 MB further when the primary dies.
    ahead.apply({ kind: 'received', file: 'mysql-bin.000012', position: 17_973_982, atMs: 1_400 }, 1_400);
    ahead.apply({ kind: 'durable', point: { ...point, position: 17_973_982 }, shippedBytes: 0 }, 1_450);
    behind.apply({ kind: 'received', file: 'mysql-bin.000012', position: 11_931_799, atMs: 1_400 }, 1_400);
    behind.apply({ kind: 'durable', point: { ...point, position: 11_931_799 }, shippedBytes: 0 }, 1_450);
    for (const t of [ahead, behind]) t.apply({ kind: 'failed', state: 'disconnected', code: 'PRIMARY_UNREACHABLE', message: 'gone', hint: '', retryInMs: 200 }, 1_500);
    const r = monitor.report(2_000);
    expect(r.primary).toMatchObject({ position: 17_973_982 });
    expect(r.replicas.map((x) => x.binlog.bytesBehind)).toEqual([0, 17_973_982 - 11_931_799]);
  });

  it("bytes only another replica's stream has seen are dated by it: never bytes behind at 0 seconds", () => {
    const { monitor, trackers: [fast, slow], point } = twoStreams(['fast', 'slow'], 60);
    monitor.observeHead({ head: { file: 'mysql-bin.000012', position: 4_000 }, files: [{ name: 'mysql-bin.000012', sizeBytes: 4_000 }], expireLogsSeconds: 0, checkedAtMs: 1_000 });
    // A transaction reaches the fast replica's stream at 1,400 ms (the agent tells every other
    // replica, as SyncAgent does for each 'received'); the slow one's has not brought it yet.
    const seen = { kind: 'received', file: 'mysql-bin.000012', position: 4_381, atMs: 1_400 } as const;
    fast.apply(seen, 1_400);
    slow.primarySeenAt(seen, seen.atMs);
    const r = monitor.report(1_450);
    expect(r.replicas.map((x) => [x.binlog.bytesBehind, x.binlog.secondsBehind])).toEqual([
      [381, 0.05],
      [381, 0.05],
    ]);
    // Durable on the slow one: caught up, the mark dropped with it.
    slow.apply({ kind: 'durable', point: { ...point, position: 4_381 }, shippedBytes: 381 }, 1_460);
    expect(monitor.report(1_470).replicas[1]?.binlog).toMatchObject({ bytesBehind: 0, secondsBehind: 0 });
  });

  it('caughtUpAt: a lost primary ages every replica alike; the one holding all the agent saw of it is caught up at its last sign of life, the other earlier', async () => {
    const { monitor, trackers: [whole, short], point } = twoStreams(['whole', 'short'], 10);
    expect(monitor.report(900).replicas.map((r) => r.binlog.caughtUpAt)).toEqual([null, null]);
    monitor.observeHead({ head: { file: 'mysql-bin.000012', position: 4_000 }, files: [{ name: 'mysql-bin.000012', sizeBytes: 4_000 }], expireLogsSeconds: 0, checkedAtMs: 1_000 });
    // Both hold the head the check read (kept whether or not /lag is read meanwhile).
    // A last transaction (committed in second 1) reaches both streams; one makes it durable, then the primary dies.
    for (const t of [whole, short]) t.apply({ kind: 'received', file: 'mysql-bin.000012', position: 6_000, atMs: 1_400, lastCommitS: 1 }, 1_400);
    whole.apply({ kind: 'durable', point: { ...point, position: 6_000 }, shippedBytes: 2_000 }, 1_450);
    for (const t of [whole, short]) t.apply({ kind: 'failed', state: 'disconnected', code: 'PRIMARY_UNREACHABLE', message: 'gone', hint: '', retryInMs: 200 }, 1_500);
    monitor.headFailed({ code: 'PRIMARY_UNREACHABLE', message: 'gone', atMs: 1_500 });
    const r = monitor.report(31_000);
    // Both age alike: nothing written since can be ruled out for either.
    expect(r.replicas.map((x) => x.binlog.secondsBehind)).toEqual([29.6, 29.6]);
    expect(r.replicas.map((x) => x.binlog.bytesBehind)).toEqual([0, 2_000]);
    // The whole one as of its last transaction's arrival; the short one as of the head check it held.
    expect(r.replicas.map((x) => x.binlog.caughtUpAt)).toEqual([new Date(1_400).toISOString(), new Date(1_000).toISOString()]);
    const metrics = await new LagMetrics().render(r);
    expect(metrics).toContain('hotspare_replica_caught_up_timestamp_seconds{replica="whole"} 1.4');
    expect(metrics).toContain('hotspare_replica_caught_up_timestamp_seconds{replica="short"} 1');
  });

  it('spool changes waiting longer than the budget: FILES_LAG in /healthz, CRITICAL in check', () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const tracker = new ReplicaTracker('a', 0);
    let oldestPendingMs = 0;
    let missingSources: Array<{ name: string; path: string }> = [];
    tracker.attachFiles(() => ({ pendingChanges: 1, pendingBytes: 10, oldestPendingMs, bytesShippedTotal: 0, missingSources }));
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0 });
    const point = { file: 'mysql-bin.000001', position: 1_000, boundaryFile: 'mysql-bin.000001', boundaryPosition: 1_000, commitTimestampS: 1, gtid: undefined };
    tracker.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 1_000 } }, 1_000);
    monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 1_000 }, files: [{ name: 'mysql-bin.000001', sizeBytes: 1_000 }], expireLogsSeconds: 0, checkedAtMs: 1_000 });
    oldestPendingMs = 30_000;
    expect(monitor.health(1_000)).toEqual({ healthy: true, reasons: [] });
    expect(evaluateLag(monitor.report(1_000), {}).status).toBe('OK');
    oldestPendingMs = 61_000;
    expect(monitor.health(1_000).reasons.map((r) => r.code)).toEqual(['FILES_LAG']);
    const verdict = evaluateLag(monitor.report(1_000), {});
    expect(verdict.status).toBe('CRITICAL');
    expect(verdict.line).toContain('a spool changes waiting for 61 s (max 60 s)');
    // A source whose folder is not there: nothing of it is archived, and nothing is ever pending to say so.
    oldestPendingMs = 0;
    missingSources = [{ name: 'feeds', path: '/var/lib/phpfina' }];
    expect(monitor.health(1_000).reasons.map((r) => r.code)).toEqual(['SPOOL_SOURCE_MISSING']);
    const missing = evaluateLag(monitor.report(1_000), {});
    expect(missing.status).toBe('WARNING');
    expect(missing.line).toContain('spool source feeds (/var/lib/phpfina) is unavailable');
  });

  it("the primary's position: what a stream brought after the last head check counts once the stream is gone (the primary died); older news does not", () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 1 << 30 } } as unknown as ReplicaDefinition;
    const tracker = new ReplicaTracker('a', 0);
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0 });
    const point = { file: 'mysql-bin.000003', position: 4_000, boundaryFile: 'mysql-bin.000003', boundaryPosition: 4_000, commitTimestampS: 1, gtid: undefined };
    const files = [{ name: 'mysql-bin.000003', sizeBytes: 4_000 }];
    tracker.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000003', position: 4_000 } }, 1_000);
    monitor.observeHead({ head: { file: 'mysql-bin.000003', position: 4_000 }, files, expireLogsSeconds: 0, checkedAtMs: 1_500 });
    // Two more transactions arrive and become durable, then the primary dies before the next head check.
    tracker.apply({ kind: 'received', file: 'mysql-bin.000003', position: 5_000, atMs: 1_700 }, 1_700);
    tracker.apply({ kind: 'durable', point: { ...point, position: 5_000, boundaryPosition: 5_000 }, shippedBytes: 1_000 }, 1_750);
    tracker.apply({ kind: 'failed', state: 'disconnected', code: 'PRIMARY_UNREACHABLE', message: 'gone', hint: '', retryInMs: 200 }, 1_800);
    const afterDeath = monitor.report(2_000);
    expect(afterDeath.primary).toMatchObject({ file: 'mysql-bin.000003', position: 5_000 });
    expect(afterDeath.replicas[0]?.binlog).toMatchObject({ position: 5_000, bytesBehind: 0 });
    // A later head check that shows another numbering (RESET MASTER): the stream's older news no longer counts.
    monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 400 }, files: [{ name: 'mysql-bin.000001', sizeBytes: 400 }], expireLogsSeconds: 0, checkedAtMs: 3_000 });
    expect(monitor.report(3_000).primary).toMatchObject({ file: 'mysql-bin.000001', position: 400 });
  });

  it("a primary whose binlog_format is no longer ROW: BINLOG_FORMAT for every replica, a warning and a problem; nothing from an unknown format", () => {
    const definition = (name: string) => ({ name, type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 1 << 30 } }) as unknown as ReplicaDefinition;
    const trackers = [new ReplicaTracker('a', 0), new ReplicaTracker('b', 0)];
    const monitor = new LagMonitor(trackers.map((tracker, i) => ({ definition: definition(i === 0 ? 'a' : 'b'), tracker })), { headPollIntervalMs: 500, startedAtMs: 0 });
    const files = [{ name: 'mysql-bin.000001', sizeBytes: 400 }];
    const observe = (binlogFormat: string | undefined): void =>
      monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 400 }, files, expireLogsSeconds: 0, ...(binlogFormat === undefined ? {} : { binlogFormat }), checkedAtMs: 1_000 });
    const codes = (): string[][] => monitor.report(1_000).replicas.map((r) => [...r.warnings.map((w) => w.code), ...r.problems.map((p) => p.code)]);
    observe(undefined);
    expect(codes().flat()).not.toContain('BINLOG_FORMAT');
    observe('ROW');
    expect(codes().flat()).not.toContain('BINLOG_FORMAT');
    observe('MIXED');
    expect(codes()).toEqual([
      ['BINLOG_FORMAT', 'BINLOG_FORMAT'],
      ['BINLOG_FORMAT', 'BINLOG_FORMAT'],
    ]);
    expect(monitor.report(1_000).replicas[0]?.warnings[0]?.message).toContain('binlog_format is now MIXED');
    expect(monitor.health(1_000).healthy).toBe(false);
  });

  it('bytes shipped count every file a durable point jumps across (a catch-up of small files under one fsync)', () => {
    const tracker = new ReplicaTracker('a', 0);
    const at = (file: string, position: number) => ({ file, position, boundaryFile: file, boundaryPosition: position, commitTimestampS: 1, gtid: undefined });
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000001', 200), shippedBytes: 0 }, 1_000);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 1_000, atMs: 1_000 }, 1_000);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000002', position: 500, atMs: 1_001 }, 1_001);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000003', position: 300, atMs: 1_002 }, 1_002);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000003', 300), shippedBytes: 0 }, 1_003);
    // 800 of the first file's tail, the events of the second (4..500) and of the third (4..300).
    expect(tracker.snapshot.binlogBytesShipped).toBe(800 + 496 + 296);
  });

  it('PURGE_SOON by count on a primary whose oldest file is not its first (a purge before the agent started), not on a young one', () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 3_600, maxLagBytes: 1 << 30 } } as unknown as ReplicaDefinition;
    const at = (file: string) => ({ file, position: 100, boundaryFile: file, boundaryPosition: 100, commitTimestampS: 1, gtid: undefined });
    const warnings = (files: string[], need: string): string[] => {
      const tracker = new ReplicaTracker('a', 0);
      tracker.apply({ kind: 'durable', point: at(need), shippedBytes: 0 }, 1_000);
      const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0 });
      const head = files[files.length - 1] as string;
      monitor.observeHead({ head: { file: head, position: 100 }, files: files.map((name) => ({ name, sizeBytes: 100 })), expireLogsSeconds: 0, checkedAtMs: 1_000 });
      return monitor.report(1_000).replicas[0]?.warnings.map((w) => w.code) ?? [];
    };
    // A young primary after a restart: its first two files, no purge ever.
    expect(warnings(['mysql-bin.000001', 'mysql-bin.000002'], 'mysql-bin.000001')).toEqual([]);
    // One that purged before the agent started (by cron, say): the count rule applies.
    expect(warnings(['mysql-bin.000007', 'mysql-bin.000008'], 'mysql-bin.000007')).toEqual(['PURGE_SOON']);
  });

  it('a saved point stands for a replica until its archive says where it ends; a session on an empty archive drops it', () => {
    const point = { file: 'mysql-bin.000003', position: 900, boundaryFile: 'mysql-bin.000003', boundaryPosition: 900, commitTimestampS: 1, gtid: undefined };
    const kept = new ReplicaTracker('a', 0);
    kept.seedDurable(point);
    expect(kept.snapshot.durable).toEqual(point);
    // The archive's own end replaces it; bytes shipped count from there, not from the seed.
    kept.apply({ kind: 'durable', point: { ...point, position: 1_000, boundaryPosition: 1_000 }, shippedBytes: 0 }, 1_000);
    expect(kept.snapshot.durable?.position).toBe(1_000);
    expect(kept.snapshot.binlogBytesShipped).toBe(0);
    // A new, empty archive (its base still to come) under the same name: the point goes.
    const replaced = new ReplicaTracker('b', 0);
    replaced.seedDurable(point);
    replaced.sessionWithoutResume();
    expect(replaced.snapshot.durable).toBeUndefined();
  });

  it('a standby behind since before the agent started: its age counts from its last durable commit in /lag, /healthz, /metrics and check', async () => {
    // The rehearsal: a remote standby's receiver stopped, then the agent; the primary wrote on
    // for 15 s; the agent started. The saved point's last commit was at 22:01:12.
    const t = (hms: string): number => Date.parse(`2026-11-22T${hms}Z`);
    const definition = { name: 'standby-b', type: 'remote', thresholds: { maxLagSeconds: 10, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const startedAtMs = t('22:01:34.200');
    const tracker = new ReplicaTracker('standby-b', startedAtMs);
    const point = { file: 'mysql-bin.000004', position: 1_000, boundaryFile: 'mysql-bin.000004', boundaryPosition: 1_000, commitTimestampS: t('22:01:12') / 1000, gtid: undefined };
    tracker.seedDurable(point);
    const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs, onPurged: 'stop' });
    const head = (position: number, hms: string): void =>
      monitor.observeHead({ head: { file: 'mysql-bin.000004', position }, files: [{ name: 'mysql-bin.000004', sizeBytes: position }], expireLogsSeconds: 0, checkedAtMs: t(hms) });
    head(61_368, '22:01:34.250');
    head(61_368, '22:01:36.750');
    const nowMs = t('22:01:37.050');
    const r = monitor.report(nowMs);
    // It read 2.8 s: the time since the agent's first head check.
    expect(r.replicas[0]?.binlog).toMatchObject({ bytesBehind: 60_368, secondsBehind: 25.05 });
    expect(r.replicas[0]?.problems.map((p) => p.code)).toEqual(['LAG_SECONDS']);
    expect(monitor.health(nowMs).reasons.map((reason) => reason.code)).toEqual(['LAG_SECONDS']);
    expect(evaluateLag(r, {}).status).toBe('CRITICAL');
    expect(await new LagMetrics().render(r)).toContain('hotspare_replica_lag_seconds{replica="standby-b"} 25.05');
    // The standby comes back and catches up to the head the agent first saw: what the primary
    // writes from there on is dated by the head checks again, not by any commit time.
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000004', position: 1_000 } }, t('22:01:40'));
    tracker.apply({ kind: 'durable', point: { ...point, position: 61_368, boundaryPosition: 61_368, commitTimestampS: t('22:01:34') / 1000 }, shippedBytes: 60_368 }, t('22:01:41'));
    head(61_868, '22:01:42');
    expect(monitor.report(t('22:01:43')).replicas[0]?.binlog).toMatchObject({ bytesBehind: 500, secondsBehind: 1 });

    // The same with its binlog purged meanwhile (onPurged stop, state gap): the archive's last commit was at 21:52:04.
    const gapTracker = new ReplicaTracker('standby-b', t('21:53:25'));
    gapTracker.seedDurable({ ...point, file: 'mysql-bin.000002', boundaryFile: 'mysql-bin.000002', commitTimestampS: t('21:52:04') / 1000 });
    const gapMonitor = new LagMonitor([{ definition, tracker: gapTracker }], { headPollIntervalMs: 500, startedAtMs: t('21:53:25'), onPurged: 'stop' });
    gapMonitor.observeHead({ head: { file: 'mysql-bin.000004', position: 5_000 }, files: [{ name: 'mysql-bin.000003', sizeBytes: 9_000 }, { name: 'mysql-bin.000004', sizeBytes: 5_000 }], expireLogsSeconds: 0, checkedAtMs: t('21:53:25.200') });
    const gap = gapMonitor.report(t('21:53:35')).replicas[0];
    expect(gap?.state).toBe('gap');
    expect(gap?.binlog.secondsBehind).toBe(91);
  });

  it('a purged binlog file: the advice follows binlog.onPurged (the agent takes the new base itself, or the operator must)', () => {
    const point = { file: 'mysql-bin.000001', position: 500, boundaryFile: 'mysql-bin.000001', boundaryPosition: 500, commitTimestampS: 1, gtid: undefined };
    const files = [{ name: 'mysql-bin.000003', sizeBytes: 1_000 }];
    const messages = (['new-base', 'stop'] as const).map((onPurged) => {
      const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
      const tracker = new ReplicaTracker('a', 0);
      tracker.apply({ kind: 'durable', point, shippedBytes: 0 }, 1_000);
      const monitor = new LagMonitor([{ definition, tracker }], { headPollIntervalMs: 500, startedAtMs: 0, onPurged });
      monitor.observeHead({ head: { file: 'mysql-bin.000003', position: 1_000 }, files, expireLogsSeconds: 0, checkedAtMs: 1_000 });
      const r = monitor.report(1_000).replicas[0];
      expect(r?.state).toBe('gap');
      return r?.problems.find((p) => p.code === 'BINLOG_PURGED')?.message ?? '';
    });
    expect(messages[0]).toMatch(/the agent takes a new base backup/);
    // With "stop" a base taken by hand does not restart the chain: the message says what does.
    expect(messages[1]).toMatch(/set binlog\.onPurged to "new-base" and restart the agent/);
    expect(messages[1]).not.toContain('hotspare base');
  });

  it('primary.reachable: false when the primary does not answer, true when it answers with an error of its own (binlog off)', () => {
    const definition = { name: 'a', type: 'file', thresholds: { maxLagSeconds: 60, maxLagBytes: 64 * 1024 * 1024 } } as unknown as ReplicaDefinition;
    const monitor = new LagMonitor([{ definition, tracker: new ReplicaTracker('a', 0) }], { headPollIntervalMs: 500, startedAtMs: 0 });
    const files = [{ name: 'mysql-bin.000001', sizeBytes: 400 }];
    monitor.observeHead({ head: { file: 'mysql-bin.000001', position: 400 }, files, expireLogsSeconds: 0, checkedAtMs: 1_000 });
    expect(monitor.report(1_000).primary).toMatchObject({ reachable: true, error: null });
    // Restarted with --skip-log-bin: it answers every head check, with an error.
    monitor.headFailed({ code: 'BINLOG_DISABLED', message: 'head position: the primary does not write a binlog (SHOW MASTER STATUS returned nothing)', atMs: 60_000 });
    expect(monitor.report(60_000).primary).toMatchObject({ reachable: true, error: { code: 'BINLOG_DISABLED' } });
    // The answer itself grows old: no check has reported since (the poller stopped, a check hangs).
    expect(monitor.report(600_000).primary.reachable).toBe(false);
    // Gone: the connection fails.
    monitor.headFailed({ code: 'PRIMARY_UNREACHABLE', message: 'connect: cannot reach the primary at h:1 (ECONNREFUSED)', atMs: 61_000 });
    expect(monitor.report(61_000).primary).toMatchObject({ reachable: false, error: { code: 'PRIMARY_UNREACHABLE' } });
    monitor.headFailed({ code: 'INTERNAL', message: 'something unforeseen', atMs: 62_000 });
    expect(monitor.report(62_000).primary.reachable).toBe(false);
  });
});
