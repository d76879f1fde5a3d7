import { open } from 'node:fs/promises';
import {
  BINLOG_CHECKSUM_BYTES,
  BINLOG_EVENT_BYTES_MAX,
  BINLOG_FIRST_EVENT_POSITION,
  BINLOG_HEADER_BYTES,
  BINLOG_MAGIC,
  eventChecksumValid,
  readEventHeader,
  type EventHeader,
} from '../core/binlog-event.js';

/** Read size of the scanner: large enough for sequential throughput, small enough to bound memory. */
const SCAN_CHUNK_BYTES = 1024 * 1024;

export interface ScannedEvent {
  offset: number;
  header: EventHeader;
  bytes: Buffer;
}

/** Why a scan stopped before the end of the file. */
export type ScanStop =
  | { kind: 'end' }
  | { kind: 'truncated'; offset: number; reason: string }
  | { kind: 'corrupt'; offset: number; reason: string };

/**
 * Reads the events of one archived binlog file in order, from `fromOffset` (an event
 * boundary), checking each event's length, position chain and (optionally) CRC32. It stops
 * at the first event that is incomplete (a crash mid-write) or wrong (damage) and says which.
 */
export async function scanBinlogFile(
  path: string,
  options: { fromOffset?: number; verifyChecksums: boolean; onEvent: (event: ScannedEvent) => void | Promise<void> },
): Promise<{ stop: ScanStop; endOffset: number }> {
  const handle = await open(path, 'r');
  try {
    const { size } = await handle.stat();
    const magic = Buffer.alloc(4);
    await handle.read(magic, 0, 4, 0);
    if (size < 4 || !magic.equals(BINLOG_MAGIC)) {
      return { stop: size < 4 ? { kind: 'truncated', offset: 0, reason: 'no magic' } : { kind: 'corrupt', offset: 0, reason: 'bad magic bytes' }, endOffset: 0 };
    }
    let offset = options.fromOffset ?? BINLOG_FIRST_EVENT_POSITION;
    let chunk = Buffer.alloc(0);
    let chunkStart = offset;
    const readAt = async (at: number, length: number): Promise<Buffer> => {
      // Serve from the current chunk when it covers the range; otherwise read a new chunk.
      if (at >= chunkStart && at + length <= chunkStart + chunk.length) {
        return chunk.subarray(at - chunkStart, at - chunkStart + length);
      }
      const want = Math.max(length, SCAN_CHUNK_BYTES);
      const buffer = Buffer.allocUnsafe(Math.min(want, size - at));
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, at);
      chunk = buffer.subarray(0, bytesRead);
      chunkStart = at;
      return chunk.subarray(0, Math.min(length, bytesRead));
    };
    while (offset < size) {
      if (size - offset < BINLOG_HEADER_BYTES) {
        return { stop: { kind: 'truncated', offset, reason: 'partial event header' }, endOffset: offset };
      }
      const head = await readAt(offset, BINLOG_HEADER_BYTES);
      const header = readEventHeader(head);
      if (header.sizeBytes < BINLOG_HEADER_BYTES + BINLOG_CHECKSUM_BYTES || header.sizeBytes > BINLOG_EVENT_BYTES_MAX) {
        return { stop: { kind: 'corrupt', offset, reason: `impossible event length ${header.sizeBytes}` }, endOffset: offset };
      }
      if (header.nextPosition !== 0 && header.nextPosition !== offset + header.sizeBytes) {
        return {
          stop: { kind: 'corrupt', offset, reason: `event end position ${header.nextPosition} is not offset ${offset} + length ${header.sizeBytes}` },
          endOffset: offset,
        };
      }
      if (offset + header.sizeBytes > size) {
        return { stop: { kind: 'truncated', offset, reason: 'partial event' }, endOffset: offset };
      }
      const bytes = Buffer.from(await readAt(offset, header.sizeBytes));
      if (options.verifyChecksums && !eventChecksumValid(bytes)) {
        return { stop: { kind: 'corrupt', offset, reason: 'CRC32 mismatch' }, endOffset: offset };
      }
      await options.onEvent({ offset, header, bytes });
      offset += header.sizeBytes;
    }
    return { stop: { kind: 'end' }, endOffset: offset };
  } finally {
    await handle.close();
  }
}
