import { closeSync, openSync, writeSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { localSyncer } from '../support/spool-pass.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-dc-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('spool double collect', () => {
  it('a file rewritten larger (O_TRUNC) while read is never archived as a prefix of its new version', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const path = join(src, 'state.json');
    const v1 = Buffer.from(`{"version":1,"pad":"${'a'.repeat(300)}"}\n`);
    await writeFile(path, v1);
    // Each version is written whole with O_TRUNC, as most programs save a file.
    const v2 = Buffer.from(`{"version":2,"pad":"${'b'.repeat(300)}"}\n`);
    const v3 = Buffer.from(`{"version":3,"pad":"${'c'.repeat(900)}"}\n`);
    const versions = [v1, v2, v3];
    let calls = 0;
    const s = localSyncer('dc', src, archive, {
      tuning: { racyWindowMs: 0 },
      beforeRead: () => {
        calls++;
        // Attempt 0 (on the scan's stat): the file is saved again, same size; attempt 1 (after
        // its fstat): saved again, larger.
        if (calls === 1) writeFileSync(path, v2);
        if (calls === 2) writeFileSync(path, v3);
      },
    });
    try {
      s.start();
      await s.syncNow();
      expect(calls).toBeGreaterThanOrEqual(2);
      await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'r1'), logger: silentLogger() });
      const copy = await readFile(join(dir, 'r1', 'dc', 'state.json'));
      // Whatever the archive holds must be one of the file's versions.
      expect(versions.some((v) => v.equals(copy)), `archived ${copy.length} bytes: ${copy.toString().slice(0, 40)}...`).toBe(true);
    } finally {
      await s.stop();
    }
  });

  it('a file taken on a second read is read again once the racy window has passed, however long that read took', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const path = join(src, 'data.db');
    const bytes = randomBytes(96 * 1024 * 1024);
    await writeFile(path, bytes);
    // Its own bytes written again: the times change, the content does not (the second read agrees).
    const rewriteSame = (): void => {
      const fd = openSync(path, 'r+');
      try {
        writeSync(fd, bytes, 0, 4096, 0);
      } finally {
        closeSync(fd);
      }
    };
    let calls = 0;
    const s = localSyncer('dc', src, archive, {
      // A window shorter than the two reads of this file take, as 1 s is for a file of gigabytes
      // or a slow disk: the write's times are older than it when the file is shipped.
      tuning: { racyWindowMs: 5 },
      beforeRead: () => {
        calls++;
        // Attempt 0 (the scan's stat) and attempt 1 (after its fstat): written to while read.
        if (calls <= 2) rewriteSame();
      },
    });
    try {
      s.start();
      await s.syncNow();
      expect(calls).toBe(2);
      // Where timestamps are coarse (a jiffy), a write just after the stat between the reads, to
      // bytes the second read had passed, leaves the recorded stat as it is: only a racy re-read
      // ships it. That read comes once the window has passed.
      const deadline = Date.now() + 5000;
      while (calls < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(calls).toBeGreaterThanOrEqual(3);
    } finally {
      await s.stop();
    }
  });
});
