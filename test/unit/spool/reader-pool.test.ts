import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import type { ReaderConfig } from '../../../src/spool/file-reader.js';
import { ReaderPool } from '../../../src/spool/reader-pool.js';

const CONFIG: ReaderConfig = { blockBytes: 64 * 1024, blockHash: 'sha256', readBytes: 256 * 1024, buffers: 2, attempts: 2, endsPerMessage: 4 };

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-reader-pool-'));
  await mkdir(join(dir, 'src'));
  await writeFile(join(dir, 'src', 'a'), 'a');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ReaderPool', () => {
  it('lends a released reader, with its thread, to the next caller of the same config, and a new one for another config', async () => {
    const pool = new ReaderPool();
    const first = pool.acquire(CONFIG, 10_000, silentLogger());
    expect((await first.scan(join(dir, 'src'), [''], [], [])).found.has('a')).toBe(true);
    pool.release(first);
    expect(pool.kept).toBe(1);
    const again = pool.acquire({ ...CONFIG }, 10_000, silentLogger());
    expect(again).toBe(first);
    expect(pool.kept).toBe(0);
    // Still works after being handed on.
    expect((await again.scan(join(dir, 'src'), [''], [], [])).found.has('a')).toBe(true);
    pool.release(again);
    const other = pool.acquire({ ...CONFIG, blockBytes: 4096 }, 10_000, silentLogger());
    expect(other).not.toBe(first);
    const otherIdle = pool.acquire(CONFIG, 1_000, silentLogger());
    expect(otherIdle).not.toBe(first);
    await Promise.all([first.close(), other.close(), otherIdle.close()]);
  });

  it('never lends one reader to two callers at once', async () => {
    const pool = new ReaderPool();
    const a = pool.acquire(CONFIG, 10_000, silentLogger());
    const b = pool.acquire(CONFIG, 10_000, silentLogger());
    expect(b).not.toBe(a);
    pool.release(a);
    pool.release(a);
    // Released twice by mistake: kept once, never lent twice.
    expect(pool.kept).toBe(1);
    expect(pool.acquire(CONFIG, 10_000, silentLogger())).toBe(a);
    expect(pool.acquire(CONFIG, 10_000, silentLogger())).not.toBe(a);
    await Promise.all([a.close(), b.close()]);
  });

  it('closes a reader released with work under way instead of keeping it, and keeps at most idleMax', async () => {
    const pool = new ReaderPool(1);
    const busy = pool.acquire(CONFIG, 10_000, silentLogger());
    const scan = busy.scan(join(dir, 'src'), [''], [], []);
    pool.release(busy);
    expect(pool.kept).toBe(0);
    await expect(scan).rejects.toMatchObject({ code: 'SPOOL_STOPPED' });
    const a = pool.acquire(CONFIG, 10_000, silentLogger());
    const b = pool.acquire(CONFIG, 10_000, silentLogger());
    pool.release(a);
    pool.release(b);
    expect(pool.kept).toBe(1);
    // b was closed: a new job starts a thread of its own again, so it still works.
    expect((await b.scan(join(dir, 'src'), [''], [], [])).found.has('a')).toBe(true);
    await Promise.all([a.close(), b.close()]);
  });
});
