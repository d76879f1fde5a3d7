import { closeSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { localSyncer } from '../support/spool-pass.js';

/**
 * Goal: a sparse file (a monitoring system's preallocated data file) comes back sparse: the
 * same bytes, its holes not written out, so a restore does not fill the target volume with
 * zeros the source never stored. Method: a real sparse file, a real syncer and restore, the
 * restored file's allocated blocks (st_blocks) compared with its size.
 */
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-sparse-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

describe('sparse spool files', () => {
  it('a file with holes is restored with the same bytes and holes where whole blocks were zeros', async () => {
    const src = join(dir, 'src');
    mkdirSync(src);
    const feed = join(src, 'feed.dat');
    const fd = openSync(feed, 'w');
    writeSync(fd, 'head');
    writeSync(fd, 'middle', 16 * MiB);
    writeSync(fd, 'tail', 32 * MiB);
    closeSync(fd);
    // The source itself holds a few KiB (where the file system does holes; else nothing to test).
    expect(statSync(feed).blocks * 512).toBeLessThan(MiB);

    const archive = join(dir, 'archive');
    const s = localSyncer('feeds', src, archive);
    s.start();
    await s.syncNow();
    await s.stop();
    const root = join(dir, 'restored');
    const [result] = await restoreSpool({ archiveDir: archive, filesRoot: root, logger: silentLogger() });
    expect(result?.skipCode).toBeUndefined();
    const restored = join(root, 'feeds', 'feed.dat');
    expect(readFileSync(restored).equals(readFileSync(feed))).toBe(true);
    // Three 64 KiB blocks hold data; before, all 32 MiB were written as zeros.
    expect(statSync(restored).blocks * 512).toBeLessThan(MiB);
  });
});
