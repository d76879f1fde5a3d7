import { appendFileSync, copyFileSync, readFileSync, truncateSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { localSyncer, restoredDiff } from '../support/spool-pass.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-rotate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const line = (n: number, width: number): string => `line ${String(n).padStart(6, '0')} ${'x'.repeat(width - 13)}\n`;

describe('an append-only file rotated by copytruncate between the scan and its open', () => {
  it('is never archived as a prefix its new content never was (a torn line)', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const log = join(src, 'app.log');
    // Old content: 50-byte lines.
    await writeFile(join(src, 'a.dat'), 'a\n');
    await writeFile(log, Array.from({ length: 5 }, (_, n) => line(n, 50)).join(''));
    /** Every size the file has had since the rotation (each append is one write). */
    const states: Buffer[] = [];
    let rotate = false;
    const s = localSyncer('rot', src, archive, {
      appendOnly: ['*.log'],
      // The pass reads a.dat before app.log (by name), both after its scan: app.log is rotated
      // while a.dat is read, after the scan took app.log's lstat and before app.log is opened.
      beforeRead: (path) => {
        if (path !== 'a.dat' || !rotate) return;
        rotate = false;
        // logrotate's copytruncate: the same inode, emptied, then the writer (O_APPEND) goes on
        // with 80-byte lines, past the 300 bytes the scan saw.
        copyFileSync(log, join(dir, 'app.log.1'));
        truncateSync(log, 0);
        for (let n = 0; n < 5; n++) {
          appendFileSync(log, line(100 + n, 80));
          states.push(readFileSync(log));
        }
      },
    });
    s.start();
    try {
      await s.syncNow();
      // One more line: the next pass's scan sees 300 bytes; the rotation follows its scan.
      await appendFile(log, line(5, 50));
      await appendFile(join(src, 'a.dat'), 'b\n');
      rotate = true;
      await s.syncNow();
      expect(rotate).toBe(false);
      await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'r1'), logger: silentLogger() });
      const copy = await readFile(join(dir, 'r1', 'rot', 'app.log'));
      // Whatever version is archived, it is one the file held: 300 bytes of old lines, or a
      // whole number of the new 80-byte lines. The bug archives the new content's first 300
      // bytes (3.75 lines), which the file never held.
      const old = Array.from({ length: 6 }, (_, n) => line(n, 50)).join('');
      const held = [Buffer.from(old), Buffer.alloc(0), ...states].some((b) => b.equals(copy));
      expect({ length: copy.length, held }).toEqual({ length: copy.length, held: true });
      // And once quiet, the archive catches up with the file.
      await s.syncNow();
      expect(await restoredDiff(archive, src, join(dir, 'r2'), 'rot')).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});

