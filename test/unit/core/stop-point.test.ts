import { describe, expect, it } from 'vitest';
import { gapRestart } from '../../../src/standby/archive-scan.js';
import { StopPointResolver, refuseBeforeArchiveStart } from '../../../src/standby/stop-point.js';

const commits = [
  { file: 'b.000001', position: 500, timestampS: 100, gtid: '0-1-1' },
  { file: 'b.000001', position: 900, timestampS: 101, gtid: '0-1-2' },
  { file: 'b.000002', position: 300, timestampS: 103, gtid: '0-1-3' },
];

function resolve(resolver: StopPointResolver): StopPointResolver {
  for (const c of commits) resolver.observe(c);
  return resolver;
}

describe('StopPointResolver', () => {
  it('a time stops after the last commit at or before it', () => {
    const r = resolve(new StopPointResolver({ kind: 'time', atMs: 102_999 }));
    expect(r.last?.gtid).toBe('0-1-2');
    expect(r.next?.gtid).toBe('0-1-3');
  });
  it('a position stops after the last commit ending at or before it', () => {
    const r = resolve(new StopPointResolver({ kind: 'position', at: { file: 'b.000002', position: 299 } }));
    expect(r.last?.position).toBe(900);
    expect(resolve(new StopPointResolver({ kind: 'position', at: { file: 'b.000001', position: 900 } })).last?.position).toBe(900);
  });
  it('a GTID stops right after that transaction, and says when it is not there', () => {
    const r = resolve(new StopPointResolver({ kind: 'gtid', gtid: '0-1-2' }));
    expect(r.last?.gtid).toBe('0-1-2');
    expect(r.reached).toBe(true);
    expect(resolve(new StopPointResolver({ kind: 'gtid', gtid: '0-1-9' })).reached).toBe(false);
  });
  it('the end takes the last commit', () => {
    expect(resolve(new StopPointResolver({ kind: 'end' })).last?.gtid).toBe('0-1-3');
  });
});

describe('StopPointResolver across a recorded gap', () => {
  const gap = { after: { file: 'b.000002', position: 300 }, resumeAt: { file: 'b.000005', position: 4 }, base: 'B2', primaryOldest: 'b.000005', recordedAt: '', reason: '' };
  const marker = { file: 'b.000005', position: 4, timestampS: 200, gtid: undefined, chainRestart: gapRestart(gap) };
  const later = { file: 'b.000005', position: 700, timestampS: 201, gtid: '0-1-9' };
  const run = (r: StopPointResolver): StopPointResolver => {
    for (const c of [...commits, marker, later]) r.observe(c);
    return r;
  };

  it('refuses a target before the gap and one inside it', () => {
    expect(() => run(new StopPointResolver({ kind: 'time', atMs: 101_500 }))).toThrow(/lies before the binlog gap recorded between b\.000002:300 and b\.000005:4/);
    expect(() => run(new StopPointResolver({ kind: 'gtid', gtid: '0-1-2' }))).toThrow(/lies before the binlog gap/);
    expect(() => run(new StopPointResolver({ kind: 'time', atMs: 150_000 }))).toThrow(/falls inside the binlog gap/);
    expect(() => run(new StopPointResolver({ kind: 'position', at: { file: 'b.000004', position: 100 } }))).toThrow(/falls inside the binlog gap/);
  });

  it('after the gap only the new chain counts: the end, or a point past the restart', () => {
    expect(run(new StopPointResolver({ kind: 'end' })).last).toEqual(later);
    const atRestart = run(new StopPointResolver({ kind: 'time', atMs: 200_500 }));
    expect(atRestart.last).toBeUndefined();
    expect(atRestart.next).toEqual(later);
  });
});

describe('StopPointResolver across damage a later base passes over', () => {
  const restart = { resumeAt: { file: 'b.000003', position: 4 }, base: 'B2', after: 'the damage at b.000002:120 (corrupt: CRC32 mismatch)', kind: 'damage' as const };
  const marker = { file: 'b.000003', position: 4, timestampS: 200, gtid: undefined, chainRestart: restart };
  const later = { file: 'b.000003', position: 700, timestampS: 201, gtid: '0-1-9' };
  const run = (r: StopPointResolver): StopPointResolver => {
    for (const c of [...commits.slice(0, 2), marker, later]) r.observe(c);
    return r;
  };

  it('refuses a point before the restart, naming the damage and the base; the end is the new chain\'s', () => {
    expect(() => run(new StopPointResolver({ kind: 'time', atMs: 100_500 }))).toThrow(/lies before the damage at b\.000002:120/);
    expect(() => run(new StopPointResolver({ kind: 'time', atMs: 150_000 }))).toThrow(/falls inside the damage at b\.000002:120 \(corrupt: CRC32 mismatch\), before the chain restarts/);
    try {
      run(new StopPointResolver({ kind: 'time', atMs: 150_000 }));
    } catch (err) {
      expect((err as { hint: string }).hint).toContain('restarts at b.000003:4 (base B2)');
      expect((err as { hint: string }).hint).toContain('a point before the damage is reached with --until-position at or before it');
    }
    expect(run(new StopPointResolver({ kind: 'end' })).last).toEqual(later);
  });
});

describe('a target before the archive begins', () => {
  // The archive's first file began at 90 s; its first commit is at 100 s.
  const first = { name: 'b.000001', firstEventS: 90 };
  const check = (target: ConstructorParameters<typeof StopPointResolver>[0]): void => {
    refuseBeforeArchiveStart(target, resolve(new StopPointResolver(target)).last, first);
  };

  it('is refused: the commits between it and the first archived file are unknown', () => {
    expect(() => check({ kind: 'time', atMs: 89_999 })).toThrow(/lies before the archive's first binlog file b\.000001, begun 1970-01-01T00:01:30\.000Z/);
    expect(() => check({ kind: 'position', at: { file: 'b.000000', position: 900 } })).toThrow(/lies before the archive's first binlog file/);
  });

  it('is accepted from the moment the first file began, before its first commit too', () => {
    expect(() => check({ kind: 'time', atMs: 90_000 })).not.toThrow();
    expect(() => check({ kind: 'time', atMs: 99_000 })).not.toThrow();
    expect(() => check({ kind: 'position', at: { file: 'b.000001', position: 4 } })).not.toThrow();
    expect(() => check({ kind: 'end' })).not.toThrow();
  });
});
