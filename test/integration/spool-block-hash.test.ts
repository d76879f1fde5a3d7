import { randomBytes } from 'node:crypto';
import { cp, mkdir, mkdtemp, open, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.js';
import { blockHashOf, blockHasher, blockMatches, defaultBlockHash, simulateBlake3Missing } from '../../src/spool/block-hash.js';
import type { SpoolTuning } from '../../src/spool/spool-tuning.js';
import { decodeSegment, journalDir, SPOOL_FORMAT_VERSION, sourceMetaPath, type SourceMeta } from '../../src/spool/spool-format.js';
import { checkBlockIds, restoreSpool, spoolTreeAt } from '../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../src/standby/spool-verify.js';
import { captureLogger } from '../support/capture-logger.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';
import { syncOnce, localSyncer } from '../support/spool-pass.js';
import { waitFor } from '../support/wait.js';

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-blockhash-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One full pass over `src` into `archive` (the source is 'feeds'); the bytes it shipped. */
const pass = (src: string, archive: string, logger = silentLogger(), tuning: Partial<SpoolTuning> = {}): Promise<number> => syncOnce('feeds', src, archive, { logger, tuning });

/** Every block id the source's journal records, in order. */
async function journalIds(archive: string): Promise<string[]> {
  const folder = join(archive, journalDir('feeds'));
  const ids: string[] = [];
  for (const name of (await readdir(folder)).sort()) {
    for (const line of decodeSegment(await readFile(join(folder, name))).lines) {
      if (line.op === 'file') for (const [, id] of line.set) ids.push(id);
    }
  }
  return ids;
}

const readMeta = async (archive: string): Promise<SourceMeta> => JSON.parse(await readFile(join(archive, sourceMetaPath('feeds')), 'utf8')) as SourceMeta;

/** Rewrites one 100-byte run in each of `blocks` blocks of `path`. */
async function rewriteBlocks(path: string, blocks: number[]): Promise<void> {
  const h = await open(path, 'r+');
  for (const b of blocks) await h.write(randomBytes(100), 0, 100, b * BLOCK + 11);
  await h.close();
}

async function restoredEqualsSource(archive: string, src: string): Promise<void> {
  const restored = join(dir, `restored-${Math.random().toString(36).slice(2)}`);
  await restoreSpool({ archiveDir: archive, filesRoot: restored, logger: silentLogger() });
  expect(treeDiff(await describeTree(src), await describeTree(join(restored, 'feeds')))).toEqual([]);
  expect((await verifySpoolArchive(archive, silentLogger())).flatMap((r) => r.problems)).toEqual([]);
}

describe('spool block ids', () => {
  it('name the function that made them, and match only the bytes they were made of', () => {
    // The published test vectors of both functions ("abc"), cut to 128 bits.
    const abc = Buffer.from('abc');
    expect(blockHasher('blake3')(abc)).toBe(`b3:${Buffer.from('6437b3ac38465133ffb63b75273a8db5', 'hex').toString('base64url')}`);
    expect(blockHasher('sha256')(abc)).toBe(Buffer.from('ba7816bf8f01cfea414140de5dae2223', 'hex').toString('base64url'));
    const block = randomBytes(BLOCK);
    for (const name of ['blake3', 'sha256'] as const) {
      const id = blockHasher(name)(block);
      expect(blockHashOf(id)).toBe(name);
      expect(blockMatches(block, id)).toBe(true);
      const damaged = Buffer.from(block);
      damaged.writeUInt8(damaged.readUInt8(BLOCK - 1) ^ 1, BLOCK - 1);
      expect(blockMatches(damaged, id)).toBe(false);
    }
    expect(blockHashOf('b3:short')).toBeUndefined();
    expect(blockMatches(block, 'not an id at all')).toBe(false);
    // This package installs the native module for this platform.
    expect(defaultBlockHash()).toBe('blake3');
  });

  it('a new source names its blocks by BLAKE3; restore and verify check them', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'feed.dat'), randomBytes(4 * MiB));
    await writeFile(join(src, 'small'), 'a small file\n');
    await pass(src, archive);
    expect((await readMeta(archive)).blockHash).toBe('blake3');
    const ids = await journalIds(archive);
    expect(ids.length).toBe(4 * MiB / BLOCK + 1);
    expect(ids.every((id) => blockHashOf(id) === 'blake3')).toBe(true);
    await restoredEqualsSource(archive, src);

    // A damaged byte in a pack is found by the same ids.
    const packs = join(archive, 'files', 'feeds', 'packs');
    const pack = join(packs, (await readdir(packs)).sort()[0] as string);
    const bytes = await readFile(pack);
    bytes.writeUInt8(bytes.readUInt8(1000) ^ 0xff, 1000);
    await writeFile(pack, bytes);
    expect((await verifySpoolArchive(archive, silentLogger())).flatMap((r) => r.problems).join('\n')).toMatch(/does not match its hash/);
  });

  it('an archive from before BLAKE3 goes on with SHA-256: a rewrite ships only the changed blocks', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const feed = join(src, 'feed.dat');
    await writeFile(feed, randomBytes(4 * MiB));
    // source.json as hotspare wrote it before the hash was recorded (no blockHash field).
    const before: Omit<SourceMeta, 'blockHash'> = { format: 2, name: 'feeds', path: src, exclude: [], blockBytes: BLOCK, retentionSeconds: 7 * 86400, hooks: [] };
    await mkdir(join(archive, 'files', 'feeds'), { recursive: true });
    await writeFile(join(archive, sourceMetaPath('feeds')), JSON.stringify(before));
    const initial = await pass(src, archive);
    expect(initial).toBeGreaterThanOrEqual(4 * MiB);
    expect((await readMeta(archive)).blockHash).toBe('sha256');

    await rewriteBlocks(feed, [3, 40]);
    const rewritten = await pass(src, archive);
    // Two blocks (and a journal record), not the file: the new ids are compared with SHA-256 ids of the same kind.
    expect(rewritten).toBeGreaterThanOrEqual(2 * BLOCK);
    expect(rewritten).toBeLessThan(3 * BLOCK);
    expect((await journalIds(archive)).every((id) => blockHashOf(id) === 'sha256')).toBe(true);
    await restoredEqualsSource(archive, src);
  });

  it('a history with ids of both kinds restores and verifies', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const feed = join(src, 'feed.dat');
    await writeFile(feed, randomBytes(2 * MiB));
    await pass(src, archive);
    // As an agent where BLAKE3 does not load goes on: new blocks named by SHA-256.
    const meta = await readMeta(archive);
    await writeFile(join(archive, sourceMetaPath('feeds')), JSON.stringify({ ...meta, blockHash: 'sha256' }));
    await rewriteBlocks(feed, [5]);
    await writeFile(join(src, 'new'), randomBytes(3 * BLOCK));
    await pass(src, archive);
    const kinds = new Set((await journalIds(archive)).map(blockHashOf));
    expect(kinds).toEqual(new Set(['blake3', 'sha256']));
    await restoredEqualsSource(archive, src);
  });

  it('an agent leaves alone a source written by a newer hotspare (a later spool format)', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'a'), 'a');
    const newer = JSON.stringify({ format: SPOOL_FORMAT_VERSION + 1, name: 'feeds', path: src, exclude: [], blockBytes: BLOCK, retentionSeconds: 86400, hooks: [] });
    await mkdir(join(archive, 'files', 'feeds'), { recursive: true });
    await writeFile(join(archive, sourceMetaPath('feeds')), newer);
    const { logger, lines } = captureLogger();
    const syncer = localSyncer('feeds', src, archive, { logger });
    syncer.start();
    try {
      const refused = await waitFor('the refusal', () => lines().find((l) => l.code === 'SPOOL_FORMAT_NEWER'));
      expect(refused.msg).toMatch(/newer hotspare/);
    } finally {
      await syncer.stop();
    }
    expect(await readFile(join(archive, sourceMetaPath('feeds')), 'utf8')).toBe(newer);
    expect(await readdir(join(archive, 'files', 'feeds'))).toEqual(['source.json']);
  });

  it('where BLAKE3 does not load: the agent goes on with SHA-256, compaction leaves BLAKE3 blocks in place, verify says what it could not check, restore changes nothing', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'kept'), randomBytes(4 * BLOCK));
    await writeFile(join(src, 'dropped'), randomBytes(12 * BLOCK));
    // Packs of 16 blocks: the first pass fills pack 1, and the next writes to pack 2. No racy
    // window: `kept`, written just before the first pass, is not read again by the second.
    const tuning = { packBytesMax: 16 * BLOCK, racyWindowMs: 0 };
    await pass(src, archive, silentLogger(), tuning);
    const back = simulateBlake3Missing();
    try {
      // A new segment after every pass, and every pack under 90% live is compacted: the
      // BLAKE3-named blocks of `kept` sit in a pack that is now mostly dead.
      await rm(join(src, 'dropped'));
      await writeFile(join(src, 'new'), randomBytes(2 * BLOCK));
      const { logger, lines } = captureLogger();
      await pass(src, archive, logger, { ...tuning, segmentBytesMax: 1, packLiveRatioMin: 0.9 });
      expect(lines().filter((l) => (l.level as number) >= 50)).toEqual([]);
      expect(lines().filter((l) => l.code === 'BLOCK_HASH_UNAVAILABLE').map((l) => l.msg)).toEqual([
        expect.stringContaining('new blocks are named by SHA-256'),
        expect.stringContaining('left in their packs'),
      ]);
      expect((await readMeta(archive)).blockHash).toBe('sha256');
      expect(new Set((await journalIds(archive)).map(blockHashOf))).toEqual(new Set(['blake3', 'sha256']));

      // Not damage, and not checked either: every BLAKE3 block the kept history refers to
      // (`kept` and `dropped`, segment 1) is counted as such.
      expect(await verifySpoolArchive(archive, silentLogger())).toMatchObject([{ source: 'feeds', problems: [], unchecked: 16 }]);

      const restored = join(dir, 'restored');
      await mkdir(join(restored, 'feeds'), { recursive: true });
      await writeFile(join(restored, 'feeds', 'mine'), 'the target before');
      const results = await restoreSpool({ archiveDir: archive, filesRoot: restored, logger: silentLogger() });
      expect(results).toMatchObject([{ name: 'feeds', skipCode: 'BLOCK_HASH_UNAVAILABLE' }]);
      expect(await readdir(join(restored, 'feeds'))).toEqual(['mine']);
      // Promote's plan checks the tree's ids the same way, before the database changes (promote-files.test.ts).
      const { tree } = await spoolTreeAt(archive, await readMeta(archive), undefined, silentLogger());
      expect(() => checkBlockIds(tree, 'feeds')).toThrow(expect.objectContaining({ code: 'BLOCK_HASH_UNAVAILABLE' }));

      // A pack of BLAKE3 blocks gone is reported as missing, not only as not checked.
      const copy = join(dir, 'copy');
      await cp(archive, copy, { recursive: true });
      await rm(join(copy, 'files', 'feeds', 'packs', '0000000001.pack'));
      expect((await verifySpoolArchive(copy, silentLogger())).flatMap((r) => r.problems).join('\n')).toMatch(/pack 1 is missing/);

      // A new source here is named by SHA-256, and says so.
      const other = join(dir, 'other-archive');
      const fresh = captureLogger();
      await pass(src, other, fresh.logger);
      expect((await readMeta(other)).blockHash).toBe('sha256');
      expect(fresh.lines().filter((l) => l.code === 'BLOCK_HASH_UNAVAILABLE').map((l) => l.msg)).toEqual([expect.stringContaining('the new source')]);
    } finally {
      back();
    }
    // With the module back, the same archive restores whole and verifies.
    await restoredEqualsSource(archive, src);
  });
});
