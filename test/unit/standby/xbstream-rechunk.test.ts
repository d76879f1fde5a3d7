import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { crc32 } from '../../../src/core/crc32.js';
import { feedRechunkedXbstream } from '../../../src/standby/xbstream-rechunk.js';

/** One xbstream chunk as mariabackup writes it ('P' with payload, 'E' without). */
function chunk(type: 'P' | 'E', path: string, payload?: { offset: number; data: Buffer; crc?: number }): Buffer {
  const p = Buffer.from(path);
  const head = Buffer.alloc(14);
  head.write('XBSTCK01', 0, 'latin1');
  head[8] = 0;
  head[9] = type.charCodeAt(0);
  head.writeUInt32LE(p.length, 10);
  if (payload === undefined) return Buffer.concat([head, p]);
  const meta = Buffer.alloc(20);
  meta.writeBigUInt64LE(BigInt(payload.data.length), 0);
  meta.writeBigUInt64LE(BigInt(payload.offset), 8);
  meta.writeUInt32LE(payload.crc ?? crc32(payload.data), 16);
  return Buffer.concat([head, p, meta, payload.data]);
}

interface Parsed { type: string; path: string; offset?: number; data?: Buffer; crcOk?: boolean }
function parse(stream: Buffer): Parsed[] {
  const out: Parsed[] = [];
  for (let pos = 0; pos < stream.length; ) {
    expect(stream.toString('latin1', pos, pos + 8)).toBe('XBSTCK01');
    const type = String.fromCharCode(stream[pos + 9] as number);
    const pathLength = stream.readUInt32LE(pos + 10);
    const path = stream.toString('utf8', pos + 14, pos + 14 + pathLength);
    pos += 14 + pathLength;
    if (type === 'E') {
      out.push({ type, path });
      continue;
    }
    const length = Number(stream.readBigUInt64LE(pos));
    const offset = Number(stream.readBigUInt64LE(pos + 8));
    const crc = stream.readUInt32LE(pos + 16);
    const data = stream.subarray(pos + 20, pos + 20 + length);
    out.push({ type, path, offset, data, crcOk: crc32(data) === crc });
    pos += 20 + length;
  }
  return out;
}

async function feed(stream: Buffer, maxPayload: number): Promise<Buffer> {
  writeFileSync(file, stream);
  const out = new PassThrough();
  const parts: Buffer[] = [];
  out.on('data', (b: Buffer) => parts.push(Buffer.from(b)));
  await feedRechunkedXbstream(file, out, maxPayload);
  return Buffer.concat(parts);
}

const dir = mkdtempSync(join(tmpdir(), 'hotspare-xbstream-'));
const file = join(dir, 'backup.mbstream');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('xbstream re-chunking for mbstream -x', () => {
  const big = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 7) % 251));
  const stream = Buffer.concat([
    chunk('P', 'ibdata1', { offset: 0, data: big }),
    chunk('P', 'ibdata1', { offset: 1000, data: big.subarray(0, 64) }),
    chunk('P', 'app/t.ibd', { offset: 0, data: Buffer.alloc(0) }),
    chunk('E', 'app/t.ibd'),
    chunk('E', 'ibdata1'),
  ]);

  it('cuts long payloads at the limit, each piece at its offset with its own CRC-32; the rest as it was', async () => {
    const out = parse(await feed(stream, 64));
    expect(out.filter((c) => c.type === 'P' && c.path === 'ibdata1').map((c) => c.data?.length)).toEqual([...Array(15).fill(64), 40, 64]);
    expect(out.every((c) => c.type === 'E' || c.crcOk)).toBe(true);
    const rebuilt = Buffer.alloc(1064);
    for (const c of out) if (c.type === 'P' && c.path === 'ibdata1') c.data?.copy(rebuilt, c.offset);
    expect(rebuilt).toEqual(Buffer.concat([big, big.subarray(0, 64)]));
    expect(out.filter((c) => c.path === 'app/t.ibd').map((c) => [c.type, c.data?.length])).toEqual([['P', 0], ['E', undefined]]);
    expect(out.slice(-2).map((c) => [c.type, c.path])).toEqual([['E', 'app/t.ibd'], ['E', 'ibdata1']]);
  });

  it('leaves a stream whose chunks are all short byte for byte as it was', async () => {
    expect(await feed(stream, 4096)).toEqual(stream);
  });

  it('rejects a long chunk whose CRC-32 does not match, and ends its output', async () => {
    const damaged = Buffer.concat([chunk('P', 'ibdata1', { offset: 0, data: big, crc: crc32(big) ^ 1 }), chunk('E', 'ibdata1')]);
    writeFileSync(file, damaged);
    const out = new PassThrough();
    out.resume();
    await expect(feedRechunkedXbstream(file, out, 64)).rejects.toThrow(/CRC-32/);
    expect(out.destroyed).toBe(true);
  });

  it('copies the rest as it is from a chunk type it does not know', async () => {
    const unknown = Buffer.from(chunk('E', 'x'));
    unknown[9] = 'S'.charCodeAt(0);
    const tail = Buffer.concat([unknown, Buffer.from('whatever mbstream makes of it')]);
    const mixed = Buffer.concat([chunk('P', 'ibdata1', { offset: 0, data: big }), tail]);
    const out = await feed(mixed, 500);
    expect(out.subarray(out.length - tail.length)).toEqual(tail);
    expect(parse(out.subarray(0, out.length - tail.length)).map((c) => c.data?.length)).toEqual([500, 500]);
  });

  it('rejects a stream that ends inside a chunk', async () => {
    writeFileSync(file, stream.subarray(0, 300));
    const out = new PassThrough();
    out.resume();
    await expect(feedRechunkedXbstream(file, out, 64)).rejects.toThrow(/ends inside/);
  });
});
