import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HotspareError } from '../../../src/core/errors.js';
import { encodeFrame, FrameDecoder, FrameType } from '../../../src/wire/wire-frame.js';
import { DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX, DEFAULT_WIRE_FRAME_BYTES_MAX } from '../../../src/config/defaults.js';
import { stateForCode } from '../../../src/pipeline/replica-status.js';
import { problemError } from '../../../src/replica/targets/remote-archive-files.js';
import {
  agentCodeForRefusal,
  decodeAck,
  decodePingVolume,
  decodeWelcome,
  decodeEventPiece,
  decodeEvents,
  decodeFileRequest,
  encodedEventBytes,
  encodeEventPieces,
  encodeEvents,
  encodeFileRequest,
  encodeJson,
  EVENTS_FRAME_OVERHEAD_BYTES,
  FileOp,
  type EventPiece,
} from '../../../src/wire/wire-messages.js';

describe('wire codec', () => {
  it('frames survive any split of the byte stream', () => {
    const payloads = [Buffer.alloc(0), randomBytes(1), randomBytes(70_000), randomBytes(9)];
    const stream = Buffer.concat(payloads.flatMap((p) => encodeFrame(FrameType.FILE_RESPONSE, [p.subarray(0, 3), p.subarray(3)])));
    for (const step of [1, 7, 9, 1000, stream.length]) {
      const decoder = new FrameDecoder(100_000);
      const got: Buffer[] = [];
      for (let at = 0; at < stream.length; at += step) got.push(...decoder.push(stream.subarray(at, at + step)).map((f) => f.payload));
      expect(got.map((b) => b.toString('hex'))).toEqual(payloads.map((b) => b.toString('hex')));
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it('frames with an empty part (a view of Buffer.allocUnsafe(0)) keep their CRC32', () => {
    const empty = Buffer.allocUnsafe(0).subarray(0, 0);
    const request = encodeFileRequest({ id: 5, op: FileOp.WRITE, args: { path: 'base/x.partial/a', offset: 196 }, data: empty });
    const frames = new FrameDecoder(1000).push(Buffer.concat(encodeFrame(FrameType.FILE_REQUEST, request)));
    expect(frames.map((f) => decodeFileRequest(f.payload).args)).toEqual([{ path: 'base/x.partial/a', offset: 196 }]);
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

  it('round-trips event batches and file requests, and refuses truncated ones', () => {
    const record = { file: 'mysql-bin.000123', offset: 2 ** 40 + 5, bytes: randomBytes(50), timestampS: 1_790_000_000, boundary: true, gtid: '0-1-77' };
    const next = { file: 'mysql-bin.000124', offset: 4, bytes: randomBytes(0), timestampS: 7, boundary: false, gtid: undefined };
    const payload = Buffer.concat(encodeEvents([record, next]));
    expect(decodeEvents(payload, 10)).toEqual([record, next]);
    expect(decodeEvents(Buffer.concat(encodeEvents([next])), 1)).toEqual([next]);
    for (const cut of [3, 10, payload.length - 1]) expect(() => decodeEvents(payload.subarray(0, cut), 10)).toThrow(/truncated|shorter/);
    expect(() => decodeEvents(Buffer.concat([payload, Buffer.from([0])]), 10)).toThrow(/after its last event/);
    expect(() => decodeEvents(payload, 1)).toThrow(/2 events/);
    const request = { id: 9, op: FileOp.WRITE_AT, args: { path: 'files/a', offset: 3 }, data: randomBytes(10) };
    expect(decodeFileRequest(Buffer.concat(encodeFileRequest(request)))).toEqual(request);
    expect(() => decodeFileRequest(Buffer.concat(encodeFileRequest(request)).subarray(0, 12))).toThrow(HotspareError);
  });

  it('decodes each event of a batch with its own file name, when names of the same length follow one another and when one repeats', () => {
    const files = ['mysql-bin.000009', 'mysql-bin.000009', 'mysql-bin.000010', 'mysql-bin.000009', 'b.1', '', 'mysql-bin.000010'];
    const records = files.map((file, i) => ({ file, offset: 4 + i, bytes: randomBytes(i), timestampS: i, boundary: false, gtid: undefined }));
    expect(decodeEvents(Buffer.concat(encodeEvents(records)), 10).map((r) => r.file)).toEqual(files);
  });

  it('decodes an EVENTS frame from the pieces it arrived in, whatever the split', () => {
    const records = [0, 1, 9000, 3, 70_000].map((n, i) => ({ file: 'mysql-bin.000007', offset: 4 + i * 100_000, bytes: randomBytes(n), timestampS: i, boundary: i % 2 === 0, gtid: i % 2 === 0 ? `0-1-${i}` : undefined }));
    const stream = Buffer.concat(encodeFrame(FrameType.EVENTS, encodeEvents(records)));
    for (const step of [7, 4096, 65_536, stream.length]) {
      const decoder = new FrameDecoder(1_000_000);
      const frames = [];
      for (let at = 0; at < stream.length; at += step) frames.push(...decoder.push(stream.subarray(at, at + step)));
      expect(frames).toHaveLength(1);
      const frame = frames[0] as (typeof frames)[number];
      // Handed over in pieces, not joined.
      expect(frame.segments.length > 1).toBe(step < stream.length);
      expect(decodeEvents(frame.segments, 10)).toEqual(records);
    }
  });

  it('checks an EVENTS frame header with the frame CRC32 and leaves the event bytes to their own', () => {
    const record = { file: 'mysql-bin.000001', offset: 4, bytes: randomBytes(100), timestampS: 1, boundary: false, gtid: undefined };
    const frame = Buffer.concat(encodeFrame(FrameType.EVENTS, encodeEvents([record])));
    expect(new FrameDecoder(1000).push(frame).map((f) => decodeEvents(f.payload, 10))).toEqual([[record]]);
    const damagedHeader = Buffer.from(frame);
    damagedHeader[9 + 8] = (damagedHeader[9 + 8] as number) ^ 0xff;
    expect(() => new FrameDecoder(1000).push(damagedHeader)).toThrow(/CRC32/);
    // A damaged event byte passes the frame check; the receiver refuses it by the event's CRC32.
    const damagedEvent = Buffer.from(frame);
    damagedEvent[frame.length - 1] = (damagedEvent[frame.length - 1] as number) ^ 0xff;
    expect(new FrameDecoder(1000).push(damagedEvent)).toHaveLength(1);
    const overlong = Buffer.from(frame);
    overlong.writeUInt32BE(10_000, 9);
    expect(() => new FrameDecoder(1000).push(overlong)).toThrow(/header is longer than the frame/);
  });
});

describe('ACK (wire v3)', () => {
  const point = { file: 'mysql-bin.000002', position: 1234, boundaryFile: 'mysql-bin.000002', boundaryPosition: 1200, commitTimestampS: 1_796_000_000, gtid: '0-1-9' };

  it('carries the receiver\'s volume when it has one, and decodes the ACK of a receiver from before it', () => {
    expect(decodeAck(encodeJson(point))).toEqual({ point, volume: undefined });
    const volume = { totalBytes: 3 * 1024 * 1024, freeBytes: 1024, ageMs: 250 };
    expect(decodeAck(encodeJson({ ...point, volume }))).toEqual({ point, volume });
  });

  it('leaves out a volume that is not one (negative, fractional, missing a field, beyond 2^53) and keeps the durable point', () => {
    for (const volume of [{ totalBytes: -1, freeBytes: 0, ageMs: 0 }, { totalBytes: 1.5, freeBytes: 0, ageMs: 0 }, { totalBytes: 10, freeBytes: 1 }, { totalBytes: 2 ** 60, freeBytes: 1, ageMs: 0 }, 'full']) {
      expect(decodeAck(encodeJson({ ...point, volume }))).toEqual({ point, volume: undefined });
    }
  });
});

describe('the receiver\'s volume on heartbeats and in WELCOME (wire v3)', () => {
  const volume = { totalBytes: 64 * 1024 * 1024, freeBytes: 60 * 1024 * 1024, ageMs: 1200 };

  it('a PING carries it; an empty PING (a receiver from before it) or one with anything else says nothing, and never throws', () => {
    expect(decodePingVolume(encodeJson({ volume }))).toEqual(volume);
    for (const payload of [Buffer.alloc(0), Buffer.from('not json'), encodeJson(null), encodeJson({ volume: { totalBytes: -5 } }), encodeJson([1, 2])]) {
      expect(decodePingVolume(payload)).toBeUndefined();
    }
  });

  it('a WELCOME carries it, or not', () => {
    expect(decodeWelcome(encodeJson({ protocol: 3, resume: null, volume })).volume).toEqual(volume);
    expect(decodeWelcome(encodeJson({ protocol: 3, resume: null })).volume).toBeUndefined();
    expect(decodeWelcome(encodeJson({ protocol: 3, resume: null, volume: 'full' })).volume).toBeUndefined();
  });
});

describe('EVENT_PIECE frames (wire v3)', () => {
  const PIECE_MAX = DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX;
  const big = { file: 'mysql-bin.000042', offset: 2 ** 33 + 4, bytes: randomBytes(3 * PIECE_MAX + 12_345), timestampS: 1_790_000_001, boundary: true, gtid: '0-1-900' };

  it('split an event into frames no larger than the batch limit and join back, whatever the split of the stream', () => {
    const frames = encodeEventPieces(big, PIECE_MAX);
    expect(frames).toHaveLength(4);
    for (const parts of frames) expect(parts.reduce((n, p) => n + p.length, 0)).toBeLessThanOrEqual(PIECE_MAX);
    const stream = Buffer.concat(frames.flatMap((parts) => encodeFrame(FrameType.EVENT_PIECE, parts)));
    for (const step of [13, 65_536, 1_000_003, stream.length]) {
      const decoder = new FrameDecoder(DEFAULT_WIRE_FRAME_BYTES_MAX);
      const pieces: EventPiece[] = [];
      for (let at = 0; at < stream.length; at += step) pieces.push(...decoder.push(stream.subarray(at, at + step)).map((f) => decodeEventPiece(f.segments)));
      expect(decoder.bufferedBytes).toBe(0);
      expect(pieces.map((p) => p.pieceOffset)).toEqual([0, 1, 2, 3].map((i) => i * pieces[0]!.bytes.length));
      for (const piece of pieces) expect({ ...piece, bytes: undefined, pieceOffset: undefined }).toEqual({ ...big, bytes: undefined, length: big.bytes.length, pieceOffset: undefined });
      expect(Buffer.concat(pieces.map((p) => p.bytes)).equals(big.bytes)).toBe(true);
    }
  });

  it('checks a piece header with the frame CRC32 and refuses a piece that runs past its event', () => {
    const [first] = encodeEventPieces({ ...big, bytes: big.bytes.subarray(0, 5000) }, 2000);
    const frame = Buffer.concat(encodeFrame(FrameType.EVENT_PIECE, first!));
    const damagedHeader = Buffer.from(frame);
    damagedHeader[9 + 6] = (damagedHeader[9 + 6] as number) ^ 0x01;
    expect(() => new FrameDecoder(10_000).push(damagedHeader)).toThrow(/CRC32/);
    // A damaged byte of the event passes the frame check: the event's own CRC32 over all its pieces catches it.
    const damagedByte = Buffer.from(frame);
    damagedByte[frame.length - 1] = (damagedByte[frame.length - 1] as number) ^ 0xff;
    expect(new FrameDecoder(10_000).push(damagedByte)).toHaveLength(1);
    const [head, bytes] = first!;
    const overrun = Buffer.from(head!);
    overrun.writeUInt32BE(4000, overrun.length - 4);
    expect(() => decodeEventPiece(Buffer.concat([overrun, bytes!]))).toThrow(/runs past its event/);
    expect(() => decodeEventPiece(head!.subarray(0, 10))).toThrow(/truncated/);
    const longer = Buffer.concat([head!, Buffer.alloc(1)]);
    longer.writeUInt32BE(head!.length - 4 + 1, 0);
    expect(() => decodeEventPiece(longer)).toThrow(/does not match/);
  });

  it('an EVENTS batch never exceeds the frame limit the receiver sets', () => {
    expect(DEFAULT_WIRE_FRAME_BYTES_MAX).toBeGreaterThanOrEqual(DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX);
    const records = Array.from({ length: 3 }, (_, i) => ({ file: 'mysql-bin.000001', offset: 4 + i, bytes: randomBytes(1000), timestampS: 0, boundary: false, gtid: '0-1-1' }));
    const payload = encodeEvents(records).reduce((n, p) => n + p.length, 0);
    expect(payload).toBe(EVENTS_FRAME_OVERHEAD_BYTES + records.reduce((n, r) => n + encodedEventBytes(r), 0));
  });
});

describe("the agent's code for a receiver's refusal", () => {
  it("keeps an archive's code, lets the receiver's own failure pass as a reconnect, and makes the rest the operator's", () => {
    expect(agentCodeForRefusal('ARCHIVE_DAMAGED')).toBe('ARCHIVE_DAMAGED');
    expect(agentCodeForRefusal('ARCHIVE_LOCKED')).toBe('ARCHIVE_LOCKED');
    expect(agentCodeForRefusal('DISK_FULL')).toBe('DISK_FULL');
    // "the receiver is stopping": a receiver restart must not page anyone.
    expect(agentCodeForRefusal('RECEIVER_ERROR')).toBe('RECEIVER_UNAVAILABLE');
    expect(stateForCode(agentCodeForRefusal('RECEIVER_ERROR'))).toBe('disconnected');
    for (const code of ['BAD_TOKEN', 'VERSION', 'SOMETHING_NEW']) {
      expect(agentCodeForRefusal(code)).toBe('RECEIVER_REFUSED');
      expect(stateForCode(agentCodeForRefusal(code))).toBe('error');
    }
    expect(stateForCode('ARCHIVE_DAMAGED')).toBe('error');
  });
});

describe("a receiver's session error", () => {
  it("keeps the receiver's own codes, and takes none that only the primary's side can mean", () => {
    expect(problemError({ code: 'DISK_FULL', message: 'full', hint: 'h' }).code).toBe('DISK_FULL');
    expect(problemError({ code: 'BINLOG_GAP', message: 'gap', hint: 'h' }).code).toBe('BINLOG_GAP');
    for (const code of ['BINLOG_PURGED', 'SERVER_ID_IN_USE', 'BINLOG_ENCRYPTED', 'PRIMARY_UNREACHABLE']) {
      const err = problemError({ code, message: 'm', hint: 'h' });
      expect(err.code).toBe('RECEIVER_ERROR');
      expect(err.message).toContain(`sent as ${code}`);
      expect(stateForCode(err.code)).toBe('disconnected');
    }
  });
});
