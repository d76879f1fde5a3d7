import { crc32 } from '../core/crc32.js';
import { HotspareError } from '../core/errors.js';
import { SegmentReader } from './segment-reader.js';

/**
 * The frame types of the hotspare wire protocol. A frame is
 * `type u8 | length u32 BE | crc32 u32 BE | payload[length]`, the CRC32 covering the
 * payload, except in an EVENTS frame: there it covers the frame's own header (the event
 * metadata), and each binlog event's bytes are covered by the event's own CRC32, which the
 * receiver verifies before anything is written (one pass over the bytes instead of two).
 * EVENT_PIECE frames likewise: the CRC32 covers the piece's header, and the event's own CRC32
 * (computed over its pieces as they come) covers the bytes.
 * See wire-messages.ts for each payload. Type 4 was version 1's one-event EVENT frame.
 */
export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  REFUSE: 3,
  ACK: 5,
  FILE_REQUEST: 6,
  FILE_RESPONSE: 7,
  PING: 8,
  ERROR: 9,
  BYE: 10,
  BYE_OK: 11,
  EVENTS: 12,
  /** Version 3: one piece of an event larger than an EVENTS batch. */
  EVENT_PIECE: 13,
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));
export const FRAME_HEADER_BYTES = 9;

/** One received frame. Its payload may have arrived in several socket chunks (`segments`). */
export class Frame {
  #payload: Buffer | undefined;

  constructor(
    readonly type: FrameTypeCode,
    /** The payload as it arrived, in order and uncopied. */
    readonly segments: readonly Buffer[],
  ) {}

  /** The payload in one piece: joined on first use when it arrived in several. */
  get payload(): Buffer {
    this.#payload ??= this.segments.length === 1 ? (this.segments[0] as Buffer) : Buffer.concat(this.segments);
    return this.#payload;
  }
}

/** Frames whose CRC32 covers only their length-prefixed header (the event bytes carry their own). */
function headerChecked(type: number): boolean {
  return type === FrameType.EVENTS || type === FrameType.EVENT_PIECE;
}

/**
 * zlib.crc32(data, value) for a part of a frame. An empty part leaves the value as it is:
 * zlib.crc32 of an empty Buffer without backing memory (a view of Buffer.allocUnsafe(0))
 * returns 0, zlib's "initial value" answer for a null buffer, whatever `value` was.
 */
function crcUpdate(part: Buffer, crc: number): number {
  return part.length === 0 ? crc : crc32(part, crc);
}

/** A peer that does not speak the protocol: the connection is dropped, nothing is written. */
export function wireError(message: string): HotspareError {
  return new HotspareError('WIRE_PROTOCOL', message, { hint: 'the peer is not a hotspare of this version, or the link damages data; the connection was dropped' });
}

/**
 * The buffers of one frame, ready for a corked socket write (the payload is not copied).
 * The CRC32 covers the whole payload; for EVENTS and EVENT_PIECE, only the first part (the
 * header with its length prefix).
 */
export function encodeFrame(type: FrameTypeCode, parts: readonly Buffer[]): Buffer[] {
  let length = 0;
  let crc = 0;
  const checked = headerChecked(type) ? 1 : parts.length;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as Buffer;
    length += part.length;
    if (i < checked) crc = crcUpdate(part, crc);
  }
  const header = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(length, 1);
  header.writeUInt32BE(crc >>> 0, 5);
  return [header, ...parts];
}

/**
 * Splits a byte stream into frames. Pure: feed it what the socket delivers; it returns the
 * complete frames and keeps the rest. Throws WIRE_PROTOCOL on an unknown type, a length over
 * the current limit (checked before any payload is buffered) or a CRC mismatch. A frame's
 * payload is handed over as the pieces it arrived in, never joined here.
 */
/** Received pieces shorter than this are joined to the one before (see FrameDecoder.push). */
const SMALL_PART_BYTES = 256;

export class FrameDecoder {
  /** Received bytes not yet framed. */
  #parts: Buffer[] = [];
  #total = 0;

  constructor(private frameBytesMax: number) {}

  /** The handshake raises the limit from the control-frame size to the event-frame size. */
  setLimit(frameBytesMax: number): void {
    this.frameBytesMax = frameBytesMax;
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.#total;
  }

  push(chunk: Buffer): Frame[] {
    if (chunk.length === 0) return [];
    // Tiny reads (a peer that sends a byte at a time) are joined, so the parts held cost about
    // the bytes they hold rather than an object each; a join copies at most SMALL_PART_BYTES.
    const last = this.#parts[this.#parts.length - 1];
    if (last !== undefined && chunk.length < SMALL_PART_BYTES && last.length < SMALL_PART_BYTES) this.#parts[this.#parts.length - 1] = Buffer.concat([last, chunk]);
    else this.#parts.push(chunk);
    this.#total += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#total < FRAME_HEADER_BYTES) break;
      const header = this.#peekHeader();
      const type = header.readUInt8(0);
      const length = header.readUInt32BE(1);
      if (!KNOWN_TYPES.has(type)) throw wireError(`unknown frame type ${type}`);
      if (length > this.frameBytesMax) throw wireError(`frame of ${length} bytes exceeds the limit of ${this.frameBytesMax}`);
      if (this.#total < FRAME_HEADER_BYTES + length) break;
      const crc = header.readUInt32BE(5);
      this.#take(FRAME_HEADER_BYTES);
      const segments = this.#take(length);
      if (checkedCrc(type, segments) !== crc) throw wireError(`frame of type ${type} fails its CRC32`);
      frames.push(new Frame(type as FrameTypeCode, segments));
    }
    return frames;
  }

  /** The next frame header (9 bytes); the few leading parts that hold it are joined first when it straddles them. */
  #peekHeader(): Buffer {
    let first = this.#parts[0] as Buffer;
    if (first.length < FRAME_HEADER_BYTES) {
      let count = 1;
      let bytes = first.length;
      while (bytes < FRAME_HEADER_BYTES) bytes += (this.#parts[count++] as Buffer).length;
      first = Buffer.concat(this.#parts.slice(0, count), bytes);
      this.#parts.splice(0, count, first);
    }
    return first;
  }

  /** Removes the next `n` bytes (all buffered) and returns them as views of the parts. */
  #take(n: number): Buffer[] {
    let whole = 0;
    let left = n;
    while (left > 0 && (this.#parts[whole] as Buffer).length <= left) left -= (this.#parts[whole++] as Buffer).length;
    const out = this.#parts.splice(0, whole);
    if (left > 0) {
      const part = this.#parts[0] as Buffer;
      out.push(part.subarray(0, left));
      this.#parts[0] = part.subarray(left);
    }
    this.#total -= n;
    return out;
  }
}

/** The CRC32 a frame must carry: over the payload, or for EVENTS and EVENT_PIECE over its length prefix and header. */
function checkedCrc(type: number, segments: readonly Buffer[]): number {
  let crc = 0;
  if (headerChecked(type)) {
    const what = type === FrameType.EVENTS ? 'EVENTS' : 'EVENT_PIECE';
    const reader = new SegmentReader(segments);
    const prefix = reader.take(4);
    if (prefix === undefined) throw wireError(`${what} frame is truncated`);
    const header = reader.take(prefix.readUInt32BE(0));
    if (header === undefined) throw wireError(`${what} frame header is longer than the frame`);
    return crcUpdate(header, crc32(prefix)) >>> 0;
  }
  for (const segment of segments) crc = crcUpdate(segment, crc);
  return crc >>> 0;
}
