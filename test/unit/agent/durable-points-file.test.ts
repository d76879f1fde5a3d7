import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VirtualTimeScheduler } from 'rxjs';
import { afterEach, describe, expect, it } from 'vitest';
import { DurablePointsFile } from '../../../src/agent/durable-points-file.js';
import { silentLogger } from '../../../src/platform/logger.js';

// Goal: a saved durable point comes back only for the same replica of the same primary and
// archive; a failover, a RESET MASTER's new server or a replica moved to another standby gets none.
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('DurablePointsFile', () => {
  it('gives a point back to its own replica, primary and archive only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotspare-points-'));
    dirs.push(dir);
    const owner = { primary: '1@db-a', target: '/srv/archive-a' };
    const point = { file: 'mysql-bin.000007', position: 1234, boundaryFile: 'mysql-bin.000007', boundaryPosition: 1234, commitTimestampS: 5, gtid: '0-1-9' };
    const file = new DurablePointsFile(dir, 1_000, silentLogger(), new VirtualTimeScheduler());
    file.update('standby', owner, point, 10_000);
    // The "caught up by" time moves with an idle primary's heartbeats: kept once it moved a step.
    file.updateCaughtUp('standby', 30_000, 60_000);
    file.updateCaughtUp('standby', 75_000, 60_000);
    await file.close();
    expect(DurablePointsFile.load(dir, 'standby', owner, silentLogger())).toEqual({ point, caughtUpAtMs: 75_000 });
    expect(DurablePointsFile.load(dir, 'other', owner, silentLogger())).toBeUndefined();
    expect(DurablePointsFile.load(dir, 'standby', { ...owner, primary: '2@db-b' }, silentLogger())).toBeUndefined();
    expect(DurablePointsFile.load(dir, 'standby', { ...owner, target: 'standby-b:7654' }, silentLogger())).toBeUndefined();
  });
});
