import { describe, expect, it } from 'vitest';
import { LagMonitor } from '../../../src/agent/lag-monitor.js';
import { ReplicaTracker } from '../../../src/agent/replica-tracker.js';
import type { ReplicaDefinition } from '../../../src/config/schema.js';

/**
 * Goal: a replica whose archive has not yet said where it ends (a standby down since the agent
 * started) raises no LAG_* alarm from the guess that it holds nothing (the primary's whole
 * binlog); it is DISCONNECTED once its grace has passed. Method: the monitor fed by hand.
 */
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
});
