import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HotspareError } from '../../../src/core/errors.js';
import { encodeFrame, FrameDecoder, FrameType } from '../../../src/wire/wire-frame.js';
import { decodeEvent, decodeFileRequest, encodeEventMeta, encodeFileRequest, FileOp } from '../../../src/wire/wire-messages.js';

describe('wire codec', () => {
  it('frames survive any split of the byte stream', () => {
    const payloads = [Buffer.alloc(0), randomBytes(1), randomBytes(70_000), randomBytes(9)];
    const stream = Buffer.concat(payloads.flatMap((p) => encodeFrame(FrameType.EVENT, [p.subarray(0, 3), p.subarray(3)])));
    for (const step of [1, 7, 9, 1000, stream.length]) {
      const decoder = new FrameDecoder(100_000);
      const got: Buffer[] = [];
      for (let at = 0; at < stream.length; at += step) got.push(...decoder.push(stream.subarray(at, at + step)).map((f) => f.payload));
      expect(got.map((b) => b.toString('hex'))).toEqual(payloads.map((b) => b.toString('hex')));
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it('refuses a damaged frame, an unknown type and a frame over the limit', () => {
    const frame = Buffer.concat(encodeFrame(FrameType.ACK, [Buffer.from('{"a":1}')]));
    const damaged = Buffer.from(frame);
    damaged[frame.length - 1] = (damaged[frame.length - 1] as number) ^ 0xff;
    const unknown = Buffer.from(frame);
    unknown[0] = 200;
    for (const [bytes, limit, message] of [
      [damaged, 1000, /CRC32/],
      [unknown, 1000, /unknown frame type 200/],
      [frame, 3, /exceeds the limit of 3/],
    ] as const) {
      expect(() => new FrameDecoder(limit).push(bytes)).toThrow(message);
      expect(() => new FrameDecoder(limit).push(bytes)).toThrow(HotspareError);
    }
  });

  it('round-trips events and file requests, and refuses truncated ones', () => {
    const record = { file: 'mysql-bin.000123', offset: 2 ** 40 + 5, bytes: randomBytes(50), timestampS: 1_790_000_000, boundary: true, gtid: '0-1-77' };
    const payload = Buffer.concat([encodeEventMeta(record), record.bytes]);
    expect(decodeEvent(payload)).toEqual(record);
    expect(decodeEvent(Buffer.concat([encodeEventMeta({ ...record, gtid: undefined, boundary: false }), record.bytes]))).toEqual({ ...record, gtid: undefined, boundary: false });
    expect(() => decodeEvent(payload.subarray(0, 10))).toThrow(/truncated/);
    const request = { id: 9, op: FileOp.WRITE_AT, args: { path: 'files/a', offset: 3 }, data: randomBytes(10) };
    expect(decodeFileRequest(Buffer.concat(encodeFileRequest(request)))).toEqual(request);
    expect(() => decodeFileRequest(Buffer.concat(encodeFileRequest(request)).subarray(0, 12))).toThrow(HotspareError);
  });
});
