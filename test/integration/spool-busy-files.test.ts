import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { captureLogger } from '../support/capture-logger.js';
import { trackChild } from '../support/live-children.js';
import type { SpoolSyncer } from '../../src/spool/spool-syncer.js';
import { localSyncer, restoredDiff } from '../support/spool-pass.js';
import { waitFor } from '../support/wait.js';

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-spool-busy-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/**
 * Another process writing to `path` without pause until killed, as a gateway's log or a busy
 * data file is written: `append` adds a 100-byte line about every millisecond; `sweep` rewrites
 * the file in place block after block, over and over, each block starting with the sweep's
 * number and its own index (so a copy tells which sweep each block came from).
 */
async function startWriter(path: string, how: 'append' | 'sweep'): Promise<ChildProcess> {
  const script =
    how === 'append'
      ? `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'a'); const pause = new Int32Array(new SharedArrayBuffer(4));
         for (let n = 0; ; n++) { fs.writeSync(fd, 'line ' + String(n).padStart(10, '0') + ' ' + 'x'.repeat(83) + '\\n'); if (n === 0) process.stdout.write('ready\\n'); Atomics.wait(pause, 0, 0, 1); }`
      : `const fs = require('fs'); const fd = fs.openSync(process.argv[1], 'r+'); const B = ${BLOCK}; const n = fs.fstatSync(fd).size / B; const buf = Buffer.alloc(B);
         for (let v = 1; ; v++) { for (let k = 0; k < n; k++) { buf.fill(v & 255); buf.writeUInt32LE(v, 0); buf.writeUInt32LE(k, 4); fs.writeSync(fd, buf, 0, B, k * B); } if (v === 1) process.stdout.write('ready\\n'); }`;
  const child = spawn(process.execPath, ['-e', script, path], { stdio: ['ignore', 'pipe', 'inherit'] });
  trackChild(child);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`writer exited early (${code})`)));
  });
  return child;
}

async function stopWriter(child: ChildProcess): Promise<void> {
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

async function restored(archive: string, to: string): Promise<string> {
  await restoreSpool({ archiveDir: archive, filesRoot: to, logger: silentLogger() });
  return join(to, 'busy');
}

/**
 * A started syncer of `src` (made here) whose `gateway.log` changes under every read of it (each
 * attempt's open is followed by an append, as a busy log's would be) until `quiet()`, so it
 * pauses for a minute after its first pass; watched or not.
 */
async function pausingLog(watch: boolean): Promise<{ src: string; archive: string; log: string; s: SpoolSyncer; lines: ReturnType<typeof captureLogger>['lines']; quiet: () => void }> {
  const src = join(dir, 'src');
  const archive = join(dir, 'archive');
  await mkdir(src);
  const log = join(src, 'gateway.log');
  await writeFile(log, randomBytes(200_000));
  let busy = true;
  const { logger, lines } = captureLogger();
  const s = localSyncer('busy', src, archive, {
    logger,
    tuning: { watch, readAttempts: 2, racyWindowMs: 0, unstableRetryMsMin: 60_000, unstableRetryMsMax: 60_000 },
    beforeRead: async (path) => {
      if (path === 'gateway.log' && busy) await appendFile(log, 'x'.repeat(100));
    },
  });
  s.start();
  return { src, archive, log, s, lines, quiet: () => (busy = false) };
}

/**
 * A gateway's log of 24 MiB (large enough that every read of it spans many appends) appended to
 * every millisecond beside a quiet `seqno`, synced once while the writer runs (`busy` asserts on
 * that pass: its log lines, the log as restored then, or undefined when none was archived, and
 * the log as it is now), then once quiet: the restored tree must then be the source's.
 */
async function appendedLog(appendOnly: string[], busy: (lines: ReturnType<typeof captureLogger>['lines'], copy: Buffer | undefined, now: Buffer) => void): Promise<void> {
  const src = join(dir, 'src');
  const archive = join(dir, 'archive');
  await mkdir(src);
  const log = join(src, 'gateway.log');
  await writeFile(log, randomBytes(24 * MiB));
  await writeFile(join(src, 'seqno'), '41\n');
  const { logger, lines } = captureLogger();
  const s = localSyncer('busy', src, archive, { logger, appendOnly });
  const writer = await startWriter(log, 'append');
  try {
    s.start();
    await s.syncNow();
    const copy = join(await restored(archive, join(dir, 'r1')), 'gateway.log');
    busy(lines, existsSync(copy) ? await readFile(copy) : undefined, await readFile(log));
    expect(await readFile(join(dir, 'r1', 'busy', 'seqno'), 'utf8')).toBe('41\n');
  } finally {
    await stopWriter(writer);
  }
  try {
    await s.syncNow();
    expect(await restoredDiff(archive, src, join(dir, 'r2'), 'busy')).toEqual([]);
  } finally {
    await s.stop();
  }
}

describe('spool files written to without pause', () => {
  it('a file appended every millisecond, named in appendOnly, ships as it was when its read began, and whole once quiet', async () => {
    await appendedLog(['*.log'], (lines, copy, now) => {
      // Not named, every attempt sees the file grow, and after five the archive has nothing of it (the next test).
      expect(lines().filter((l) => l['code'] === 'SPOOL_FILE_UNSTABLE')).toEqual([]);
      expect(lines().some((l) => l['code'] === 'SPOOL_FILE_GREW' && l['path'] === 'gateway.log')).toBe(true);
      expect(copy?.length).toBeGreaterThanOrEqual(24 * MiB);
      expect(copy?.length).toBeLessThan(now.length);
      // A prefix of the file: the bytes it held when the read began, no byte of another version.
      expect(copy?.equals(now.subarray(0, copy.length))).toBe(true);
    });
  });

  it('a file appended every millisecond and not named in appendOnly waits until quiet: never archived torn, the warning says how to ship it', async () => {
    await appendedLog([], (lines, copy, now) => {
      // Nothing outside the writer tells an append from a rewrite that makes the file larger: the
      // warning names the setting that does.
      for (const l of lines().filter((l) => l['code'] === 'SPOOL_FILE_UNSTABLE')) expect(String(l['hint'])).toContain('appendOnly');
      // Had a version been archived, it would be one the file held: a prefix of it, as it is now.
      if (copy !== undefined) expect(copy.equals(now.subarray(0, copy.length))).toBe(true);
    });
  });

  // At 0.8x: the syncer's clock runs slower than its timers, as when a timer fires a few
  // milliseconds before the clock reaches the end of the pause; the mark it made was dropped
  // then, and the quiet log was never read again (seen once in CI). That clock also gives
  // fractions of a millisecond, which failed every pass that shipped a file (BigInt of the time)
  // into the syncer's backoff, so that the quiet log waited 25 s or more (twice in CI).
  it.each([1, 0.8])('a file that changes under every read is read again only after a pause that doubles, and waits in the lag figures meanwhile (clock at %sx)', async (speed) => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const log = join(src, 'gateway.log');
    await writeFile(log, randomBytes(16 * MiB));
    let reads = 0;
    const { logger, lines } = captureLogger();
    // Watched: the file's own events ask for a pass a thousand times a second.
    const zero = Date.now();
    const s = localSyncer('busy', src, archive, {
      logger,
      clock: { nowMs: () => zero + (Date.now() - zero) * speed },
      tuning: { watch: true, readAttempts: 2, unstableRetryMsMin: 400, unstableRetryMsMax: 800 },
      beforeRead: (path) => {
        if (path === 'gateway.log') reads++;
      },
    });
    const writer = await startWriter(log, 'append');
    const startedMs = Date.now();
    try {
      s.start();
      const unstable = (): number => lines().filter((l) => l['code'] === 'SPOOL_FILE_UNSTABLE').length;
      // Three passes that found it changing: read at once, then after 400 ms, then after 800.
      await waitFor('three passes that found the log changing', () => unstable() >= 3, 20_000, 20);
      // Before, each of its events was a pass that read it twice again, and three came within
      // a fraction of a second.
      expect(Date.now() - startedMs).toBeGreaterThanOrEqual(400 + 800);
      expect(reads).toBeLessThanOrEqual(2 * (unstable() + 1));
      expect(lines().filter((l) => l['code'] === 'SPOOL_FILE_UNSTABLE').map((l) => l['retryMs'])).toEqual([400, 800, 800].slice(0, unstable()));
      // Its change waits, counted since the first pass, not since the last look.
      const { pendingChanges, oldestPendingMs } = s.snapshot();
      expect(pendingChanges).toBeGreaterThanOrEqual(1);
      expect(oldestPendingMs).toBeGreaterThanOrEqual(1000 * speed);
    } finally {
      await stopWriter(writer);
    }
    try {
      // Quiet again: shipped once its pause ends, without being asked.
      try {
        await waitFor('the quiet log to be archived', async () => (await restoredDiff(archive, src, join(dir, `r-${Date.now()}`), 'busy')).length === 0, 20_000, 200);
      } catch (err) {
        // A pass that failed (into the syncer's backoff) is the likeliest cause: show its error.
        expect(lines().filter((l) => (l['level'] as number) >= 50)).toEqual([]);
        throw err;
      }
      await waitFor('nothing pending', () => s.snapshot().pendingChanges === 0, 5_000, 20);
      expect(lines().filter((l) => (l['level'] as number) >= 50)).toEqual([]);
    } finally {
      await s.stop();
    }
  });

  it.each(['a link', 'a folder'])('a file that changed under every read and was then replaced by %s no longer waits in the lag figures', async (what) => {
    const { src, archive, log, s, lines, quiet } = await pausingLog(false);
    try {
      await s.syncNow();
      expect(lines().filter((l) => l['code'] === 'SPOOL_FILE_UNSTABLE')).toHaveLength(1);
      expect(s.snapshot().pendingChanges).toBe(1);
      quiet();
      await rm(log);
      if (what === 'a link') await symlink('gateway.log.1', log);
      else await mkdir(log);
      await s.syncNow();
      expect(await restoredDiff(archive, src, join(dir, 'r'), 'busy')).toEqual([]);
      // Nothing waits: the path holds no file to read any more.
      expect(s.snapshot()).toMatchObject({ pendingChanges: 0, oldestPendingMs: 0 });
    } finally {
      await s.stop();
    }
  });

  it('a log rotated while its path pauses: the new file at the path ships at once (watched), not when the old one\'s pause ends', async () => {
    const { src, archive, log, s, lines, quiet } = await pausingLog(true);
    try {
      await waitFor('the log to pause', () => lines().some((l) => l['code'] === 'SPOOL_FILE_UNSTABLE'), 10_000, 10);
      quiet();
      // Rotated: the busy file moves aside, quiet now, and a new one takes its path.
      await rename(log, `${log}.1`);
      await writeFile(log, 'a new log\n');
      // Only the watcher's passes (a syncNow() would read a pausing file anyway); the pause is a minute.
      await waitFor('the rotated tree archived', async () => (await restoredDiff(archive, src, join(dir, `r-${Date.now()}`), 'busy')).length === 0, 10_000, 100);
      await waitFor('nothing pending', () => s.snapshot().pendingChanges === 0, 5_000, 20);
    } finally {
      await s.stop();
    }
  });

  it('a file rewritten in place without pause is never archived torn, named in appendOnly or not: the archive keeps its last whole version', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    const data = join(src, 'feed.dat');
    await writeFile(data, Buffer.alloc(8 * MiB, 0));
    const { logger, lines } = captureLogger();
    // Named append-only by mistake: its second reads still disagree.
    const s = localSyncer('busy', src, archive, { logger, tuning: { readAttempts: 2 }, appendOnly: ['*.dat'] });
    s.start();
    try {
      const writer = await startWriter(data, 'sweep');
      try {
        await s.syncNow();
      } finally {
        await stopWriter(writer);
      }
      const unstable = lines().some((l) => l['code'] === 'SPOOL_FILE_UNSTABLE' && l['path'] === 'feed.dat');
      const copy = join(await restored(archive, join(dir, 'r1')), 'feed.dat');
      // Nothing archived: only because each attempt's second read found blocks the sweep had
      // rewritten since the first. (Usually so; but with the machine's cores busy, the writer may
      // sit unscheduled through both reads of an attempt, which then agree: seen 5 times in 15 runs
      // beside four busy loops.)
      if (!existsSync(copy)) expect(unstable).toBe(true);
      else {
        // Had a version been archived, it would be one the file held: blocks 0..j-1 of one sweep,
        // the rest of the sweep before (never a block newer than one before it, nor two sweeps apart).
        const bytes = await readFile(copy);
        const sweeps = Array.from({ length: bytes.length / BLOCK }, (_, k) => bytes.readUInt32LE(k * BLOCK));
        expect(sweeps.every((v, k) => k === 0 || (v <= (sweeps[k - 1] as number) && (sweeps[0] as number) - v <= 1))).toBe(true);
      }
      // Quiet again: the file ships, as it is.
      await s.syncNow();
      expect(await restoredDiff(archive, src, join(dir, 'r2'), 'busy')).toEqual([]);
    } finally {
      await s.stop();
    }
  });
});
