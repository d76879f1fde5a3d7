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
  /**
   * The whole event, a view of the scanner's read buffer: valid until `onEvent` returns (or
   * its promise settles), since the buffer is read into again after that. Copy what is kept.
   */
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
    // One read buffer for the whole file (a larger one only for an event that does not fit),
    // so the scan allocates nothing per chunk or event; a range the chunk holds is served
    // without a read, and without an await.
    let buffer = Buffer.allocUnsafeSlow(Math.min(SCAN_CHUNK_BYTES, Math.max(size - offset, BINLOG_HEADER_BYTES)));
    let chunk = buffer.subarray(0, 0);
    let chunkStart = offset;
    const cached = (at: number, length: number): Buffer | undefined =>
      at >= chunkStart && at + length <= chunkStart + chunk.length ? chunk.subarray(at - chunkStart, at - chunkStart + length) : undefined;
    const readAt = async (at: number, length: number): Promise<Buffer> => {
      const want = Math.min(Math.max(length, SCAN_CHUNK_BYTES), size - at);
      if (want > buffer.length) buffer = Buffer.allocUnsafeSlow(want);
      const { bytesRead } = await handle.read(buffer, 0, want, at);
      chunk = buffer.subarray(0, bytesRead);
      chunkStart = at;
      return chunk.subarray(0, Math.min(length, bytesRead));
    };
    while (offset < size) {
      if (size - offset < BINLOG_HEADER_BYTES) {
        return { stop: { kind: 'truncated', offset, reason: 'partial event header' }, endOffset: offset };
      }
      const head = cached(offset, BINLOG_HEADER_BYTES) ?? (await readAt(offset, BINLOG_HEADER_BYTES));
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
      const bytes = cached(offset, header.sizeBytes) ?? (await readAt(offset, header.sizeBytes));
      if (options.verifyChecksums && !eventChecksumValid(bytes)) {
        return { stop: { kind: 'corrupt', offset, reason: 'CRC32 mismatch' }, endOffset: offset };
      }
      const handled = options.onEvent({ offset, header, bytes });
      if (handled !== undefined) await handled;
      offset += header.sizeBytes;
    }
    return { stop: { kind: 'end' }, endOffset: offset };
  } finally {
    await handle.close();
  }
}
