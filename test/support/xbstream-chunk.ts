import { crc32 } from '../../src/core/crc32.js';
import { XBSTREAM_FIXED_HEAD_BYTES, XBSTREAM_MAGIC, XBSTREAM_PAYLOAD_HEAD_BYTES } from '../../src/core/xbstream-chunk.js';

/**
 * One mariabackup stream chunk, as mariabackup writes it: 'P' with a payload, 'E' without, or any
 * other type byte (with a payload). `crc` overrides the payload's CRC-32, to make damage.
 */
export function xbstreamChunk(type: string, path: string, payload?: { offset: number; data: Buffer; crc?: number }, flags = 0): Buffer {
  const p = Buffer.from(path);
  const head = Buffer.alloc(XBSTREAM_FIXED_HEAD_BYTES);
  XBSTREAM_MAGIC.copy(head, 0);
  head[8] = flags;
  head[9] = type.charCodeAt(0);
  head.writeUInt32LE(p.length, 10);
  if (payload === undefined) return Buffer.concat([head, p]);
  const meta = Buffer.alloc(XBSTREAM_PAYLOAD_HEAD_BYTES);
  meta.writeBigUInt64LE(BigInt(payload.data.length), 0);
  meta.writeBigUInt64LE(BigInt(payload.offset), 8);
  meta.writeUInt32LE(payload.crc ?? crc32(payload.data), 16);
  return Buffer.concat([head, p, meta, payload.data]);
}
