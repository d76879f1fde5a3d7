import { randomBytes } from 'node:crypto';
import { appendFile, cp, mkdir, mkdtemp, open, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_SPOOL_BLOCK_PIECES_MAX } from '../../src/config/defaults.js';
import { silentLogger } from '../../src/platform/logger.js';
import { decodeSegment, journalDir, SPOOL_FORMAT_VERSION, sourceMetaPath, type BlockRef, type JournalLine, type SourceMeta } from '../../src/spool/spool-format.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../src/standby/spool-verify.js';
import { captureLogger } from '../support/capture-logger.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';
import { archiveWithBlockInPieces, PIECES_TUNING, syncOnce, localSyncer } from '../support/spool-pass.js';

/**
 * Goal: an append ships only the appended bytes (issue 5: "an appended file ships only its new
 * bytes"), also when it extends a file's partial last block: an emoncms feed grows by 4 bytes
 * every 10 s, and re-shipping its last block cost up to 64 KiB per append. Such a block is
 * stored in pieces; restore, verify and compaction read them back exactly. Method: real
 * syncers over real folders; the bytes shipped from the syncer's counter (what
 * hotspare_files_bytes_shipped_total reports); the journal read as the archive holds it.
 */
const BLOCK = 64 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-pieces-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every journal line of source `feeds`, oldest first. */
async function journal(archive: string): Promise<JournalLine[]> {
  const folder = join(archive, journalDir('feeds'));
  const out: JournalLine[] = [];
  for (const name of (await readdir(folder)).sort()) out.push(...decodeSegment(await readFile(join(folder, name))).lines);
  return out;
}

/** Bytes in the source's packs: the data shipped (the shipped counter adds the journal's lines). */
async function packBytes(archive: string): Promise<number> {
  const folder = join(archive, 'files', 'feeds', 'packs');
  let total = 0;
  for (const name of await readdir(folder)) total += (await stat(join(folder, name))).size;
  return total;
}

/** The block `index` of `path` as the newest operation or checkpoint entry recording it gives it. */
async function lastRef(archive: string, path: string, index: number): Promise<BlockRef | undefined> {
  let ref: BlockRef | undefined;
  for (const line of await journal(archive)) {
    if (line.op === 'ent' && line.path === path && line.e.kind === 'file') ref = line.e.blocks[index];
    if (line.op === 'file' && line.path === path) {
      const set = line.set.find(([i]) => i === index);
      if (set !== undefined) ref = set.slice(1) as BlockRef;
    }
  }
  return ref;
}

async function restoredEqualsSource(archive: string, src: string, untilMs?: number, expected?: Awaited<ReturnType<typeof describeTree>>): Promise<void> {
  const restored = join(dir, `restored-${Math.random().toString(36).slice(2)}`);
  const results = await restoreSpool({ archiveDir: archive, filesRoot: restored, untilMs, logger: silentLogger() });
  expect(results).toMatchObject([{ name: 'feeds' }]);
  expect(treeDiff(expected ?? (await describeTree(src)), await describeTree(join(restored, 'feeds')))).toEqual([]);
}

describe('appends to a partial last block ship only the appended bytes', () => {
  it('a feed growing by 4 bytes ships 4 bytes per append, and its block whole once it has DEFAULT_SPOOL_BLOCK_PIECES_MAX pieces; restore, --until and verify read the pieces', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const feed = join(src, '1.dat');
    await writeFile(feed, randomBytes(60_000));
    // 6 bytes short of a block boundary: the next append fills the block and starts another.
    const cross = join(src, '2.dat');
    await writeFile(cross, randomBytes(BLOCK - 6));
    let atFifth: { t: number; tree: Awaited<ReturnType<typeof describeTree>> } | undefined;
    const syncer = localSyncer('feeds', src, archive);
    syncer.start();
    try {
      await syncer.syncNow();
      expect((JSON.parse(await readFile(join(archive, sourceMetaPath('feeds')), 'utf8')) as SourceMeta).format).toBe(SPOOL_FORMAT_VERSION);
      const appends = DEFAULT_SPOOL_BLOCK_PIECES_MAX + 8;
      const data: number[] = [];
      const journalBytes: number[] = [];
      for (let k = 1; k <= appends; k++) {
        await appendFile(feed, randomBytes(4));
        const before = { shipped: syncer.snapshot().bytesShippedTotal, packs: await packBytes(archive) };
        await syncer.syncNow();
        data.push((await packBytes(archive)) - before.packs);
        journalBytes.push(syncer.snapshot().bytesShippedTotal - before.shipped - data.at(-1)!);
        if (k === 5) {
          const op = (await journal(archive)).filter((l) => l.op === 'file' && l.path === '1.dat').at(-1) as { t: number };
          atFifth = { t: op.t, tree: await describeTree(src) };
        }
      }
      // Pieces: the block as first shipped, then one per append; at the limit it goes whole.
      const expected = Array.from({ length: appends }, (_, i) => ((i + 1) % DEFAULT_SPOOL_BLOCK_PIECES_MAX === 0 ? 60_000 + 4 * (i + 1) : 4));
      expect(data).toEqual(expected);
      // The rest of what each append costs is its journal line: the file's entry and the block's pieces.
      expect(Math.max(...journalBytes)).toBeLessThan(1024);
      const ref = (await lastRef(archive, '1.dat', 0)) as BlockRef;
      expect(ref).toHaveLength(4);
      expect(ref[3]).toHaveLength(appends % DEFAULT_SPOOL_BLOCK_PIECES_MAX);

      // Across a block boundary: the 6 bytes extend the old block, the 2 after it start a new one.
      await appendFile(cross, randomBytes(8));
      const before = await packBytes(archive);
      await syncer.syncNow();
      expect((await packBytes(archive)) - before).toBe(8);
      expect((await lastRef(archive, '2.dat', 0))?.[3]).toEqual([[expect.any(Number), expect.any(Number), 6]]);
    } finally {
      await syncer.stop();
    }
    await restoredEqualsSource(archive, src);
    await restoredEqualsSource(archive, src, atFifth?.t, atFifth?.tree);
    expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
  });

  it('compaction copies a block in pieces whole out of a mostly-dead pack; a damaged piece is found by verify and refused by restore', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    // The append extends kept's last block (in pack 1) with a piece in the next session's pack 2.
    await archiveWithBlockInPieces(src, archive);
    expect((await stat(join(archive, 'files', 'feeds', 'packs', '0000000002.pack'))).size).toBe(500);
    const pieced = (await lastRef(archive, 'kept', 3)) as BlockRef;
    expect(pieced).toEqual([expect.any(String), 1, expect.any(Number), [[2, expect.any(Number), 500]]]);

    // A byte of the piece damaged, in a copy: verify names the block's pieces, restore refuses the source.
    const damaged = join(dir, 'damaged');
    await cp(archive, damaged, { recursive: true });
    const [, , , [[, pieceOffset]]] = pieced as [string, number, number, [[number, number, number]]];
    const pack2 = await open(join(damaged, 'files', 'feeds', 'packs', '0000000002.pack'), 'r+');
    await pack2.write(Buffer.from([0xff ^ (await readFile(join(damaged, 'files', 'feeds', 'packs', '0000000002.pack')))[pieceOffset + 7]!]), 0, 1, pieceOffset + 7);
    await pack2.close();
    expect((await verifySpoolArchive(damaged, silentLogger())).flatMap((r) => r.problems).join('\n')).toMatch(/block in 2 pieces \(pack 1, offset \d+, 1000 bytes; pack 2, offset \d+, 500 bytes\) does not match its hash/);
    expect(await restoreSpool({ archiveDir: damaged, filesRoot: join(dir, 'from-damaged'), logger: silentLogger() })).toMatchObject([{ name: 'feeds', skipCode: 'SPOOL_DATA_DAMAGED' }]);

    // `dropped` gone, every pack under 90% live compacted at a new segment: pack 1 is.
    await rm(join(src, 'dropped'));
    const { logger, lines } = captureLogger();
    await syncOnce('feeds', src, archive, { logger, tuning: { ...PIECES_TUNING, segmentBytesMax: 1, packLiveRatioMin: 0.9 } });
    expect(lines().filter((l) => (l.level as number) >= 50)).toEqual([]);
    expect(lines().find((l) => l.msg === 'live spool blocks copied out of mostly-dead packs')).toMatchObject({ packs: [1], blocks: 4, bytes: 3 * BLOCK + 1500 });
    // The newest checkpoint holds the block whole, and nothing of kept in pack 1.
    const moved = (await lastRef(archive, 'kept', 3)) as BlockRef;
    expect(moved).toHaveLength(3);
    expect(moved[1]).toBeGreaterThan(2);
    await restoredEqualsSource(archive, src);
    expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
  });
});
