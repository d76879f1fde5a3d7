import { HotspareError } from './errors.js';

/**
 * The chunk header of a mariabackup stream (xbstream, `--stream=mbstream`), as MariaDB's
 * extra/mariabackup/xbstream_read.cc reads it:
 *
 *   magic "XBSTCK01" | flags u8 | type u8 | path length u32 LE | path
 *   type 'E' (end of file): nothing more
 *   type 'P' (payload):     length u64 LE | offset u64 LE | CRC-32 of the payload u32 LE | payload
 *
 * A file is a run of payload chunks at consecutive offsets, closed by its 'E' chunk (a file
 * with no bytes has only the 'E'); chunks of several files may interleave. Pure: no I/O.
 */
export const XBSTREAM_MAGIC = Buffer.from('XBSTCK01', 'latin1');
/** magic, flags, type, path length. */
export const XBSTREAM_FIXED_HEAD_BYTES = 14;
/** length, offset, CRC-32: after the path of a payload chunk. */
export const XBSTREAM_PAYLOAD_HEAD_BYTES = 20;
/** mbstream's limit on a path (FN_REFLEN). */
export const XBSTREAM_PATH_BYTES_MAX = 512;
/** The longest header a chunk can have; a reader that holds this many bytes can always parse one. */
export const XBSTREAM_HEAD_BYTES_MAX = XBSTREAM_FIXED_HEAD_BYTES + XBSTREAM_PATH_BYTES_MAX + XBSTREAM_PAYLOAD_HEAD_BYTES;

const TYPE_PAYLOAD = 0x50; // 'P'
const TYPE_EOF = 0x45; // 'E'

export type XbstreamHead =
  | { type: 'eof'; path: string; headBytes: number }
  | { type: 'payload'; path: string; headBytes: number; length: number; offset: number; crc: number };

/**
 * Parses the chunk header at the start of `bytes`; undefined when more bytes are needed.
 * `at` is the chunk's offset in the stream, for messages. Throws XBSTREAM_DAMAGED for what no
 * mariabackup writes (bad magic, an unsafe path), and XBSTREAM_UNSUPPORTED for a chunk type
 * other than 'P' and 'E' (a newer format: mbstream, not us, should read it).
 */
export function parseXbstreamHead(bytes: Buffer, at: number): XbstreamHead | undefined {
  if (bytes.length < XBSTREAM_FIXED_HEAD_BYTES) return undefined;
  if (!bytes.subarray(0, XBSTREAM_MAGIC.length).equals(XBSTREAM_MAGIC)) throw xbstreamDamaged(at, 'no chunk magic');
  const type = bytes[9];
  const pathBytes = bytes.readUInt32LE(10);
  if (pathBytes === 0 || pathBytes > XBSTREAM_PATH_BYTES_MAX) throw xbstreamDamaged(at, `a path of ${pathBytes} bytes`);
  if (type !== TYPE_PAYLOAD && type !== TYPE_EOF) {
    throw new HotspareError('XBSTREAM_UNSUPPORTED', `chunk type 0x${(type ?? 0).toString(16)} at stream offset ${at} is not one this reader knows`, {
      hint: 'mbstream extracts it instead',
    });
  }
  const pathEnd = XBSTREAM_FIXED_HEAD_BYTES + pathBytes;
  const headBytes = pathEnd + (type === TYPE_PAYLOAD ? XBSTREAM_PAYLOAD_HEAD_BYTES : 0);
  if (bytes.length < headBytes) return undefined;
  const path = bytes.toString('utf8', XBSTREAM_FIXED_HEAD_BYTES, pathEnd);
  checkStreamPath(path, at);
  if (type === TYPE_EOF) return { type: 'eof', path, headBytes };
  const length = bytes.readBigUInt64LE(pathEnd);
  const offset = bytes.readBigUInt64LE(pathEnd + 8);
  if (length > BigInt(Number.MAX_SAFE_INTEGER) || offset > BigInt(Number.MAX_SAFE_INTEGER)) throw xbstreamDamaged(at, `a payload of ${length} bytes at file offset ${offset}`);
  return { type: 'payload', path, headBytes, length: Number(length), offset: Number(offset), crc: bytes.readUInt32LE(pathEnd + 16) };
}

/**
 * A stream path names a file inside the folder it is extracted to: relative, no `..`, no empty
 * segment, no NUL. (mariabackup writes names like `ibdata1` and `db/t.ibd`; anything else is
 * damage, and must never reach outside the staging folder.)
 */
function checkStreamPath(path: string, at: number): void {
  if (path.startsWith('/') || path.includes('\0') || path.split('/').some((s) => s === '' || s === '..')) {
    throw xbstreamDamaged(at, `the path ${JSON.stringify(path)} is not inside the backup`);
  }
}

/** XBSTREAM_DAMAGED at a stream offset: what no mariabackup writes, or a stream cut short. */
export function xbstreamDamaged(at: number, what: string): HotspareError {
  return new HotspareError('XBSTREAM_DAMAGED', `the mariabackup stream is damaged at offset ${at}: ${what}`, {
    hint: 'run `hotspare verify`; take a new base backup with `hotspare base`',
  });
}
