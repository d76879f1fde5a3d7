import { crc32 } from 'node:zlib';
import { HotspareError } from '../core/errors.js';

/**
 * The frame types of the hotspare wire protocol. A frame is
 * `type u8 | length u32 BE | crc32 u32 BE | payload[length]`, the CRC32 covering the
 * payload, except in an EVENTS frame: there it covers the frame's own header (the event
 * metadata), and each binlog event's bytes are covered by the event's own CRC32, which the
 * receiver verifies before anything is written (one pass over the bytes instead of two).
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
} as const;
export type FrameTypeCode = (typeof FrameType)[keyof typeof FrameType];

const KNOWN_TYPES: ReadonlySet<number> = new Set(Object.values(FrameType));
export const FRAME_HEADER_BYTES = 9;

export interface Frame {
  type: FrameTypeCode;
  payload: Buffer;
}

/** A peer that does not speak the protocol: the connection is dropped, nothing is written. */
export function wireError(message: string): HotspareError {
  return new HotspareError('WIRE_PROTOCOL', message, { hint: 'the peer is not a hotspare of this version, or the link damages data; the connection was dropped' });
}

/**
 * The buffers of one frame, ready for a corked socket write (the payload is not copied).
 * The CRC32 covers the whole payload; for EVENTS, only the first part (the header with
 * its length prefix, see eventsHeaderBytes).
 */
export function encodeFrame(type: FrameTypeCode, parts: readonly Buffer[]): Buffer[] {
  let length = 0;
  let crc = 0;
  const checked = type === FrameType.EVENTS ? 1 : parts.length;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as Buffer;
    length += part.length;
    if (i < checked) crc = crc32(part, crc);
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
 * the current limit (checked before any payload is buffered) or a CRC mismatch.
 */
export class FrameDecoder {
  /** Received bytes not yet framed; joined only once a whole frame is there (no quadratic copying). */
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
    this.#parts.push(chunk);
    this.#total += chunk.length;
    const frames: Frame[] = [];
    for (;;) {
      if (this.#total < FRAME_HEADER_BYTES) break;
      let first = this.#parts[0] as Buffer;
      if (first.length < FRAME_HEADER_BYTES) first = this.#join();
      const type = first.readUInt8(0);
      const length = first.readUInt32BE(1);
      if (!KNOWN_TYPES.has(type)) throw wireError(`unknown frame type ${type}`);
      if (length > this.frameBytesMax) throw wireError(`frame of ${length} bytes exceeds the limit of ${this.frameBytesMax}`);
      const end = FRAME_HEADER_BYTES + length;
      if (this.#total < end) break;
      if (first.length < end) first = this.#join();
      const payload = first.subarray(FRAME_HEADER_BYTES, end);
      const checked = type === FrameType.EVENTS ? payload.subarray(0, eventsHeaderBytes(payload)) : payload;
      if (crc32(checked) >>> 0 !== first.readUInt32BE(5)) throw wireError(`frame of type ${type} fails its CRC32`);
      frames.push({ type: type as FrameTypeCode, payload });
      const rest = first.subarray(end);
      if (rest.length === 0) this.#parts.shift();
      else this.#parts[0] = rest;
      this.#total -= end;
    }
    return frames;
  }

  #join(): Buffer {
    const joined = this.#parts.length === 1 ? (this.#parts[0] as Buffer) : Buffer.concat(this.#parts, this.#total);
    this.#parts = [joined];
    return joined;
  }
}

/**
 * The bytes of an EVENTS payload its frame CRC32 covers: the `headerLength u32 BE` prefix
 * and the header it announces (the event bytes that follow carry their own CRC32).
 */
export function eventsHeaderBytes(payload: Buffer): number {
  if (payload.length < 4) throw wireError('EVENTS frame is truncated');
  const covered = 4 + payload.readUInt32BE(0);
  if (covered > payload.length) throw wireError('EVENTS frame header is longer than the frame');
  return covered;
}
