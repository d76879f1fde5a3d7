import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeAllAt, writevAllAt } from '../../../src/platform/sliced-write.js';

describe('sliced writes', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-sliced-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  // Buffers of sizes around the slice: smaller, equal, larger, several times larger, empty.
  const buffers = [1, 6, 7, 8, 0, 23, 3, 14, 50].map((n, i) => Buffer.alloc(n, 65 + i));
  const whole = Buffer.concat(buffers);

  it('writev: every byte at its place, whatever the buffers and the slice, from any position', async () => {
    for (const slice of [1, 5, 7, 8, 64, 1024]) {
      const path = join(dir, `v-${slice}`);
      const handle = await open(path, 'w+');
      try {
        await handle.write(Buffer.from('head'), 0, 4, 0);
        await writevAllAt(handle, buffers, 4, slice);
      } finally {
        await handle.close();
      }
      expect(readFileSync(path)).toEqual(Buffer.concat([Buffer.from('head'), whole]));
    }
  });

  it('writev: slices in flight together land whole, at every concurrency', async () => {
    for (const inFlight of [1, 2, 3, 16]) {
      const path = join(dir, `f-${inFlight}`);
      const handle = await open(path, 'w+');
      try {
        await writevAllAt(handle, buffers, 0, 5, inFlight);
      } finally {
        await handle.close();
      }
      expect(readFileSync(path)).toEqual(whole);
    }
  });

  it('writev: short writes go on where they stopped, in every slice', async () => {
    const path = join(dir, 'short');
    const real = await open(path, 'w+');
    // The kernel may write less than asked; this handle writes at most 3 bytes per call.
    const stingy = {
      writev: (list: Buffer[], position: number) => real.writev([Buffer.concat(list).subarray(0, 3)], position),
    } as unknown as FileHandle;
    try {
      await writevAllAt(stingy, buffers, 0, 8, 4);
    } finally {
      await real.close();
    }
    expect(readFileSync(path)).toEqual(whole);
  });

  it('writev: a failed slice fails the whole write, after the slices in flight settle', async () => {
    const path = join(dir, 'fail');
    const real = await open(path, 'w+');
    let settled = 0;
    const failing = {
      writev: async (list: Buffer[], position: number) => {
        if (position === 8) throw Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
        const result = await real.writev(list, position);
        settled += 1;
        return result;
      },
    } as unknown as FileHandle;
    try {
      await expect(writevAllAt(failing, buffers, 0, 8, 3)).rejects.toThrow('no space left on device');
      // Slices other than the failed one were written or stopped: none is still running.
      const after = settled;
      await new Promise((r) => setImmediate(r));
      expect(settled).toBe(after);
    } finally {
      await real.close();
    }
  });

  it('write: one buffer cut into slices lands whole', async () => {
    for (const slice of [1, 3, 112, 4096]) {
      const path = join(dir, `w-${slice}`);
      const handle = await open(path, 'w+');
      try {
        await writeAllAt(handle, whole, 10, slice);
      } finally {
        await handle.close();
      }
      expect(readFileSync(path)).toEqual(Buffer.concat([Buffer.alloc(10), whole]));
    }
  });
});
