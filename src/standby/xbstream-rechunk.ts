import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { DEFAULT_PAGE_CACHE_WRITE_BYTES, DEFAULT_XBSTREAM_FEED_BUFFERS } from '../config/defaults.js';
import { crc32 } from '../core/crc32.js';

const MAGIC = Buffer.from('XBSTCK01', 'latin1');
/** magic, flags, type, path length. */
const FIXED_HEAD = 14;
/** payload length (8), payload offset (8), CRC-32 of the payload (4), after the path. */
const PAYLOAD_HEAD = 20;
/** Paths in a stream are at most FN_REFLEN (512) bytes. */
const PATH_MAX = 512;
const PAYLOAD = 0x50; // 'P'
const EOF = 0x45; // 'E'

/**
 * Copies a mariabackup stream (xbstream) into `out` (mbstream -x's stdin) with every payload
 * chunk longer than `maxPayload` cut into chunks of at most that many bytes: the same files,
 * offsets and bytes, each new chunk with its own CRC-32. mbstream writes a chunk with one
 * write, and mariabackup's chunks reach 10 MiB; see DEFAULT_PAGE_CACHE_WRITE_BYTES for what
 * large writes cost. The stored stream is not changed. A chunk's stored CRC-32 is checked as it
 * is cut (a mismatch rejects: the stream is damaged). A chunk type this does not know is not
 * parsed: from there the stream is copied as it is, and mbstream reads it itself.
 */
export async function feedRechunkedXbstream(path: string, out: Writable, maxPayload = DEFAULT_PAGE_CACHE_WRITE_BYTES): Promise<void> {
  const handle = await open(path, 'r');
  const free: Buffer[] = Array.from({ length: DEFAULT_XBSTREAM_FEED_BUFFERS }, () => Buffer.allocUnsafeSlow(FIXED_HEAD + PATH_MAX + PAYLOAD_HEAD + maxPayload));
  const waiting: Array<(b: Buffer) => void> = [];
  let failed: Error | undefined;
  const take = async (): Promise<Buffer> => free.pop() ?? new Promise<Buffer>((resolve) => waiting.push(resolve));
  const give = (b: Buffer): void => {
    const next = waiting.shift();
    if (next !== undefined) next(b);
    else free.push(b);
  };
  // Each buffer goes back to the pool once the pipe has taken it; at most the pool is in flight.
  const send = (b: Buffer, length: number): void => {
    out.write(b.subarray(0, length), (err) => {
      if (err !== undefined && err !== null) failed ??= err;
      give(b);
    });
  };
  const readAt = async (into: Buffer, at: number, length: number, position: number): Promise<number> => {
    let done = 0;
    while (done < length) {
      const { bytesRead } = await handle.read(into, at + done, length - done, position + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return done;
  };
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(FIXED_HEAD + PATH_MAX + PAYLOAD_HEAD);
    let pos = 0;
    while (pos < size) {
      if (failed !== undefined) throw failed;
      const got = await readAt(head, 0, Math.min(head.length, size - pos), pos);
      const pathLength = got >= FIXED_HEAD ? head.readUInt32LE(10) : 0;
      const type = head[9];
      const known = got >= FIXED_HEAD && head.subarray(0, 8).equals(MAGIC) && pathLength <= PATH_MAX && (type === EOF || type === PAYLOAD);
      if (!known) {
        // Not a chunk this knows: the rest goes as it is (mbstream judges it).
        for (let at = pos; at < size; ) {
          const b = await take();
          const n = await readAt(b, 0, Math.min(b.length, size - at), at);
          send(b, n);
          at += n;
        }
        break;
      }
      const headLength = FIXED_HEAD + pathLength + (type === PAYLOAD ? PAYLOAD_HEAD : 0);
      if (got < headLength) throw new Error(`the stream ends inside the chunk header at offset ${pos}`);
      if (type === EOF) {
        const b = await take();
        head.copy(b, 0, 0, headLength);
        send(b, headLength);
        pos += headLength;
        continue;
      }
      const length = Number(head.readBigUInt64LE(FIXED_HEAD + pathLength));
      const offset = head.readBigUInt64LE(FIXED_HEAD + pathLength + 8);
      const stored = head.readUInt32LE(FIXED_HEAD + pathLength + 16);
      if (pos + headLength + length > size) throw new Error(`the stream ends inside the chunk at offset ${pos}`);
      if (length === 0) {
        const b = await take();
        head.copy(b, 0, 0, headLength);
        send(b, headLength);
        pos += headLength;
        continue;
      }
      let crc = 0;
      for (let done = 0; done < length; ) {
        const piece = Math.min(maxPayload, length - done);
        const b = await take();
        head.copy(b, 0, 0, headLength);
        if (await readAt(b, headLength, piece, pos + headLength + done) !== piece) throw new Error(`short read in the chunk at offset ${pos}`);
        const payload = b.subarray(headLength, headLength + piece);
        const pieceCrc = crc32(payload);
        crc = crc32(payload, crc);
        b.writeBigUInt64LE(BigInt(piece), FIXED_HEAD + pathLength);
        b.writeBigUInt64LE(offset + BigInt(done), FIXED_HEAD + pathLength + 8);
        b.writeUInt32LE(pieceCrc, FIXED_HEAD + pathLength + 16);
        send(b, headLength + piece);
        done += piece;
      }
      if (crc !== stored) throw new Error(`the chunk at offset ${pos} does not match its CRC-32`);
      pos += headLength + length;
    }
    // Every buffer back: everything written has been taken by the pipe.
    for (let i = 0; i < DEFAULT_XBSTREAM_FEED_BUFFERS; i++) await take();
    if (failed !== undefined) throw failed;
    out.end();
  } catch (err) {
    // mbstream must not wait for more input that will not come.
    out.destroy();
    throw err;
  } finally {
    await handle.close();
  }
}
