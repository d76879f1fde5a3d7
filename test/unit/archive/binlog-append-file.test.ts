import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { within } from '../../../src/platform/within.js';
import { failingDirectOpen, volumeTakesDirect } from '../../support/direct-io.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BinlogAppendFile, DirectAppendBuffers } from '../../../src/archive/binlog-append-file.js';

// Goal: whatever the sizes appended (within a block, across blocks, many buffers at once), the
// file holds exactly the bytes appended, with O_DIRECT (whole blocks) and without; reopened at
// any end or cut back, it goes on exactly there.

const dir = mkdtempSync(join(tmpdir(), 'hotspare-append-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Small buffers and blocks, so that every case (head, whole blocks, several buffers in flight) is hit. */
const limits = { alignBytes: 4096, buffers: 3, bufferBytes: 8192 };

/** Appends of sizes around the block and buffer sizes, some as several buffers at once. */
function appends(seed: number): Buffer[][] {
  const sizes = [4, 1, 4091, 4096, 1, 3000, 9000, 8192, 0, 12_288, 17, 40_000, 4095, 2, 65_536, 5];
  return sizes.map((n, i) => {
    const bytes = randomBytes(n + ((seed * 7 + i) % 3));
    // Every third append arrives as three buffers.
    return i % 3 === 0 ? [bytes.subarray(0, bytes.length >> 2), bytes.subarray(bytes.length >> 2, bytes.length >> 1), bytes.subarray(bytes.length >> 1)] : [bytes];
  });
}

/** Takes every buffer of the pool (and gives them back); hangs (and the test times out) if one is missing. */
async function takeAll(buffers: DirectAppendBuffers): Promise<number> {
  const taken = await within(Promise.all(Array.from({ length: limits.buffers }, () => buffers.pool.take())), 2_000);
  if (taken === undefined) throw new Error('a buffer never came back to the pool');
  for (const buf of taken.value) buffers.pool.give(buf);
  return taken.value.length;
}

describe('BinlogAppendFile', () => {
  for (const direct of [true, false]) {
    it(`holds exactly what was appended, ${direct ? 'with O_DIRECT for whole blocks' : 'through the page cache'}`, async () => {
      const buffers = new DirectAppendBuffers(limits);
      buffers.enabled = buffers.enabled && direct;
      const path = join(dir, `append-${direct}`);
      const file = await BinlogAppendFile.create(path, 0o640, buffers);
      const expected: Buffer[] = [];
      try {
        for (const data of appends(1)) {
          await file.append(data);
          expected.push(...data);
          // After every append, not only at the end: the partial block is on file too.
          expect(readFileSync(path).equals(Buffer.concat(expected))).toBe(true);
        }
        expect(file.end).toBe(Buffer.concat(expected).length);
        // Whole blocks went direct where the volume takes O_DIRECT; where it refuses, none did.
        if (direct && (await volumeTakesDirect(dir))) expect(file.directBytes).toBeGreaterThan(0);
        else expect(file.directBytes).toBe(0);
        await file.datasync();
      } finally {
        await file.close();
      }
    });
  }

  it('reopened at an end that is not on a block, and cut back, it appends exactly there', async () => {
    const buffers = new DirectAppendBuffers(limits);
    const path = join(dir, 'reopen');
    const start = randomBytes(4096 * 3 + 123);
    writeFileSync(path, start);
    const more = randomBytes(20_000);
    const file = await BinlogAppendFile.openAt(path, start.length, buffers);
    try {
      await file.append([more]);
      expect(readFileSync(path).equals(Buffer.concat([start, more]))).toBe(true);
      // Cut back into the middle of a block, then appended again: the block's first bytes stay.
      const cut = start.length + 5000;
      await file.truncate(cut);
      const after = randomBytes(10_000);
      await file.append([after]);
      expect(readFileSync(path).equals(Buffer.concat([start, more.subarray(0, 5000), after]))).toBe(true);
    } finally {
      await file.close();
    }
  });

  it('edge cases: an append that ends on a block, reopening at a block, cutting back below the direct blocks, closing unused', async () => {
    const buffers = new DirectAppendBuffers(limits);
    const path = join(dir, 'edges');
    const unused = await BinlogAppendFile.create(join(dir, 'unused'), 0o640, buffers);
    await unused.close();
    expect(readFileSync(join(dir, 'unused')).length).toBe(0);

    const first = randomBytes(4096 * 3);
    const file = await BinlogAppendFile.create(path, 0o640, buffers);
    await file.append([first.subarray(0, 100), first.subarray(100)]);
    expect(file.end).toBe(4096 * 3);
    await file.close();
    // Reopened exactly on a block: nothing to read back.
    const again = await BinlogAppendFile.openAt(path, 4096 * 3, buffers);
    try {
      const more = randomBytes(4096 * 2 + 10);
      await again.append([more]);
      expect(readFileSync(path).equals(Buffer.concat([first, more]))).toBe(true);
      // Cut back to a block boundary, then to the middle of the first block (both below blocks written directly).
      await again.truncate(4096 * 2);
      await again.append([Buffer.from('x')]);
      expect(readFileSync(path).equals(Buffer.concat([first.subarray(0, 4096 * 2), Buffer.from('x')]))).toBe(true);
      await again.truncate(10);
      const tail = randomBytes(9000);
      await again.append([tail]);
      expect(readFileSync(path).equals(Buffer.concat([first.subarray(0, 10), tail]))).toBe(true);
    } finally {
      await again.close();
    }
  });

  it('a direct write refused with EINVAL midway: the same bytes through the page cache, and no more direct writes', async () => {
    const failing = failingDirectOpen(2, 'EINVAL', 'invalid argument');
    const buffers = new DirectAppendBuffers(limits, { openDirect: failing.openDirect });
    const path = join(dir, 'einval');
    const file = await BinlogAppendFile.create(path, 0o640, buffers);
    const data = [randomBytes(30_000), randomBytes(20_000)];
    try {
      await file.append([data[0] as Buffer]);
      const writesBefore = failing.writes();
      await file.append([data[1] as Buffer]);
      expect(readFileSync(path).equals(Buffer.concat(data))).toBe(true);
      expect(buffers.enabled).toBe(false);
      expect(failing.writes()).toBe(writesBefore);
    } finally {
      await file.close();
    }
    // Every buffer came back to the pool.
    await expect(takeAll(buffers)).resolves.toBe(limits.buffers);
  });

  it('a direct write that fails (a full disk): the append fails, and every buffer comes back', async () => {
    const failing = failingDirectOpen(2, 'ENOSPC', 'no space left on device');
    const buffers = new DirectAppendBuffers(limits, { openDirect: failing.openDirect });
    const file = await BinlogAppendFile.create(join(dir, 'enospc'), 0o640, buffers);
    try {
      if (await volumeTakesDirect(dir)) {
        await expect(file.append([randomBytes(60_000)])).rejects.toThrow('no space left on device');
        expect(buffers.enabled).toBe(true);
      } else {
        // Where the volume refuses O_DIRECT nothing goes direct, and the append succeeds buffered.
        await file.append([randomBytes(60_000)]);
        expect(failing.writes()).toBe(0);
      }
    } finally {
      await file.close();
    }
    await expect(takeAll(buffers)).resolves.toBe(limits.buffers);
  });

  it('no aligned memory to be had (an address-space limit): the same bytes through the page cache', async () => {
    const buffers = new DirectAppendBuffers(limits);
    buffers.pool.take = () => Promise.reject(new RangeError('WebAssembly.Memory(): could not allocate memory'));
    const path = join(dir, 'no-memory');
    const file = await BinlogAppendFile.create(path, 0o640, buffers);
    const data = randomBytes(50_000);
    try {
      await file.append([data]);
      expect(readFileSync(path).equals(data)).toBe(true);
      expect(file.directBytes).toBe(0);
      expect(buffers.enabled).toBe(false);
    } finally {
      await file.close();
    }
  });

  it('refuses limits that would hang or never be aligned', () => {
    expect(() => new DirectAppendBuffers({ alignBytes: 4096, buffers: 0, bufferBytes: 8192 })).toThrow(/at least one buffer/);
    expect(() => new DirectAppendBuffers({ alignBytes: 4096, buffers: 2, bufferBytes: 5000 })).toThrow(/not whole blocks/);
  });

  it('refuses to reopen past the end of the file', async () => {
    const path = join(dir, 'short');
    writeFileSync(path, randomBytes(100));
    await expect(BinlogAppendFile.openAt(path, 200, new DirectAppendBuffers(limits))).rejects.toThrow(/ends before 200/);
  });
});
