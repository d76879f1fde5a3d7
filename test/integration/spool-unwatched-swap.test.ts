import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { localSyncer } from '../support/spool-pass.js';

/**
 * Goal: a point inside a window nobody watched is not restored with a rename made after it. A
 * file renamed over another keeps its content's mtime, so its mtime does not date the rename:
 * two files swapped (a→t, b→a, t→b) after the point came back swapped, and the warning said
 * there was no rename. Method: a real syncer stopped and started around the swap (the window),
 * a real restore to a point before the swap.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-unwatched-swap-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('a rename over a file while nobody watched', () => {
  it('a swap after the point is left undone at the point, and named', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'a'), 'A\n');
    writeFileSync(join(src, 'b'), 'B\n');
    const archive = join(dir, 'archive');
    const pass = async (): Promise<void> => {
      const s = localSyncer('gw', src, archive);
      s.start();
      await s.syncNow();
      await s.stop();
    };
    await pass();
    // The agent is stopped: the point lies in the window, the swap after it.
    await sleep(300);
    const pointMs = systemClock.nowMs();
    await sleep(300);
    renameSync(join(src, 'a'), join(src, 't'));
    renameSync(join(src, 'b'), join(src, 'a'));
    renameSync(join(src, 't'), join(src, 'b'));
    await pass();

    const root = join(dir, 'restored');
    const [result] = await restoreSpool({ archiveDir: archive, filesRoot: root, untilMs: pointMs, logger: silentLogger() });
    expect(result?.uncertain).toBeDefined();
    expect(readFileSync(join(root, 'gw', 'a'), 'utf8')).toBe('A\n');
    expect(readFileSync(join(root, 'gw', 'b'), 'utf8')).toBe('B\n');
    expect(result?.uncertainWhy).toContain('2 deletes and renames could not be placed');
    expect(result?.uncertain?.unplacedNamed.sort()).toEqual(['replaced a by another file (renamed over it)', 'replaced b by another file (renamed over it)']);

    // After the window, the swap is there.
    await rm(root, { recursive: true });
    await restoreSpool({ archiveDir: archive, filesRoot: root, logger: silentLogger() });
    expect(readFileSync(join(root, 'gw', 'a'), 'utf8')).toBe('B\n');
  });
});
