import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SpoolTuning } from '../../src/spool/spool-tuning.js';
import { decodeSegment, encodeLineText, journalDir, type JournalLine } from '../../src/spool/spool-format.js';
import { captureLogger } from '../support/capture-logger.js';
import { archiveWithBlockInPieces, localSyncer, PIECES_TUNING, syncOnce } from '../support/spool-pass.js';

/**
 * Goal: the compactor's new code for blocks in pieces reads packs and builds keys the old code
 * never did. An archive with damage the old agent shipped on through (a missing pack, a journal
 * line of another tool's making) must not stop the agent's passes for good.
 */
const BLOCK = 64 * 1024;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-pieces-damage-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One full pass that must commit within `ms`; resolves with what was logged at error level. */
async function passWithin(src: string, archive: string, tuning: Partial<SpoolTuning>, ms = 8000): Promise<{ done: boolean; errors: Array<Record<string, unknown>> }> {
  const { logger, lines } = captureLogger();
  const s = localSyncer('feeds', src, archive, { logger, tuning: { retryDelayMsMin: 50, retryDelayMsMax: 100, ...tuning } });
  s.start();
  let done = false;
  try {
    done = await Promise.race([s.syncNow().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);
  } finally {
    await s.stop().catch(() => undefined);
  }
  return { done, errors: lines().filter((l) => (l.level as number) >= 50) };
}

describe('damage the agent shipped on through before blocks in pieces', () => {
  it('a pack missing under a block in pieces: compaction leaves the block, the pass commits (not a failure at every pass)', { timeout: 30_000 }, async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    // kept's last block: head in pack 1, a 500-byte piece in pack 2.
    await archiveWithBlockInPieces(src, archive);
    // Damage: pack 2 lost. (Before blocks in pieces, an agent went on over such an archive: verify names the pack.)
    await rm(join(archive, 'files', 'feeds', 'packs', '0000000002.pack'));
    // pack 1 is now mostly dead, and compaction is due at this pass.
    await rm(join(src, 'dropped'));
    const { done, errors } = await passWithin(src, archive, { ...PIECES_TUNING, segmentBytesMax: 1, packLiveRatioMin: 0.9 });
    expect(errors.map((e) => e.msg)).not.toContainEqual(expect.stringContaining('spool sync failed'));
    expect(done).toBe(true);
  });

  it('a journal line whose block tail is not a list (another tool, or damage the CRC does not see): compaction does not throw at every pass', { timeout: 30_000 }, async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'dropped'), randomBytes(12 * BLOCK));
    await writeFile(join(src, 'kept'), randomBytes(2 * BLOCK));
    await syncOnce('feeds', src, archive, { tuning: PIECES_TUNING });
    await writeFile(join(src, 'weird'), randomBytes(100));
    await syncOnce('feeds', src, archive, { tuning: PIECES_TUNING });
    // The newest segment's line for `weird` given a tail that is no list (CRC made to match).
    const folder = join(archive, journalDir('feeds'));
    const name = (await readdir(folder)).sort().at(-1) as string;
    const lines = decodeSegment(await readFile(join(folder, name))).lines.map((l): JournalLine => {
      if (l.op !== 'file' || l.path !== 'weird') return l;
      const [i, h, p, o] = l.set[0] as [number, string, number, number];
      return { ...l, set: [[i, h, p, o, 'x' as unknown as [number, number, number][]]] };
    });
    await writeFile(join(folder, name), lines.map(encodeLineText).join(''));
    await rm(join(src, 'dropped'));
    const { done, errors } = await passWithin(src, archive, { ...PIECES_TUNING, segmentBytesMax: 1, packLiveRatioMin: 0.9 });
    expect(errors.map((e) => e.msg)).not.toContainEqual(expect.stringContaining('spool sync failed'));
    expect(done).toBe(true);
  });
});
