import { describe, expect, it } from 'vitest';
import type { BaseBackupMetadata } from '../../../src/archive/base-catalog.js';
import { likelyBase } from '../../../src/standby/promotion-plan.js';

function base(id: string, file: string, position: number, finishedAt: string): BaseBackupMetadata {
  return {
    formatVersion: 1,
    id,
    method: 'physical-mariabackup',
    startedAt: finishedAt,
    finishedAt,
    binlog: { file, position },
    gtidBinlogPos: '',
    lockHeldMs: 0,
    server: { version: '10.11', serverId: 1, hostname: 'h' },
    tool: { name: 'hotspare', version: '0' },
    databases: [],
    tables: [],
    files: [],
  };
}

// Oldest first, as listBaseBackups gives them.
const bases = [base('a', 'b.000001', 400, '2026-11-22T10:00:00Z'), base('b', 'b.000002', 800, '2026-11-22T11:00:00Z')];

describe('likelyBase (what promote stages before the plan is known)', () => {
  it('the newest base for the end or a GTID', () => {
    expect(likelyBase(bases, { kind: 'end' })?.id).toBe('b');
    expect(likelyBase(bases, { kind: 'gtid', gtid: '0-1-5' })?.id).toBe('b');
  });
  it('the newest base at or before a position', () => {
    expect(likelyBase(bases, { kind: 'position', at: { file: 'b.000002', position: 800 } })?.id).toBe('b');
    expect(likelyBase(bases, { kind: 'position', at: { file: 'b.000002', position: 799 } })?.id).toBe('a');
    expect(likelyBase(bases, { kind: 'position', at: { file: 'b.000001', position: 399 } })).toBeUndefined();
  });
  it('the newest base finished at or before a time', () => {
    expect(likelyBase(bases, { kind: 'time', atMs: Date.parse('2026-11-22T10:30:00Z') })?.id).toBe('a');
    expect(likelyBase(bases, { kind: 'time', atMs: Date.parse('2026-11-22T09:00:00Z') })).toBeUndefined();
  });
});
