import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
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
