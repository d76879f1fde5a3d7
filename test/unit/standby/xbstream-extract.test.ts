import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { HotspareError } from '../../../src/core/errors.js';
import { extractXbstream } from '../../../src/standby/xbstream-extract.js';
import { xbstreamChunk as chunk } from '../../support/xbstream-chunk.js';

const root = mkdtempSync(join(tmpdir(), 'hotspare-xbstream-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let runs = 0;

/** Writes the stream to a file and extracts it into a fresh folder; the folder, and the outcome. */
async function extract(parts: Buffer[], options: { readBytes?: number; sliceBytes?: number; openFilesMax?: number } = {}): Promise<{ dest: string; result: Promise<{ files: number; bytes: number }> }> {
  runs += 1;
  const stream = join(root, `stream-${runs}.xb`);
  const dest = join(root, `out-${runs}`);
  writeFileSync(stream, Buffer.concat(parts));
  mkdirSync(dest);
  const result = extractXbstream(stream, dest, options).done;
  result.catch(() => undefined);
  return { dest, result };
}

async function codeOf(result: Promise<unknown>): Promise<string> {
  const err = await result.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(HotspareError);
  return (err as HotspareError).code;
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));

describe('extractXbstream (what mbstream -x does, for an uncompressed mariabackup stream)', () => {
  it('writes interleaved files at their offsets, in folders, and empty files from an end chunk alone', async () => {
    const big = bytes(300_000, 1);
    const small = bytes(1000, 2);
    const { dest, result } = await extract([
      chunk('P', 'ibdata1', { offset: 0, data: big.subarray(0, 120_000) }),
      chunk('P', 'db/t.ibd', { offset: 0, data: small.subarray(0, 600) }),
      chunk('P', 'ibdata1', { offset: 120_000, data: big.subarray(120_000) }),
      chunk('P', 'db/t.ibd', { offset: 600, data: small.subarray(600) }),
      chunk('E', 'db/t.ibd'),
      chunk('E', 'db/empty.MAD'),
      chunk('E', 'ibdata1'),
    ], { readBytes: 64 * 1024, sliceBytes: 16 * 1024 });
    expect(await result).toEqual({ files: 3, bytes: big.length + small.length });
    expect(readFileSync(join(dest, 'ibdata1')).equals(big)).toBe(true);
    expect(readFileSync(join(dest, 'db/t.ibd')).equals(small)).toBe(true);
    expect(readFileSync(join(dest, 'db/empty.MAD')).length).toBe(0);
    // mbstream's modes: folders 0700, files 0640.
    expect(statSync(join(dest, 'db')).mode & 0o777).toBe(0o700);
    expect(statSync(join(dest, 'ibdata1')).mode & 0o777).toBe(0o640);
  });

  it('a chunk larger than the read buffer is written in pieces, its CRC-32 checked over all of them', async () => {
    const data = bytes(200_000, 3);
    const { dest, result } = await extract([chunk('P', 'big', { offset: 0, data }), chunk('E', 'big')], { readBytes: 4096, sliceBytes: 1000 });
    expect(await result).toEqual({ files: 1, bytes: data.length });
    expect(readFileSync(join(dest, 'big')).equals(data)).toBe(true);
    // Writes larger than a read (the slice is cut to the read size).
    const wide = await extract([chunk('P', 'big', { offset: 0, data }), chunk('E', 'big')], { readBytes: 4096, sliceBytes: 65536 });
    expect(await wide.result).toEqual({ files: 1, bytes: data.length });
    expect(readFileSync(join(wide.dest, 'big')).equals(data)).toBe(true);
  });

  it('refuses damage with XBSTREAM_DAMAGED: a flipped payload byte, a cut stream, bad magic, a file left open, offsets out of order, a file twice', async () => {
    const data = bytes(5000, 4);
    const good = chunk('P', 'f', { offset: 0, data });
    const flipped = Buffer.from(good);
    flipped[good.length - 10] = (flipped[good.length - 10] as number) ^ 0xff;
    expect(await codeOf((await extract([flipped, chunk('E', 'f')])).result)).toBe('XBSTREAM_DAMAGED');
    expect(await codeOf((await extract([good.subarray(0, good.length - 1)])).result)).toBe('XBSTREAM_DAMAGED');
    expect(await codeOf((await extract([good, chunk('E', 'f').subarray(0, 12)])).result)).toBe('XBSTREAM_DAMAGED');
    const badMagic = Buffer.from(good);
    badMagic[0] = 0x41;
    expect(await codeOf((await extract([badMagic])).result)).toBe('XBSTREAM_DAMAGED');
    expect(await codeOf((await extract([good])).result)).toBe('XBSTREAM_DAMAGED');
    expect(await codeOf((await extract([good, chunk('P', 'f', { offset: 6000, data })])).result)).toBe('XBSTREAM_DAMAGED');
    expect(await codeOf((await extract([good, chunk('E', 'f'), chunk('E', 'f')])).result)).toBe('XBSTREAM_DAMAGED');
  });

  it('never writes outside its folder: absolute paths, .. and empty segments are refused before anything is written', async () => {
    for (const path of ['../escape', '/tmp/hotspare-escape', 'db/../../escape', 'db//t']) {
      const { dest, result } = await extract([chunk('P', path, { offset: 0, data: bytes(10, 5) }), chunk('E', path)]);
      expect(await codeOf(result)).toBe('XBSTREAM_DAMAGED');
      expect(readdirSync(dest)).toEqual([]);
    }
    expect(existsSync(join(root, 'escape'))).toBe(false);
    expect(existsSync('/tmp/hotspare-escape')).toBe(false);
  });

  it('a chunk type it does not know is XBSTREAM_UNSUPPORTED (the caller lets mbstream extract the stream)', async () => {
    const { result } = await extract([chunk('S', 'f', { offset: 0, data: bytes(10, 6) })]);
    expect(await codeOf(result)).toBe('XBSTREAM_UNSUPPORTED');
  });

  it('at most openFilesMax files may be open at once', async () => {
    const parts = ['a', 'b', 'c'].map((p) => chunk('P', p, { offset: 0, data: bytes(10, 7) }));
    expect(await codeOf((await extract(parts, { openFilesMax: 2 })).result)).toBe('XBSTREAM_DAMAGED');
    const closed = ['a', 'b', 'c'].flatMap((p) => [chunk('P', p, { offset: 0, data: bytes(10, 7) }), chunk('E', p)]);
    expect(await (await extract(closed, { openFilesMax: 2 })).result).toEqual({ files: 3, bytes: 30 });
  });

  it('a missing stream file is RESTORE_FAILED', async () => {
    const dest = join(root, 'missing-out');
    mkdirSync(dest);
    expect(await codeOf(extractXbstream(join(root, 'no-such.xb'), dest).done)).toBe('RESTORE_FAILED');
  });
});
