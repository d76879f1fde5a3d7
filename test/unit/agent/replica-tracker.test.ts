import { describe, expect, it } from 'vitest';
import { ReplicaTracker } from '../../../src/agent/replica-tracker.js';
import type { DurablePoint } from '../../../src/core/binlog-record.js';

const at = (file: string, position: number): DurablePoint => ({ file, position, boundaryFile: file, boundaryPosition: position, commitTimestampS: 1, gtid: undefined });

/** Goal: hotspare_binlog_bytes_shipped_total counts every byte this process made durable, the first batch included. */
describe('ReplicaTracker bytes shipped', () => {
  it('a new archive: from where the dump started, through a rotation', () => {
    const tracker = new ReplicaTracker('a', 0);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 4 } }, 1);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 1_000, atMs: 2 }, 2);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000001', 1_000), shippedBytes: 996 }, 3);
    expect(tracker.snapshot.binlogBytesShipped).toBe(996);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 1_500, atMs: 4 }, 4);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000002', position: 300, atMs: 5 }, 5);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000002', 300), shippedBytes: 1_792 }, 6);
    // The first file's tail (1000..1500) and the second file's events, 4..300 (its magic is the writer's).
    expect(tracker.snapshot.binlogBytesShipped).toBe(996 + 500 + 296);
  });

  it('a new archive whose first dump broke before anything was durable: from where the first dump started', () => {
    const tracker = new ReplicaTracker('a', 0);
    tracker.sessionWithoutResume();
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 4 } }, 1);
    tracker.apply({ kind: 'received', file: 'mysql-bin.000001', position: 700, atMs: 2 }, 2);
    tracker.apply({ kind: 'failed', state: 'disconnected', code: 'PRIMARY_UNREACHABLE', message: 'gone', hint: '', retryInMs: 200 }, 3);
    // The dump continues after what the first appended; the first fsync covers both.
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000001', position: 700 } }, 4);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000001', 1_000), shippedBytes: 996 }, 5);
    expect(tracker.snapshot.binlogBytesShipped).toBe(996);
  });

  it('an archive replaced by an empty one while the agent runs: counted from the new one\'s first dump', () => {
    const tracker = new ReplicaTracker('a', 0);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000009', 5_000), shippedBytes: 0 }, 1);
    tracker.sessionWithoutResume();
    expect(tracker.snapshot.durable).toBeUndefined();
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000009', position: 4 } }, 2);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000009', 5_100), shippedBytes: 5_096 }, 3);
    expect(tracker.snapshot.binlogBytesShipped).toBe(5_096);
  });

  it('an archive that already held binlog: only what came after its end', () => {
    const tracker = new ReplicaTracker('a', 0);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000003', 2_000), shippedBytes: 0 }, 1);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000003', position: 2_000 } }, 2);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000003', 2_600), shippedBytes: 600 }, 3);
    expect(tracker.snapshot.binlogBytesShipped).toBe(600);
  });

  it('a point saved by the last run counts nothing by itself; the archive\'s own resume point is where counting starts', () => {
    const tracker = new ReplicaTracker('a', 0);
    tracker.seedDurable(at('mysql-bin.000003', 1_000));
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000003', 2_000), shippedBytes: 0 }, 1);
    expect(tracker.snapshot.binlogBytesShipped).toBe(0);
    tracker.apply({ kind: 'connected', start: { file: 'mysql-bin.000003', position: 2_000 } }, 2);
    tracker.apply({ kind: 'durable', point: at('mysql-bin.000003', 2_100), shippedBytes: 100 }, 3);
    expect(tracker.snapshot.binlogBytesShipped).toBe(100);
  });
});
