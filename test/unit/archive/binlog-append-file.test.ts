import { randomBytes } from 'node:crypto';
import { constants, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
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

/** Whether the test folder's file system takes O_DIRECT (tmpfs, for one, refuses it). */
async function volumeTakesDirect(): Promise<boolean> {
  const O_DIRECT = (constants as { O_DIRECT?: number }).O_DIRECT;
  if (O_DIRECT === undefined) return false;
  const probe = join(dir, 'probe');
  writeFileSync(probe, '');
  try {
    await (await open(probe, constants.O_WRONLY | O_DIRECT)).close();
    return true;
  } catch {
    return false;
  }
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
        if (direct && (await volumeTakesDirect())) expect(file.directBytes).toBeGreaterThan(0);
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

  it('refuses to reopen past the end of the file', async () => {
    const path = join(dir, 'short');
    writeFileSync(path, randomBytes(100));
    await expect(BinlogAppendFile.openAt(path, 200, new DirectAppendBuffers(limits))).rejects.toThrow(/ends before 200/);
  });
});
