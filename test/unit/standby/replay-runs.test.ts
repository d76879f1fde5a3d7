import { describe, expect, it } from 'vitest';
import { binlogCommand, replayRuns, type ReplayRange } from '../../../src/standby/binlog-replay.js';

const range = (file: string, start: number, stop: number, extra: Partial<ReplayRange> = {}): ReplayRange => ({ file, start, stop, toFileEnd: true, cutAtStop: false, ...extra });

describe('replay runs', () => {
  it('reads files to their end in one mariadb-binlog run, from the first range start to the last range stop', () => {
    const ranges = [range('mysql-bin.000001', 812, 5000), range('mysql-bin.000002', 4, 7000), range('mysql-bin.000003', 4, 300, { toFileEnd: false })];
    const runs = replayRuns(ranges);
    expect(runs).toEqual([ranges]);
    expect(binlogCommand('/a', ranges)).toEqual([
      'mariadb-binlog', '--start-position=812', '--stop-position=300',
      '/a/binlog/mysql-bin.000001', '/a/binlog/mysql-bin.000002', '/a/binlog/mysql-bin.000003',
    ]);
  });

  it('ends a run at a file it stops inside, and runs a range cut at its stop alone, on stdin', () => {
    const crashed = range('mysql-bin.000002', 4, 6000, { toFileEnd: false, cutAtStop: true });
    const ranges = [range('mysql-bin.000001', 812, 5000), crashed, range('mysql-bin.000003', 4, 900), range('mysql-bin.000004', 4, 120, { toFileEnd: false })];
    const runs = replayRuns(ranges);
    expect(runs).toEqual([[ranges[0]], [crashed], [ranges[2], ranges[3]]]);
    expect(binlogCommand('/a', [crashed])).toEqual(['mariadb-binlog', '--start-position=4', '--stop-position=6000', '-']);
  });
});
