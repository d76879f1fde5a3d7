import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, lstat, mkdir, mkdtemp, open, readdir, readFile, rename, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { watch, type FSWatcher } from 'chokidar';
import { BehaviorSubject } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { spoolSourceSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/platform/clock.js';
import { within } from '../../src/platform/within.js';
import { silentLogger } from '../../src/platform/logger.js';
import { FileTarget } from '../../src/replica/targets/file-target.js';
import type { ReplicaSession } from '../../src/replica/replica-target.js';
import { ReplicaSpool } from '../../src/spool/replica-spool.js';
import { defaultBlockHash } from '../../src/spool/block-hash.js';
import type { FileReader } from '../../src/spool/file-reader.js';
import { ReaderPool } from '../../src/spool/reader-pool.js';
import { DEFAULT_SPOOL_TUNING, readerConfigOf, type SpoolTuning } from '../../src/spool/spool-tuning.js';
import { SpoolSyncer } from '../../src/spool/spool-syncer.js';
import { decodeSegment, encodeLineText, type JournalLine } from '../../src/spool/spool-format.js';
import { runPromotionHooks } from '../../src/standby/promotion-hooks.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../src/standby/spool-verify.js';
import { captureLogger } from '../support/capture-logger.js';
import { heldArchive, localSyncer, restoredDiff } from '../support/spool-pass.js';
import { trackChild } from '../support/live-children.js';
import { Churn, prng } from '../support/spool-churn.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';
import { waitFor } from '../support/wait.js';

const RUNNER = new URL('../../dist/scripts/spool-syncer-run.js', import.meta.url).pathname;
const MiB = 1024 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Bytes of the regular files under a folder. */
/** The reader of the default config a syncer given `readers` would take (a kept one, or a new one), lent to the caller. */
function defaultReader(readers: ReaderPool): FileReader {
  return readers.acquire(readerConfigOf(DEFAULT_SPOOL_TUNING, DEFAULT_SPOOL_TUNING.blockBytes, defaultBlockHash()), DEFAULT_SPOOL_TUNING.readerIdleMs, silentLogger());
}

/** Starts the thread of a reader of the default config in `readers` (and walks `src` with it), so that a syncer given the pool walks at once. */
async function warmReader(readers: ReaderPool, src: string): Promise<void> {
  const reader = defaultReader(readers);
  await reader.scan(src, [''], [], []);
  readers.release(reader);
}

/**
 * `dir/src` holding one file, `before`, and a pool whose default reader has walked it already:
 * a syncer given the pool walks at once, long before anything a test then waits for.
 */
async function warmSource(dir: string): Promise<{ src: string; readers: ReaderPool }> {
  const src = join(dir, 'src');
  await mkdir(src);
  await writeFile(join(src, 'before'), 'a');
  const readers = new ReaderPool();
  await warmReader(readers, src);
  return { src, readers };
}

async function bytesUnder(root: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(root)) {
    const st = await lstat(join(root, name));
    total += st.isDirectory() ? await bytesUnder(join(root, name)) : st.isFile() ? st.size : 0;
  }
  return total;
}

function syncer(source: unknown, archive: string, tuning: Partial<SpoolTuning> = {}, logger = silentLogger()): SpoolSyncer {
  return new SpoolSyncer({ source: spoolSourceSchema.parse(source), files: new LocalArchiveFiles(archive), logger, clock: systemClock, tuning });
}

function startChild(archive: string, source: object): Promise<ChildProcess> {
  const child = spawn(process.execPath, [RUNNER, archive, JSON.stringify(source)], { stdio: ['ignore', 'pipe', 'ignore'], env: { ...process.env, HOTSPARE_LOG_LEVEL: 'warn' } });
  trackChild(child);
  return new Promise((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`syncer process exited early (${code})`)));
  });
}

async function kill9(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

describe('spool syncer', () => {
  it('a long pass commits as it goes: a failure part-way loses only the work since the last commit', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    for (let i = 0; i < 20; i++) await writeFile(join(src, `f${String(i).padStart(2, '0')}`), randomBytes(512 * 1024));
    let failed = false;
    const s = new SpoolSyncer({
      source: spoolSourceSchema.parse({ name: 'big', path: src }),
      files: new LocalArchiveFiles(archive),
      logger: silentLogger(),
      clock: systemClock,
      // One file at a time, a commit every 2 MiB, and a quick retry.
      tuning: { watch: false, racyWindowMs: 0, readConcurrency: 1, passCommitBytes: 2 * MiB, retryDelayMsMin: 10, retryDelayMsMax: 20 },
      beforeRead: (path) => {
        // The 16th file fails once (an archive or reader failure part-way through a first copy).
        if (path === 'f15' && !failed) {
          failed = true;
          throw new Error('injected failure part-way through the pass');
        }
      },
    });
    try {
      s.start();
      await s.syncNow();
      expect(failed).toBe(true);
      // The retry shipped only what the failed pass had not committed: the packs hold about the
      // tree once (10 MiB), not once plus the 7.5 MiB a pass that commits only at its end would ship again.
      const packed = await bytesUnder(join(archive, 'files', 'big', 'packs'));
      expect(packed).toBeGreaterThanOrEqual(10 * MiB);
      expect(packed).toBeLessThan(10 * MiB + 3 * MiB);
      expect(await restoredDiff(archive, src, join(dir, 'restored'), 'big')).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('churn with the syncer process SIGKILLed and restarted; restore equals the source, and a point in time equals the tree captured then', async () => {
    expect(existsSync(RUNNER), 'run `npx tsc -p .` first').toBe(true);
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'queue'), { recursive: true });
    const source = { name: 'spool', path: src, exclude: ['tmp/**', '*.swp'] };
    const churn = new Churn(src, prng(42));
    await churn.run(200);
    for (let round = 0; round < 4; round++) {
      const child = await startChild(archive, source);
      await churn.run(250);
      await kill9(child); // mid-stream: passes may be half-written
      await churn.run(50); // changes while no syncer runs
    }
    // Excluded paths never reach the archive.
    await mkdir(join(src, 'tmp'), { recursive: true });
    await writeFile(join(src, 'tmp', 'scratch'), 'x');
    await writeFile(join(src, 'a.swp'), 'x');

    const s = syncer(source, archive);
    s.start();
    await churn.run(300);
    await s.syncNow();
    const atT = await describeTree(src, (p) => p === 'tmp' || p.startsWith('tmp/') || p.endsWith('.swp'));
    const tMs = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    await churn.run(500);
    await s.syncNow();
    await s.stop();

    const skip = (p: string): boolean => p === 'tmp' || p.startsWith('tmp/') || p.endsWith('.swp');
    await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'now'), logger: silentLogger() });
    expect(treeDiff(await describeTree(src, skip), await describeTree(join(dir, 'now', 'spool')))).toEqual([]);
    await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'then'), untilMs: tMs, logger: silentLogger() });
    expect(treeDiff(atT, await describeTree(join(dir, 'then', 'spool')))).toEqual([]);
    expect(atT.size).toBeGreaterThan(20);
    // Restoring over a stale copy makes it equal too (extra files removed, changed ones replaced).
    await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'then'), logger: silentLogger() });
    expect(treeDiff(await describeTree(src, skip), await describeTree(join(dir, 'then', 'spool')))).toEqual([]);
  });

  it('ships only appended bytes and changed blocks, and a restart over an unchanged tree ships almost nothing', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'many'), { recursive: true });
    for (let i = 0; i < 2000; i++) await writeFile(join(src, 'many', `f${i}`), `file ${i}\n`);
    const big = join(src, 'feed.dat');
    const h = await open(big, 'w');
    for (let i = 0; i < 256; i++) await h.write(randomBytes(MiB));
    await h.close();
    const source = { name: 'feeds', path: src };

    const first = syncer(source, archive, { watch: false });
    first.start();
    await first.syncNow();
    const initial = first.snapshot().bytesShippedTotal;
    expect(initial).toBeGreaterThan(256 * MiB);

    await appendFile(big, randomBytes(MiB));
    await first.syncNow();
    const appended = first.snapshot().bytesShippedTotal - initial;
    expect(appended).toBeGreaterThanOrEqual(MiB);
    expect(appended).toBeLessThan(MiB + 64 * 1024 + 16 * 1024);

    // 1% of the blocks rewritten in place: about 1% shipped.
    const w = await open(big, 'r+');
    for (let i = 0; i < 41; i++) await w.write(randomBytes(100), 0, 100, i * 100 * 64 * 1024 + 7);
    await w.close();
    const beforeRewrite = first.snapshot().bytesShippedTotal;
    await first.syncNow();
    const rewritten = first.snapshot().bytesShippedTotal - beforeRewrite;
    expect(rewritten).toBeGreaterThanOrEqual(41 * 64 * 1024);
    expect(rewritten).toBeLessThan(41 * 64 * 1024 + 64 * 1024);
    await first.stop();

    const second = syncer(source, archive, { watch: false });
    second.start();
    await second.syncNow();
    expect(second.snapshot().bytesShippedTotal).toBeLessThan(1024);
    await second.stop();

    expect(await restoredDiff(archive, src, join(dir, 'restored'), 'feeds')).toEqual([]);
  });

  it('a source with small blocks (blockBytes): an in-place rewrite ships a 4 KiB block, not 64 KiB; appends ship their bytes either way; an archive keeps the size it was made with', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src, { recursive: true });
    // An emoncms PHPFina feed: 4-byte values appended one at a time, and one rewritten in place.
    const feed = join(src, '1.dat');
    await writeFile(feed, randomBytes(60_000));
    /** Bytes shipped (data and journal) per append of 4 bytes, and by a 4-byte rewrite in the middle. */
    const costs = async (s: SpoolSyncer): Promise<{ perAppend: number; rewrite: number }> => {
      let before = s.snapshot().bytesShippedTotal;
      for (let i = 0; i < 20; i++) {
        await appendFile(feed, randomBytes(4));
        await s.syncNow();
      }
      const perAppend = (s.snapshot().bytesShippedTotal - before) / 20;
      const h = await open(feed, 'r+');
      await h.write(randomBytes(4), 0, 4, 30_000);
      await h.close();
      before = s.snapshot().bytesShippedTotal;
      await s.syncNow();
      return { perAppend, rewrite: s.snapshot().bytesShippedTotal - before };
    };
    // The default 64 KiB blocks: the file is one block, shipped whole by the rewrite.
    const other = join(dir, 'archive-default');
    const large = syncer({ name: 'feeds', path: src }, other, { watch: false });
    large.start();
    await large.syncNow();
    const largeCosts = await costs(large);
    expect(largeCosts.perAppend).toBeLessThan(1024);
    expect(largeCosts.rewrite).toBeGreaterThan(60_000);
    await large.stop();
    const small = syncer({ name: 'feeds', path: src, blockBytes: 4096 }, archive, { watch: false });
    small.start();
    await small.syncNow();
    const smallCosts = await costs(small);
    expect(smallCosts.perAppend).toBeLessThan(1024);
    expect(smallCosts.rewrite).toBeLessThanOrEqual(4096 + 1024);
    await small.stop();
    // The same archive with 64 KiB blocks configured: its 4 KiB blocks stay, and the log says so.
    const logger = captureLogger();
    const again = syncer({ name: 'feeds', path: src, blockBytes: 65536 }, archive, { watch: false }, logger.logger);
    again.start();
    await again.syncNow();
    expect((await costs(again)).rewrite).toBeLessThanOrEqual(4096 + 1024);
    await again.stop();
    expect(logger.lines().some((l) => /keeps its 4096-byte blocks; blockBytes 65536 applies to a new archive/.test(l.msg))).toBe(true);
    expect(await restoredDiff(archive, src, join(dir, 'restored'), 'feeds')).toEqual([]);
    // A size that is not a power of two is refused, naming the field.
    expect(() => spoolSourceSchema.parse({ name: 'feeds', path: src, blockBytes: 5000 })).toThrow(/power of two from 4096 to 1048576/);
  });

  it('excludes read as rsync reads them: `cache/` is a folder with all in it, `*.tmp` a name at any depth, `/log` anchored at the source root', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    for (const folder of ['cache/sub', 'log', 'sub/log']) await mkdir(join(src, folder), { recursive: true });
    for (const file of ['cache/a', 'cache/sub/b', 'log/x', 'sub/log/y', 'keep', 'a.tmp', 'sub/log/c.tmp']) await writeFile(join(src, file), file);
    const s = syncer({ name: 'gw', path: src, exclude: ['cache/', '/log', '*.tmp'] }, archive, { watch: false });
    s.start();
    await s.syncNow();
    await s.stop();
    await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'restored'), logger: silentLogger() });
    const restored = await describeTree(join(dir, 'restored', 'gw'));
    expect([...restored.keys()].sort()).toEqual(['keep', 'sub', 'sub/log', 'sub/log/y']);
  });

  it('reads through a single 64 KiB buffer with few files queued, full blocks written from it and tails copied: the archive restores the tree', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'q'), { recursive: true });
    for (let i = 0; i < 40; i++) await writeFile(join(src, 'q', `m${i}`), randomBytes(i * 9_000));
    await writeFile(join(src, 'q', 'same-a'), Buffer.alloc(200_000, 7));
    await writeFile(join(src, 'q', 'same-b'), Buffer.alloc(200_000, 7));
    await writeFile(join(src, 'big'), randomBytes(3 * MiB + 5));
    const s = syncer({ name: 'q', path: src }, archive, { watch: false, racyWindowMs: 0, readBuffers: 1, readBytes: 64 * 1024, readConcurrency: 3, directWriteBytes: 64 * 1024 });
    const restoredEqualsSource = async (name: string): Promise<void> => {
      expect(await restoredDiff(archive, src, join(dir, name), 'q')).toEqual([]);
      expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
    };
    try {
      s.start();
      await s.syncNow();
      // Identical blocks are stored once: the two same-content files cost one 64 KiB block and a tail.
      const initial = s.snapshot().bytesShippedTotal;
      expect(initial).toBeLessThan((await bytesUnder(src)) - 400_000 + 2 * 64 * 1024 + 100_000);
      await restoredEqualsSource('r1');

      await appendFile(join(src, 'big'), randomBytes(70_000));
      const w = await open(join(src, 'q', 'm39'), 'r+');
      await w.write(randomBytes(10), 0, 10, 100_000);
      await w.close();
      await s.syncNow();
      // The append's blocks (the old tail block rewritten, plus new ones) and one changed block of m39.
      expect(s.snapshot().bytesShippedTotal - initial).toBeLessThan(70_000 + 3 * 64 * 1024 + 16 * 1024);
      await restoredEqualsSource('r2');
    } finally {
      await s.stop();
    }
  });

  it('a clock that gives fractions of a millisecond (a scaled or monotonic one) ships files as the system clock does', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'seqno'), '41\n');
    const { logger, lines } = captureLogger();
    // Every pass that shipped a file failed on it (BigInt of the time) and retried in backoff.
    const s = localSyncer('q', src, archive, { logger, clock: { nowMs: () => Date.now() + 0.25 } });
    try {
      s.start();
      const errors = (): unknown[] => lines().filter((l) => (l['level'] as number) >= 50);
      await Promise.race([s.syncNow(), waitFor('a failed pass', () => errors().length > 0, 10_000, 5)]);
      expect(errors()).toEqual([]);
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('a stopped syncer leaves its reader to the next syncer of the source (the next session), which ships what changed since', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'q'), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(src, 'q', `m${i}`), randomBytes(1000 + i * 5000));
    const readers = new ReaderPool();
    const session = (): SpoolSyncer => localSyncer('q', src, archive, { tuning: { racyWindowMs: 0 }, readers });
    const s1 = session();
    s1.start();
    await s1.syncNow();
    await s1.stop();
    expect(readers.kept).toBe(1);
    await appendFile(join(src, 'q', 'm3'), randomBytes(70_000));
    await rm(join(src, 'q', 'm4'));
    await writeFile(join(src, 'q', 'new'), randomBytes(30_000));
    const s2 = session();
    s2.start();
    // Lent to the running syncer alone.
    expect(readers.kept).toBe(0);
    try {
      await s2.syncNow();
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      await s2.stop();
    }
    expect(readers.kept).toBe(1);
  });

  it('the walk asked for at start is not taken by a pass after the archive could not be opened: a file made meanwhile ships with that pass', async () => {
    // A reader whose thread runs already, so the walk is done long before the second failure.
    const { src, readers } = await warmSource(dir);
    // The archive's folder cannot be made while a file stands in its parent's place.
    const blocked = join(dir, 'blocked');
    await writeFile(blocked, 'not a folder');
    const { logger, lines } = captureLogger();
    const s = localSyncer('q', src, join(blocked, 'archive'), { logger, tuning: { retryDelayMsMin: 50 }, readers });
    try {
      s.start();
      expect(readers.kept).toBe(0);
      await waitFor('the open to fail twice', () => lines().filter((l) => l['msg']?.toString().startsWith('spool sync failed')).length >= 2, 10_000, 5);
      await writeFile(join(src, 'after'), 'b');
      await rm(blocked);
      await s.syncNow();
      expect(await restoredDiff(join(blocked, 'archive'), src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('the walk asked for at start is not taken by a first pass that begins after firstScanMaxAgeMs (an archive slow to open): a file made meanwhile ships with that pass', async () => {
    const { src, readers } = await warmSource(dir);
    const archive = join(dir, 'archive');
    // The archive answers nothing until the test lets it, as a remote one reading a long journal.
    const { files, open } = heldArchive(archive);
    const s = localSyncer('q', src, archive, { files, tuning: { firstScanMaxAgeMs: 50 }, readers });
    try {
      s.start();
      // The walk (a running thread, a file or two) is done long before this.
      await new Promise((r) => setTimeout(r, 200));
      await writeFile(join(src, 'after'), 'b');
      open();
      await s.syncNow();
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('the walk asked for at start is not taken when it walked a folder of the same inode on another device (a volume mounted since, its root numbered as the folder under it was)', async () => {
    const { src, readers } = await warmSource(dir);
    const archive = join(dir, 'archive');
    // The walk start() asks for reports the root with the inode the pass will find, on another
    // device: what a walk of a mount point's folder looks like beside the volume mounted there
    // since, when the two roots share an inode number (2 on every ext4, 256 on btrfs).
    const reader = defaultReader(readers);
    const scan = reader.scan.bind(reader);
    let walks = 0;
    reader.scan = async (...args) => {
      const result = await scan(...args);
      const root = result.found.get('');
      if (walks++ === 0 && root !== undefined) result.found.set('', { ...root, dev: root.dev + 1 });
      return result;
    };
    readers.release(reader);
    const { files, open } = heldArchive(archive);
    const s = localSyncer('q', src, archive, { files, tuning: { firstScanMaxAgeMs: 60_000 }, readers });
    try {
      s.start();
      await waitFor('the walk asked for at start', () => walks === 1 && !reader.busy, 10_000, 5);
      await writeFile(join(src, 'after'), 'b');
      open();
      await s.syncNow();
      expect(walks).toBe(2);
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      open();
      await s.stop();
    }
  });

  it('a read still under way when its pass failed writes nothing once the archive is opened again (it wrote into the next pass\'s pack, over its blocks)', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    // a fails the pass (its read's handler throws); b is read meanwhile; c is the run that throws.
    await writeFile(join(src, 'a'), randomBytes(300_000));
    await writeFile(join(src, 'b'), randomBytes(512 * 1024));
    await writeFile(join(src, 'c'), randomBytes(1000));
    const { logger, lines } = captureLogger();
    let failA = true;
    let releaseB!: () => void;
    const bHeld = new Promise<void>((resolve) => (releaseB = resolve));
    const opens = (): number => lines().filter((l) => l.msg === 'spool source opened').length;
    // Pack writes from b's hold until the next pass reads a are the failed pass's: held until the test lets them go.
    let holdWrites = false;
    let letWrites!: () => void;
    const writesLet = new Promise<void>((resolve) => (letWrites = resolve));
    const held: Array<Promise<unknown>> = [];
    const local = new LocalArchiveFiles(archive);
    const files = new Proxy(local, {
      get: (target, key) => {
        const v = Reflect.get(target, key) as unknown;
        if (key !== 'write' || typeof v !== 'function') return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
        return (...args: unknown[]) => {
          if (!holdWrites || !String(args[0]).includes('pack')) return (v as (...a: unknown[]) => unknown).apply(target, args);
          const w = writesLet.then(() => (v as (...a: unknown[]) => unknown).apply(target, args));
          held.push(w);
          return w;
        };
      },
    });
    const s = localSyncer('q', src, archive, {
      files,
      logger,
      tuning: { retryDelayMsMin: 10, readConcurrency: 2, racyWindowMs: 0 },
      readers: new ReaderPool(),
      beforeRead: async (path) => {
        if (path === 'a' && failA) {
          failA = false;
          throw new Error('test: the pass fails here');
        }
        if (path === 'a') holdWrites = false;
        // Held in the pass that fails (if its reader gets that far before a's failure ends the pass).
        if (path === 'b' && opens() === 1) {
          holdWrites = true;
          await bHeld;
        }
      },
    });
    try {
      s.start();
      // The pass failed, and the archive was opened again, while b's read waits.
      await waitFor('the archive opened again', () => opens() >= 2, 10_000, 5);
      releaseB();
      await s.syncNow();
      // With the bug, b's write held here lands in pack 1 over a's and b's blocks the next pass made durable.
      letWrites();
      await Promise.allSettled(held);
      expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      letWrites();
      await s.stop();
    }
  });

  it.each(['missing', 'an empty folder'])('the walk asked for at start is not taken when the source was %s then: a source back by the first pass (a volume mounted, a folder moved back) is not recorded deleted', async (how) => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'a'), 'a');
    await writeFile(join(src, 'b'), randomBytes(70_000));
    const readers = new ReaderPool();
    const tuning = { racyWindowMs: 0, firstScanMaxAgeMs: 60_000 };
    const s1 = localSyncer('q', src, archive, { tuning, readers });
    s1.start();
    await s1.syncNow();
    await s1.stop();
    // The reader s1 left, which the next syncer takes: the test sees when its walk is done.
    const reader = defaultReader(readers);
    readers.release(reader);
    await rename(src, `${src}.away`);
    if (how === 'an empty folder') await mkdir(src);
    // The archive answers nothing until the test lets it.
    const { files, open } = heldArchive(archive);
    const s2 = localSyncer('q', src, archive, { files, tuning, readers });
    try {
      s2.start();
      expect(readers.kept).toBe(0);
      await waitFor('the walk asked for at start', () => !reader.busy, 10_000, 5);
      // Back before the first pass.
      await rm(src, { recursive: true, force: true });
      await rename(`${src}.away`, src);
      open();
      await s2.syncNow();
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'q')).toEqual([]);
    } finally {
      open();
      await s2.stop();
    }
  });

  it('an archive recorded before owners were kept gets them on the next pass, and restores them', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'q'), { recursive: true });
    for (let i = 0; i < 5; i++) await writeFile(join(src, 'q', `m${i}`), randomBytes(70_000));
    if (process.getuid?.() === 0) await chown(join(src, 'q', 'm3'), 1234, 4321);
    const first = syncer({ name: 'q', path: src }, archive, { watch: false, racyWindowMs: 0 });
    first.start();
    await first.syncNow();
    await first.stop();
    // As an older hotspare wrote it: no uid or gid in any entry.
    const journalDir = join(archive, 'files', 'q', 'journal');
    for (const name of await readdir(journalDir)) {
      const { lines } = decodeSegment(await readFile(join(journalDir, name)));
      const stripped = lines.map((l) => ('e' in l ? { ...l, e: Object.fromEntries(Object.entries(l.e).filter(([k]) => k !== 'uid' && k !== 'gid')) } : l) as JournalLine);
      await writeFile(join(journalDir, name), stripped.map(encodeLineText).join(''));
    }
    const second = syncer({ name: 'q', path: src }, archive, { watch: false, racyWindowMs: 0 });
    try {
      second.start();
      await second.syncNow();
      // No data again: the owners come in journal lines alone.
      expect(second.snapshot().bytesShippedTotal).toBeLessThan(16 * 1024);
    } finally {
      await second.stop();
    }
    const to = join(dir, 'restored');
    expect(await restoredDiff(archive, src, to, 'q')).toEqual([]);
  });

  it('a source whose path is a link to its folder is shipped whole, changes seen by the watcher, and restored', async () => {
    const real = join(dir, 'opt-emg-etc');
    const src = join(dir, 'etc-emg');
    const archive = join(dir, 'archive');
    await mkdir(join(real, 'queue'), { recursive: true });
    await writeFile(join(real, 'gateway.conf'), 'port=2775\n');
    await writeFile(join(real, 'queue', 'm1'), randomBytes(5_000));
    await symlink(real, src);
    // Watching (no rescan for a minute): a change must reach the archive through the watcher.
    const s = syncer({ name: 'emg', path: src }, archive, { racyWindowMs: 0 });
    try {
      s.start();
      await s.syncNow();
      await writeFile(join(real, 'queue', 'm2'), randomBytes(3_000));
      const restoredHasM2 = async (): Promise<boolean> => {
        const to = await mkdtemp(join(dir, 'r-'));
        const [result] = await restoreSpool({ archiveDir: archive, filesRoot: to, logger: silentLogger() });
        const same = result?.skipped === undefined && treeDiff(await describeTree(real), await describeTree(join(to, 'emg'))).length === 0;
        await rm(to, { recursive: true, force: true });
        return same;
      };
      await waitFor('the watcher to ship the new file', restoredHasM2, 20_000);
      // A mode tightened (chmod changes no mtime, which chokidar goes by): the watcher too, not the next rescan.
      await chmod(join(real, 'gateway.conf'), 0o600);
      await waitFor('the watcher to ship the new mode', restoredHasM2, 20_000);
    } finally {
      await s.stop();
    }
  });

  it('an empty folder in place of the archived one (a volume not mounted there) is a missing source, not every file deleted', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'phpfina'), { recursive: true });
    await writeFile(join(src, 'phpfina', '1.dat'), randomBytes(8_192));
    await writeFile(join(src, 'phpfina', '1.meta'), 'interval=10\n');
    const s = syncer({ name: 'feeds', path: src }, archive, { watch: false });
    try {
      s.start();
      await s.syncNow();
      const archived = await describeTree(src);
      // The volume goes; its mount point, an empty folder of the file system below, stays.
      await rename(src, join(dir, 'volume-away'));
      await mkdir(src);
      await s.syncNow();
      expect(s.snapshot().missingSources).toEqual([{ name: 'feeds', path: src }]);
      const atEnd = join(dir, 'restored-away');
      await restoreSpool({ archiveDir: archive, filesRoot: atEnd, logger: silentLogger() });
      expect(treeDiff(archived, await describeTree(join(atEnd, 'feeds')))).toEqual([]);
      // Mounted again (the archived folder back in place): shipped on as before.
      await rm(src, { recursive: true });
      await rename(join(dir, 'volume-away'), src);
      await writeFile(join(src, 'phpfina', '2.meta'), 'interval=60\n');
      await s.syncNow();
      expect(s.snapshot().missingSources).toEqual([]);
      const back = join(dir, 'restored-back');
      expect(await restoredDiff(archive, src, back, 'feeds')).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('a source folder that went away and came back is watched and shipped again within seconds, not at the next rescan', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'queue'), { recursive: true });
    await writeFile(join(src, 'seqno'), '1\n');
    // The rescan a minute away, as in production: only the missing folder's own check may find it back.
    const s = syncer({ name: 'gateway', path: src }, archive, { rescanIntervalMs: 60_000 });
    try {
      s.start();
      await s.syncNow();
      await rename(src, join(dir, 'away'));
      await waitFor('the source to be reported missing', () => s.snapshot().missingSources.length === 1, 10_000, 20);
      // Away for a while (an unmounted disk, an operator's mv): its watcher is gone by then.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await rename(join(dir, 'away'), src);
      await writeFile(join(src, 'queue', 'm1'), 'message 1\n');
      // Well before the minute's rescan: the wait's deadline is what tells the two apart.
      await waitFor('the source to be reported back', () => s.snapshot().missingSources.length === 0, 10_000, 20);
      // Watched again: a change made after it is back ships without a rescan.
      await writeFile(join(src, 'seqno'), '2\n');
      const restoredSeqno = async (): Promise<boolean> => {
        const to = join(dir, `restored-${Date.now()}`);
        await restoreSpool({ archiveDir: archive, filesRoot: to, logger: silentLogger() });
        return (await readFile(join(to, 'gateway', 'seqno'), 'utf8').catch(() => '')) === '2\n' && existsSync(join(to, 'gateway', 'queue', 'm1'));
      };
      await waitFor('the new seqno and queue file to be archived', restoredSeqno, 10_000, 200);
    } finally {
      await s.stop();
    }
  });

  it('reports FIFOs, a missing source and a file that changes while read, and loses nothing else', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    const { logger, lines } = captureLogger();
    const source = { name: 'cfg', path: src };
    const s = syncer(source, archive, { watch: false, readAttempts: 2 }, logger);
    s.start();
    await s.syncNow();
    expect(lines().some((l) => l['code'] === 'SPOOL_SOURCE_MISSING' && String(l['msg']).includes(src))).toBe(true);
    // Not a log line alone: the snapshot /lag reads says so for as long as it lasts.
    expect(s.snapshot().missingSources).toEqual([{ name: 'cfg', path: src }]);

    await mkdir(src);
    await writeFile(join(src, 'server.cfg'), 'port=1\n');
    execFileSync('mkfifo', [join(src, 'pipe')]);
    const busy = join(src, 'busy.log');
    await writeFile(busy, randomBytes(32 * MiB));
    // Rewritten in place without pause (an append is taken as the file was when its read
    // began: spool-busy-files.test.ts): no two reads of it agree.
    let writing = true;
    const writer = (async () => {
      const h = await open(busy, 'r+');
      try {
        while (writing) await h.write(randomBytes(4096), 0, 4096, Math.floor(Math.random() * 8192) * 4096);
      } finally {
        await h.close();
      }
    })();
    await s.syncNow();
    writing = false;
    await writer;
    expect(s.snapshot().missingSources).toEqual([]);
    expect(lines().some((l) => l['code'] === 'SPOOL_SKIPPED' && String(l['msg']).includes('pipe'))).toBe(true);
    expect(lines().some((l) => l['code'] === 'SPOOL_FILE_UNSTABLE' && l['path'] === 'busy.log')).toBe(true);

    // Once the writer stops, the file ships; the FIFO stays out; nothing else was lost.
    await s.syncNow();
    await rm(join(src, 'pipe'));
    expect(await restoredDiff(archive, src, join(dir, 'restored'), 'cfg')).toEqual([]);
    await s.stop();
  });

  // A replica's session can end while a pass is starting its watcher (the receiver restarted
  // just then); stop() then closes a watcher whose first scan has not ended, and chokidar never
  // says 'ready' for it. Once, stop() waited on that forever and the agent shipped no spool
  // file again, nor exited on SIGTERM.
  it.each([
    ['as the watcher starts', (stop: () => void) => stop()],
    ['while its first scan runs', (stop: () => void) => setImmediate(stop)],
  ])('stop() %s: it ends, and the watcher is closed', async (_when, schedule) => {
    const src = join(dir, 'src');
    for (let d = 0; d < 40; d++) {
      await mkdir(join(src, `d${d}`), { recursive: true });
      for (let f = 0; f < 25; f++) await writeFile(join(src, `d${d}`, `f${f}`), `${d}/${f}\n`);
    }
    let watcher: FSWatcher | undefined;
    let stopped: Promise<void> | undefined;
    const s = new SpoolSyncer({
      source: spoolSourceSchema.parse({ name: 'spool', path: src }),
      files: new LocalArchiveFiles(join(dir, 'archive')),
      logger: silentLogger(),
      clock: systemClock,
      watchTree: (root, options) => {
        watcher = watch(root, options);
        schedule(() => (stopped = s.stop()));
        return watcher;
      },
    });
    s.start();
    await vi.waitFor(() => expect(stopped).toBeDefined(), { timeout: 30_000 });
    expect(await within((stopped as Promise<void>).then(() => 'stopped'), 20_000), 'stop() still waiting after 20 s').toEqual({ value: 'stopped' });
    expect(watcher?.closed).toBe(true);
  });

  it('a file removed while being read, and one replaced while read: logged, nothing else lost, the archive consistent', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'q'), { recursive: true });
    for (let i = 0; i < 20; i++) await writeFile(join(src, 'q', `m${i}`), randomBytes(1000 + i * 20_000));
    await writeFile(join(src, 'q', 'new-gone'), randomBytes(300_000));
    const { logger, lines } = captureLogger();
    // The seam runs between the syncer's open+fstat of a file and its first read: whatever the
    // test does there happens while the file is being read, every time, with no timing luck.
    const during = new Map<string, () => Promise<void>>();
    const s = new SpoolSyncer({
      source: spoolSourceSchema.parse({ name: 'q', path: src }),
      files: new LocalArchiveFiles(archive),
      logger,
      clock: systemClock,
      // No racy re-reads: every pass here is one the test asked for, so each seam fires where it expects.
      tuning: { watch: false, racyWindowMs: 0 },
      beforeRead: async (path) => {
        const act = during.get(path);
        during.delete(path);
        await act?.();
      },
    });
    const restoredEqualsSource = async (name: string): Promise<void> => {
      expect(await restoredDiff(archive, src, join(dir, name), 'q')).toEqual([]);
      expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
    };
    try {
      // 1. A new file removed while its first read is under way: never recorded.
      during.set('q/new-gone', () => rm(join(src, 'q', 'new-gone')));
      s.start();
      await s.syncNow();
      expect(during.size).toBe(0);
      expect(lines().filter((l) => l.code === 'SPOOL_FILE_GONE').map((l) => [l['path'], l.msg])).toEqual([['q/new-gone', `${join(src, 'q', 'new-gone')} was removed while being read; the archive records it as absent`]]);
      await restoredEqualsSource('r1');

      // 2. A recorded file that grew, removed while the new version is read: recorded as deleted.
      //    3. A recorded file replaced (a new file renamed over it) while read: the new version is recorded.
      await appendFile(join(src, 'q', 'm3'), randomBytes(70_000));
      await appendFile(join(src, 'q', 'm5'), randomBytes(70_000));
      const replacement = randomBytes(250_000);
      during.set('q/m3', () => rm(join(src, 'q', 'm3')));
      during.set('q/m5', async () => {
        await writeFile(join(src, 'q', '.m5.tmp'), replacement);
        await rename(join(src, 'q', '.m5.tmp'), join(src, 'q', 'm5'));
      });
      await s.syncNow();
      expect(during.size).toBe(0);
      expect(lines().filter((l) => l.code === 'SPOOL_FILE_GONE').map((l) => l['path'])).toEqual(['q/new-gone', 'q/m3']);
      expect(lines().filter((l) => l.code === 'SPOOL_FILE_REREAD').map((l) => l['path'])).toEqual(expect.arrayContaining(['q/m3', 'q/m5']));
      await restoredEqualsSource('r2');
      expect((await readFile(join(dir, 'r2', 'q', 'q', 'm5'))).equals(replacement)).toBe(true);
      expect(existsSync(join(dir, 'r2', 'q', 'q', 'm3'))).toBe(false);
      expect(existsSync(join(dir, 'r2', 'q', 'q', 'm4'))).toBe(true);
      // Nothing was reported as unreadable or unstable along the way.
      expect(lines().filter((l) => Number(l['level']) >= 40)).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it('retention bounds the history: old segments and packs go, disk use falls, now and the window restore, a point before it is refused', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'keep'), { recursive: true });
    await mkdir(join(src, 'q'));
    await writeFile(join(src, 'keep', 'config'), randomBytes(5_000));
    await writeFile(join(src, 'keep', 'data'), randomBytes(300_000));
    await writeFile(join(src, 'log'), randomBytes(10_000));
    // The syncer's clock is the test's: 30 s pass between rounds in no time.
    let now = Date.parse('2031-01-01T00:00:00Z');
    const retentionSeconds = 100;
    const s = new SpoolSyncer({
      source: spoolSourceSchema.parse({ name: 'q', path: src, retentionSeconds }),
      files: new LocalArchiveFiles(archive),
      logger: silentLogger(),
      clock: { nowMs: () => now },
      tuning: { watch: false, packBytesMax: 256 * 1024 },
    });
    const history = join(archive, 'files', 'q');
    const captured: Array<{ atMs: number; tree: Map<string, string> }> = [];
    // Every change alters a size, so none depends on mtime granularity (the test's clock is not the file system's).
    const round = async (r: number, queueFiles: number): Promise<void> => {
      now += 30_000;
      for (let i = 0; i < 5; i++) await rm(join(src, 'q', `r${r - 1}-${i}`), { force: true });
      for (let i = 0; i < queueFiles; i++) await writeFile(join(src, 'q', `r${r}-${i}`), randomBytes(120_000 + i));
      await appendFile(join(src, 'log'), randomBytes(queueFiles > 0 ? 20_000 : 1_000));
      await s.syncNow();
      captured.push({ atMs: now, tree: await describeTree(src) });
    };
    try {
      s.start();
      let peak = 0;
      for (let r = 1; r <= 12; r++) {
        await round(r, 5);
        peak = Math.max(peak, await bytesUnder(history));
      }
      const busyShipped = s.snapshot().bytesShippedTotal;
      // Quiet rounds: the queue drains, the window moves past the busy ones.
      for (let r = 13; r <= 18; r++) await round(r, 0);
      const after = await bytesUnder(history);
      const live = await bytesUnder(src);
      // History older than the window went while the queue was busy, not only at the end.
      expect(busyShipped).toBeGreaterThan(12 * 5 * 120_000);
      expect(peak).toBeLessThan(0.6 * busyShipped);
      expect(after).toBeLessThan(peak / 3);
      // What stays is about the live tree: blocks moved out of mostly-dead packs, plus the window's few changes.
      expect(after).toBeLessThan(2 * live + 256 * 1024);
      // A segment starts every retention/4 while changes come; older ones are gone.
      expect((await readdir(join(history, 'journal'))).length).toBeLessThanOrEqual(6);

      expect(await restoredDiff(archive, src, join(dir, 'now'), 'q')).toEqual([]);
      const inside = captured[captured.length - 3] as (typeof captured)[number];
      expect(inside.atMs).toBeGreaterThan(now - retentionSeconds * 1000);
      await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'inside'), untilMs: inside.atMs, logger: silentLogger() });
      expect(treeDiff(inside.tree, await describeTree(join(dir, 'inside', 'q')))).toEqual([]);
      const before = captured[4] as (typeof captured)[number];
      await expect(restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'before'), untilMs: before.atMs, logger: silentLogger() })).rejects.toMatchObject({
        code: 'SPOOL_HISTORY_TRUNCATED',
        message: expect.stringContaining('keeps history only from') as string,
      });
      expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
    } finally {
      await s.stop();
    }
  });

  it('while the standby is away, the files\' lag ages from when it went (and from the start before it was first reached)', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'seqno'), '41\n');
    const sources = [spoolSourceSchema.parse({ name: 'spool', path: src })];
    const target = new FileTarget({ name: 'standby-a', path: archive, logger: silentLogger(), clock: systemClock, syncBatchBytesMax: MiB });
    const session$ = new BehaviorSubject<ReplicaSession | undefined>(undefined);
    // The spool's clock is the test's: ages are exact, no sleeps. (Real time, frozen between
    // steps: the files' own times stay in the past of it.)
    let nowMs = Date.now();
    const clock = { nowMs: () => nowMs };
    // A long debounce: a change stays pending (marked, not yet shipped) while the standby goes.
    const spool = new ReplicaSpool({ sources, session$, logger: silentLogger(), clock, tuning: { debounceMs: 60_000 } });
    spool.start();
    let session: ReplicaSession | undefined;
    try {
      // Not reached yet: nothing has been shipped, so changes wait since the start (they read 0 before).
      nowMs += 300;
      expect(spool.snapshot().oldestPendingMs).toBe(300);
      session = await target.open({ serverId: 1, serverUuid: null, flavor: 'mariadb', version: '11', hostname: 'h', binlogBasename: 'mysql-bin' });
      session$.next(session);
      await waitFor('the first pass committed', () => spool.snapshot().bytesShippedTotal > 0 && spool.snapshot().oldestPendingMs === 0, 10_000, 10);
      // A change the watcher has seen and the debounce holds back.
      await writeFile(join(src, 'seqno'), '42 and more\n');
      await waitFor('the change to be pending', () => spool.snapshot().pendingChanges === 1, 10_000, 10);
      // The standby goes away: the age grows from when the change was seen, and the change stays counted.
      const seenAt = nowMs;
      session$.next(undefined);
      await waitFor('the syncers to stop', () => !spool.syncing, 10_000, 10);
      nowMs += 300;
      const away = spool.snapshot();
      expect(away.oldestPendingMs).toBe(nowMs - seenAt);
      expect(away.pendingChanges).toBe(1);
    } finally {
      await spool.stop();
      await session?.close();
    }
  });

  it('the files\' lag counts a pass over an unchanged tree as nothing waiting, and a source whose passes keep failing as waiting since the first', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'seqno'), '41\n');
    const source = { name: 'spool', path: src };
    const first = syncer(source, archive);
    first.start();
    await first.syncNow();
    await first.stop();
    // The replica was away for an hour (handed over by ReplicaSpool), the tree unchanged: the
    // pass that walks it is no lag (it read an hour at once, on every reconnect of a large tree).
    const back = new SpoolSyncer({ source: spoolSourceSchema.parse(source), files: new LocalArchiveFiles(archive), logger: silentLogger(), clock: systemClock, pendingSinceMs: Date.now() - 3_600_000 });
    back.start();
    expect(back.snapshot().oldestPendingMs).toBe(0);
    await back.syncNow();
    expect(back.snapshot().oldestPendingMs).toBe(0);
    await back.stop();

    // Every write of pack data fails: the change stays waiting, its age growing past the
    // retries (it started again at each failure, never past the backoff).
    class FailingWrites extends LocalArchiveFiles {
      override write(): Promise<void> {
        return Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
      }
    }
    await writeFile(join(src, 'seqno'), '42 and more\n');
    const failing = new SpoolSyncer({ source: spoolSourceSchema.parse(source), files: new FailingWrites(archive), logger: silentLogger(), clock: systemClock, tuning: { retryDelayMsMin: 20, retryDelayMsMax: 40, watch: false } });
    const startedAt = Date.now();
    failing.start();
    try {
      await new Promise((r) => setTimeout(r, 600));
      expect(failing.snapshot().oldestPendingMs).toBeGreaterThanOrEqual(Date.now() - startedAt - 100);
    } finally {
      await failing.stop();
    }
  });

  it('changes made while the syncer was stopped: a point inside that window restores them by mtime, and warns', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'q'), { recursive: true });
    await writeFile(join(src, 'gw.dat'), 'sample-1\n');
    await writeFile(join(src, 'q', 'old'), 'queued before\n');
    // The syncers' clock is the test's (an hour ahead, so that no file read is racy); the
    // files' mtimes are set on it, so each change's moment is known to the millisecond.
    const at0 = Math.floor(Date.now() / 1000) * 1000 + 3_600_000;
    let now = at0;
    const clock = { nowMs: () => now };
    const start = (): SpoolSyncer =>
      new SpoolSyncer({ source: spoolSourceSchema.parse({ name: 'spool', path: src }), files: new LocalArchiveFiles(archive), logger: silentLogger(), clock, tuning: { watch: false } });
    const first = start();
    first.start();
    await first.syncNow();
    await first.stop();
    // A: the last look before the stop. Then, unwatched: an append and a new marker 20 s in,
    // a file 50 s in, the old queue file removed; the syncer starts again 60 s in (B).
    const A = now;
    const setMtime = (path: string, ms: number): Promise<void> => utimes(join(src, path), ms / 1000, ms / 1000);
    await appendFile(join(src, 'gw.dat'), 'sample-2\n');
    await setMtime('gw.dat', A + 20_000);
    await mkdir(join(src, 'markers'));
    await writeFile(join(src, 'markers', 'M14.txt'), 'M14\n');
    await setMtime('markers/M14.txt', A + 20_000);
    await writeFile(join(src, 'late.dat'), 'after the point\n');
    await setMtime('late.dat', A + 50_000);
    await setMtime('markers', A + 50_000);
    await rm(join(src, 'q', 'old'));
    now = A + 60_000;
    const second = start();
    second.start();
    try {
      await second.syncNow();
    } finally {
      await second.stop();
    }
    // The journal says which changes happened while nobody watched, and when that ended.
    const segment = decodeSegment(await readFile(join(archive, 'files', 'spool', 'journal', '0000000001.jnl'))).lines;
    const found = segment.filter((l) => 'u' in l);
    expect(found.map((l) => (l as { u?: number }).u)).toEqual(found.map(() => A));
    expect(found.length).toBeGreaterThanOrEqual(4);
    expect(segment.at(-1)).toMatchObject({ op: 'seen', t: A + 60_000 });

    const T = A + 30_000;
    const [r] = await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'at-t'), untilMs: T, logger: silentLogger() });
    expect(r).toMatchObject({ uncertain: { fromMs: A, toMs: A + 60_000, unplaced: 1, unplacedNamed: ['removed q/old'] } });
    expect(r?.uncertainWhy).toContain(`their state at ${new Date(T).toISOString()} is not known`);
    const restored = join(dir, 'at-t', 'spool');
    expect(await readFile(join(restored, 'gw.dat'), 'utf8')).toBe('sample-1\nsample-2\n');
    expect(await readFile(join(restored, 'markers', 'M14.txt'), 'utf8')).toBe('M14\n');
    expect(existsSync(join(restored, 'late.dat'))).toBe(false);
    expect(await readFile(join(restored, 'q', 'old'), 'utf8')).toBe('queued before\n');
    // Before the window and after it: the states the archive knows exactly, no warning.
    const [before] = await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'before'), untilMs: A, logger: silentLogger() });
    expect(before?.uncertain).toBeUndefined();
    expect(await readFile(join(dir, 'before', 'spool', 'gw.dat'), 'utf8')).toBe('sample-1\n');
    const [end] = await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'end'), logger: silentLogger() });
    expect(end?.uncertain).toBeUndefined();
    expect(treeDiff(await describeTree(src), await describeTree(join(dir, 'end', 'spool')))).toEqual([]);
  });

  it('changes made while the standby was away: the window starts when its session closed', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'gw.dat'), 'sample-1\n');
    const sources = [spoolSourceSchema.parse({ name: 'spool', path: src })];
    const target = new FileTarget({ name: 'standby-a', path: archive, logger: silentLogger(), clock: systemClock, syncBatchBytesMax: MiB });
    const session$ = new BehaviorSubject<ReplicaSession | undefined>(undefined);
    let now = Math.floor(Date.now() / 1000) * 1000 + 3_600_000;
    const spool = new ReplicaSpool({ sources, session$, logger: silentLogger(), clock: { nowMs: () => now }, tuning: { watch: false } });
    const journal = async (): Promise<JournalLine[]> => decodeSegment((await readFile(join(archive, 'files', 'spool', 'journal', '0000000001.jnl')).catch(() => Buffer.alloc(0)))).lines;
    spool.start();
    let session: ReplicaSession | undefined;
    try {
      session = await target.open({ serverId: 1, serverUuid: null, flavor: 'mariadb', version: '11', hostname: 'h', binlogBasename: 'mysql-bin' });
      session$.next(session);
      await waitFor('the first pass committed', async () => (await journal()).some((l) => l.op === 'file') && spool.snapshot().pendingChanges === 0, 10_000, 10);
      // The standby goes 100 s after the last change was recorded: the window starts there, not at that change.
      now += 100_000;
      const A = now;
      session$.next(undefined);
      await waitFor('the syncers to stop', () => !spool.syncing, 10_000, 10);
      await appendFile(join(src, 'gw.dat'), 'sample-2\n');
      await utimes(join(src, 'gw.dat'), (A + 5_000) / 1000, (A + 5_000) / 1000);
      now = A + 10_000;
      session$.next(session);
      await waitFor('the window closed', async () => (await journal()).some((l) => l.op === 'seen'), 10_000, 10);
      const appended = (await journal()).find((l) => l.op === 'file' && 'u' in l);
      expect(appended).toMatchObject({ path: 'gw.dat', u: A, t: A + 10_000 });
      const [r] = await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'at-t'), untilMs: A + 7_000, logger: silentLogger() });
      expect(r?.uncertain).toMatchObject({ fromMs: A, placedBefore: 1 });
      expect(await readFile(join(dir, 'at-t', 'spool', 'gw.dat'), 'utf8')).toBe('sample-1\nsample-2\n');
      // Watched then: no window, no warning.
      const [watched] = await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'watched'), untilMs: A - 50_000, logger: silentLogger() });
      expect(watched?.uncertain).toBeUndefined();
    } finally {
      await spool.stop();
      await session?.close();
    }
  });

  it('runs with the agent: per-replica syncers on the session, counters, and post-promotion hooks', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'seqno'), '41\n');
    const marker = join(dir, 'hook-ran');
    const sources = [spoolSourceSchema.parse({ name: 'spool', path: src, hooks: [{ run: `echo "$HOTSPARE_SOURCE_NAME $HOTSPARE_RESTORE_POINT_TIME $(cat "$HOTSPARE_SOURCE_PATH/seqno")" > ${marker}` }] })];
    const target = new FileTarget({ name: 'standby-a', path: archive, logger: silentLogger(), clock: systemClock, syncBatchBytesMax: MiB });
    const session = await target.open({ serverId: 1, serverUuid: null, flavor: 'mariadb', version: '11', hostname: 'h', binlogBasename: 'mysql-bin' });
    const session$ = new BehaviorSubject<ReplicaSession | undefined>(undefined);
    const spool = new ReplicaSpool({ sources, session$, logger: silentLogger(), clock: systemClock });
    spool.start();
    session$.next(session);
    await writeFile(join(src, 'seqno'), '42\n');
    // The watcher brings the change in without a rescan; poll for it in the archive.
    for (;;) {
      const restored = join(dir, `poll-${Date.now()}`);
      await restoreSpool({ archiveDir: archive, filesRoot: restored, logger: silentLogger() }).catch(() => []);
      if (existsSync(join(restored, 'spool', 'seqno')) && (await readFile(join(restored, 'spool', 'seqno'), 'utf8')) === '42\n') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(spool.snapshot().bytesShippedTotal).toBeGreaterThan(0);
    session$.next(undefined);
    await spool.stop();
    await session.close();

    const results = await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'promoted'), logger: silentLogger() });
    const hooks = await runPromotionHooks({ archiveDir: archive, restorePoint: { timeMs: results[0]?.pointMs ?? 0 }, filesRoot: join(dir, 'promoted'), logger: silentLogger() });
    expect(hooks).toEqual([expect.objectContaining({ source: 'spool', exitCode: 0, timedOut: false })]);
    expect(await readFile(marker, 'utf8')).toBe(`spool ${new Date(results[0]?.pointMs ?? 0).toISOString()} 42\n`);
  });
});
