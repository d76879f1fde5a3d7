import { randomBytes } from 'node:crypto';
import { appendFile, copyFile, mkdir, mkdtemp, open, readdir, readFile, rename, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { simulateBlake3Missing } from '../../src/spool/block-hash.js';
import { spoolSourceSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SpoolSyncer } from '../../src/spool/spool-syncer.js';
import type { SpoolTuning } from '../../src/spool/spool-tuning.js';
import { decodeSegment } from '../../src/spool/spool-format.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../src/standby/spool-verify.js';
import { captureLogger } from '../support/capture-logger.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';
import { prng } from '../support/workload.js';

/**
 * Goal: blocks in pieces (format 4) survive everything else the spool history does to blocks:
 * segment rotation at every pass, compaction of mostly-dead packs, retention removing segments
 * and packs, syncer restarts, the known-block map rebuilt, BLAKE3 unavailable for a while, and
 * files that grow, cross block edges, are truncated, rewritten at the same size, copied, renamed
 * and deleted. Method: seeded random scenarios over real folders with a test clock; after
 * each, no error was logged, verify finds nothing, and a restore now and at every point inside
 * the retention equals the tree captured then. Each scenario checks that it did make blocks in
 * pieces, compact and prune.
 */
const BLOCK = 4096;
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-pieces-stress-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function runScenario(seed: number, opts: { sessionHook?: (session: number) => void; passes: number; piecesMax?: number; restartEvery: number; retentionSeconds: number; tuning?: Partial<SpoolTuning> }): Promise<void> {
  const rand = prng(seed);
  const int = (n: number): number => Math.floor(rand() * n);
  const src = join(dir, 'src');
  const archive = join(dir, 'archive');
  await mkdir(join(src, 'sub'), { recursive: true });
  let now = Date.now() + 3_600_000;
  let mtimeSeq = 0;
  const touch = async (p: string): Promise<void> => {
    mtimeSeq += 1;
    const t = new Date(now - 5_000_000 + mtimeSeq * 1000);
    await utimes(p, t, t);
  };
  const feeds: string[] = [];
  for (let i = 0; i < 12; i++) {
    const p = join(src, i % 2 === 0 ? 'sub' : '', `feed${i}.dat`);
    // Near a block boundary for some, so appends cross it.
    await writeFile(p, randomBytes(i % 3 === 0 ? BLOCK * (1 + (i % 4)) - 3 : 100 + int(3 * BLOCK)));
    await touch(p);
    feeds.push(p);
  }
  await writeFile(join(src, 'twinA'), randomBytes(1000));
  await copyFile(join(src, 'twinA'), join(src, 'twinB'));
  await touch(join(src, 'twinA'));
  await touch(join(src, 'twinB'));
  let copies = 0;
  const tuning: Partial<SpoolTuning> = {
    watch: false,
    racyWindowMs: 0,
    segmentBytesMax: 1,
    packLiveRatioMin: 0.9,
    packBytesMax: 16 * 1024,
    ...(opts.piecesMax === undefined ? {} : { blockPiecesMax: opts.piecesMax }),
    ...opts.tuning,
  };
  const { logger, lines } = captureLogger();
  const make = (): SpoolSyncer =>
    new SpoolSyncer({
      source: spoolSourceSchema.parse({ name: 'feeds', path: src, retentionSeconds: opts.retentionSeconds, blockBytes: BLOCK }),
      files: new LocalArchiveFiles(archive),
      logger,
      clock: { nowMs: () => now },
      tuning,
    });
  let session = 0;
  opts.sessionHook?.(session);
  let syncer = make();
  syncer.start();
  const captured: Array<{ atMs: number; tree: Map<string, string> }> = [];
  try {
    for (let pass = 1; pass <= opts.passes; pass++) {
      now += 10_000;
      for (const f of feeds) {
        if (rand() < 0.85) {
          await appendFile(f, randomBytes(1 + int(40)));
          await touch(f);
        }
      }
      const tail = randomBytes(1 + int(30));
      await appendFile(join(src, 'twinA'), tail);
      await appendFile(join(src, 'twinB'), tail);
      await touch(join(src, 'twinA'));
      await touch(join(src, 'twinB'));
      if (pass % 5 === 0) {
        // A copy of a feed shares its pieced last block (the known map), then grows apart.
        const c = join(src, `copy${copies++}`);
        await copyFile(feeds[0] as string, c);
        await appendFile(c, randomBytes(3));
        await touch(c);
      }
      if (pass % 7 === 0) {
        const f = feeds[3] as string;
        const size = (await readFile(f)).length;
        await truncate(f, Math.floor(size / 2));
        await appendFile(f, randomBytes(5));
        await touch(f);
      }
      if (pass % 6 === 0) {
        // Same size, last bytes rewritten.
        const f = feeds[4] as string;
        const data = await readFile(f);
        const h = await open(f, 'r+');
        await h.write(randomBytes(10), 0, 10, Math.max(0, data.length - 10));
        await h.close();
        await touch(f);
      }
      if (pass % 8 === 0) {
        const f = feeds[5] as string;
        const to = join(src, `moved${pass}.dat`);
        await rename(f, to);
        await appendFile(to, randomBytes(7));
        await touch(to);
        feeds[5] = to;
      }
      if (pass % 9 === 0 && copies > 1) await rm(join(src, `copy${copies - 2}`), { force: true });
      if (pass % 11 === 0) {
        const f = feeds[6] as string;
        await truncate(f, 0);
        await appendFile(f, randomBytes(9));
        await touch(f);
      }
      if (pass % 13 === 0) {
        // Rewritten to what it was plus the append (prefix the same): a new inode.
        const f = feeds[7] as string;
        const data = await readFile(f);
        await rm(f);
        await writeFile(f, Buffer.concat([data, randomBytes(4)]));
        await touch(f);
      }
      await syncer.syncNow();
      captured.push({ atMs: now, tree: await describeTree(src) });
      if (pass % opts.restartEvery === 0) {
        await syncer.stop();
        opts.sessionHook?.(++session);
        syncer = make();
        syncer.start();
      }
    }
  } finally {
    await syncer.stop();
    opts.sessionHook?.(-1);
  }
  const errors = lines().filter((l) => (l.level as number) >= 50);
  const all = lines();
  // The scenario did what it is for: blocks in pieces, compaction and retention all ran.
  expect(all.filter((l) => l.msg === 'live spool blocks copied out of mostly-dead packs').length).toBeGreaterThan(0);
  expect(all.filter((l) => l.msg === 'spool history older than the retention removed').reduce((n, l) => n + (l.packsRemoved as number), 0)).toBeGreaterThan(0);
  let pieced = 0;
  for (const name of await readdir(join(archive, 'files/feeds/journal'))) {
    for (const l of decodeSegment(await readFile(join(archive, 'files/feeds/journal', name))).lines) {
      const refs = l.op === 'file' ? l.set.map(([, ...r]) => r) : l.op === 'ent' && l.e.kind === 'file' ? l.e.blocks : [];
      for (const r of refs) if (r.length === 4) pieced++;
    }
  }
  expect(pieced).toBeGreaterThan(0);
  expect(errors).toEqual([]);
  expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
  const restored = join(dir, 'now');
  await restoreSpool({ archiveDir: archive, filesRoot: restored, logger: silentLogger() });
  expect(treeDiff(captured.at(-1)!.tree, await describeTree(join(restored, 'feeds')))).toEqual([]);
  // Every point inside the retention.
  let checked = 0;
  for (const [k, c] of captured.entries()) {
    if (c.atMs <= now - opts.retentionSeconds * 1000 + 10_000) continue;
    const at = join(dir, `at${k}`);
    const results = await restoreSpool({ archiveDir: archive, filesRoot: at, untilMs: c.atMs, logger: silentLogger() });
    expect(results[0]?.skipped, `point ${k}`).toBeUndefined();
    expect(treeDiff(c.tree, await describeTree(join(at, 'feeds'))), `point ${k}`).toEqual([]);
    await rm(at, { recursive: true, force: true });
    checked++;
  }
  expect(checked).toBeGreaterThan(3);
}

describe('blocks in pieces under churn, rotation, compaction, retention and restarts', () => {
  it('seed 1, default pieces max', { timeout: 300_000 }, async () => {
    await runScenario(1, { passes: 70, restartEvery: 9, retentionSeconds: 120 });
  });
  it('seed 2, pieces max 4', { timeout: 300_000 }, async () => {
    await runScenario(2, { passes: 70, piecesMax: 4, restartEvery: 5, retentionSeconds: 80 });
  });
  it('seed 3, no forced rotation (long segments), compaction at retention/4', { timeout: 300_000 }, async () => {
    await runScenario(3, { passes: 70, restartEvery: 17, retentionSeconds: 200, tuning: { segmentBytesMax: 1 << 30 } });
  });
  it('seed 4, BLAKE3 missing in sessions 2 and 3, back after', { timeout: 300_000 }, async () => {
    let restore: (() => void) | undefined;
    await runScenario(4, {
      passes: 60,
      restartEvery: 10,
      retentionSeconds: 150,
      sessionHook: (s) => {
        restore?.();
        restore = undefined;
        if (s === 2 || s === 3) restore = simulateBlake3Missing();
      },
    });
  });
  it('seed 5, tiny packs, partial compaction, known rebuilt often, pieces max 3', { timeout: 300_000 }, async () => {
    await runScenario(5, { passes: 70, piecesMax: 3, restartEvery: 6, retentionSeconds: 100, tuning: { packBytesMax: 4096, compactBytesMax: 5000, knownDeadMax: 1 } });
  });
  it('seed 6, tiny packs, compaction limited, long retention', { timeout: 300_000 }, async () => {
    await runScenario(6, { passes: 80, restartEvery: 23, retentionSeconds: 400, tuning: { packBytesMax: 2048, compactBytesMax: 9000, packLiveRatioMin: 0.99 } });
  });
});
