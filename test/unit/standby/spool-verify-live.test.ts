import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../../src/archive/archive-files.js';
import { spoolSourceSchema } from '../../../src/config/schema.js';
import { systemClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { SpoolSyncer } from '../../../src/spool/spool-syncer.js';
import { journalPath, packPath, sourceMetaPath, type SourceMeta } from '../../../src/spool/spool-format.js';
import { verifySpoolSource } from '../../../src/standby/spool-verify.js';

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

async function pass(src: string, archive: string): Promise<void> {
  const syncer = new SpoolSyncer({
    source: spoolSourceSchema.parse({ name: 's', path: src }),
    files: new LocalArchiveFiles(archive),
    logger: silentLogger(),
    clock: systemClock,
    // A new segment after every pass with a change; pack 1 holds only what the first pass wrote.
    tuning: { watch: false, segmentBytesMax: 1, racyWindowMs: 0 },
  });
  syncer.start();
  try {
    await syncer.syncNow();
  } finally {
    await syncer.stop();
  }
}

describe('spool verify beside a running agent', () => {
  it('a pack that retention removed after verify read the journal is no damage; a pack missing while its segment is kept is', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'old'), randomBytes(3 * BLOCK));
    await pass(src, archive);
    await rm(join(src, 'old'));
    await writeFile(join(src, 'new'), randomBytes(2 * BLOCK));
    await pass(src, archive);
    // Segment 1 (the first pass), 2 (its checkpoint holds `old`), 3 (`new` alone, in pack 2).
    expect(await readdir(join(archive, 'files', 's', 'journal'))).toEqual(['0000000001.jnl', '0000000002.jnl', '0000000003.jnl']);
    const meta = JSON.parse(await readFile(join(archive, sourceMetaPath('s')), 'utf8')) as SourceMeta;
    const retention = async (): Promise<void> => {
      await rm(join(archive, journalPath('s', 1)));
      await rm(join(archive, journalPath('s', 2)));
      await rm(join(archive, packPath('s', 1)));
    };

    const live = await verifySpoolSource(archive, meta, silentLogger(), { afterJournalRead: retention });
    expect(live.segments).toBe(3);
    expect(live.problems).toEqual([]);

    // The same pack gone while a segment referring to it is kept: damage, reported.
    await pass(src, archive);
    const packs = (await readdir(join(archive, 'files', 's', 'packs'))).sort();
    await rm(join(archive, 'files', 's', 'packs', packs[0] as string));
    const damaged = await verifySpoolSource(archive, meta, silentLogger());
    expect(damaged.problems.join('\n')).toMatch(/pack \d+ is missing/);
  });
});
