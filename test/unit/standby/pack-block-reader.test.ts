import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { packPath } from '../../../src/spool/spool-format.js';
import { PackBlockReader } from '../../../src/standby/pack-block-reader.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hotspare-packs-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function pack(seq: number, bytes: string): Promise<void> {
  const path = join(dir, packPath('src', seq));
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, bytes);
}

describe('PackBlockReader', () => {
  it('reads a block whole or from its pieces in several packs, in order', async () => {
    await pack(1, 'xxHEADyy');
    await pack(2, 'TAIL');
    const reader = new PackBlockReader(dir, 'src');
    try {
      expect(await reader.read([[1, 2, 4]])).toEqual({ kind: 'read', bytes: Buffer.from('HEAD') });
      expect(await reader.read([[1, 2, 4], [2, 0, 4], [1, 6, 2]])).toEqual({ kind: 'read', bytes: Buffer.from('HEADTAILyy') });
    } finally {
      await reader.close();
    }
  });

  it('names a missing pack and one that ends before a piece', async () => {
    await pack(1, 'HEAD');
    const reader = new PackBlockReader(dir, 'src');
    try {
      expect(await reader.read([[1, 0, 4], [3, 0, 4]])).toEqual({ kind: 'missing', pack: 3 });
      expect(await reader.read([[1, 2, 4]])).toEqual({ kind: 'short', pack: 1, end: 6 });
    } finally {
      await reader.close();
    }
  });
});
