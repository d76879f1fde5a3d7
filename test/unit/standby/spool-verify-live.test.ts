import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { journalPath, packPath, sourceMetaPath, type SourceMeta } from '../../../src/spool/spool-format.js';
import { verifySpoolSource } from '../../../src/standby/spool-verify.js';
import { syncOnce } from '../../support/spool-pass.js';

/**
 * Goal: `hotspare verify` run beside a live agent reports no damage that retention made while
 * it read. Method: a real syncer writes three segments (the first two alone refer to pack 1);
 * verify reads the journal, then, as the agent's retention would, those and pack 1 are removed.
 */
const BLOCK = 64 * 1024;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-verify-live-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

// A new segment after every pass with a change; pack 1 holds only what the first pass wrote.
const pass = (src: string, archive: string): Promise<number> => syncOnce('s', src, archive, { tuning: { segmentBytesMax: 1, racyWindowMs: 0 } });

describe('spool verify beside a running agent', () => {
  it('a pack that retention removed after verify read the journal is no damage; a pack missing while a segment refers to it is', async () => {
    const src = join(dir, 'src');
    const built = join(dir, 'built');
    await mkdir(src);
    await writeFile(join(src, 'old'), randomBytes(3 * BLOCK));
    await pass(src, built);
    await rm(join(src, 'old'));
    await writeFile(join(src, 'new'), randomBytes(2 * BLOCK));
    await pass(src, built);
    // Segment 1 (the first pass), 2 (its checkpoint holds `old`), 3 (`new` alone, in pack 2).
    expect(await readdir(join(built, 'files', 's', 'journal'))).toEqual(['0000000001.jnl', '0000000002.jnl', '0000000003.jnl']);
    const meta = JSON.parse(await readFile(join(built, sourceMetaPath('s')), 'utf8')) as SourceMeta;
    /** verify on a copy of the archive, with `meanwhile` done to it once the journal is read. */
    const verifyWhile = async (name: string, meanwhile: (archive: string) => Promise<void>): Promise<string[]> => {
      const archive = join(dir, name);
      await cp(built, archive, { recursive: true });
      const result = await verifySpoolSource(archive, meta, silentLogger(), { afterJournalRead: () => meanwhile(archive) });
      expect(result.segments).toBe(3);
      return result.problems;
    };

    // What retention does: the segments before the newest kept checkpoint, then the packs only they refer to.
    expect(await verifyWhile('retention', async (archive) => {
      await rm(join(archive, journalPath('s', 1)));
      await rm(join(archive, journalPath('s', 2)));
      await rm(join(archive, packPath('s', 1)));
    })).toEqual([]);
    // The pack gone while segments that refer to it are kept: damage.
    expect((await verifyWhile('pack-only', async (archive) => {
      await rm(join(archive, packPath('s', 1)));
    })).join('\n')).toMatch(/pack 1 is missing/);
    // No segment left at all is no retention (it never removes the newest): damage too.
    expect((await verifyWhile('journal-gone', async (archive) => {
      await rm(join(archive, 'files', 's', 'journal'), { recursive: true });
      await rm(join(archive, packPath('s', 1)));
    })).join('\n')).toMatch(/pack 1 is missing/);
  });
});
