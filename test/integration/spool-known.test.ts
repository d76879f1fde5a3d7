import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { localSyncer } from '../support/spool-pass.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-known-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function packBytes(archive: string, name: string): Promise<number> {
  const packs = join(archive, 'files', name, 'packs');
  let total = 0;
  for (const f of await readdir(packs)) total += (await stat(join(packs, f))).size;
  return total;
}

describe('spool block index', () => {
  it('follows the tree under churn: blocks of deleted files leave it once they outnumber the live ones, and live blocks are still reused', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const keep = randomBytes(4096);
    await writeFile(join(src, 'keep'), keep);
    // No watcher (passes come from syncNow alone); a small allowance of dead entries.
    const s = localSyncer('q', src, archive, { tuning: { knownDeadMax: 8 } });
    s.start();
    try {
      await s.syncNow();
      const sizes: number[] = [];
      // A queue: ten unique messages arrive and are consumed, round after round.
      for (let round = 0; round < 10; round++) {
        for (let i = 0; i < 10; i++) await writeFile(join(src, `m${round}-${i}`), randomBytes(1024));
        await s.syncNow();
        for (let i = 0; i < 10; i++) await rm(join(src, `m${round}-${i}`));
        await s.syncNow();
        sizes.push(s.knownBlocks);
      }
      // Without pruning it would hold all 101 blocks ever written; with it, at most the live
      // ones (1 to 11) twice over plus the allowance.
      expect(Math.max(...sizes)).toBeLessThanOrEqual(2 * 11 + 8);
      // The live file's block is still in the index: a copy of it is referenced, not written again.
      const before = await packBytes(archive, 'q');
      await writeFile(join(src, 'copy'), keep);
      await s.syncNow();
      expect(await packBytes(archive, 'q')).toBe(before);
    } finally {
      await s.stop();
    }
  });
});
