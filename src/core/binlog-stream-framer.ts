import type { BinlogRecord } from './binlog-record.js';
import {
  BINLOG_FIRST_EVENT_POSITION,
  BINLOG_HEADER_BYTES,
  EventType,
  eventChecksumValid,
  isArtificial,
  parseRotate,
  readEventHeader,
} from './binlog-event.js';
import { HotspareError } from './errors.js';
import { TransactionTracker } from './transaction-tracker.js';
import { nextBinlogName } from './binlog-position.js';

/** What one packet of the dump stream means for the archive. */
export type FramedEvent =
  | { kind: 'record'; record: BinlogRecord }
  /** Not written: an artificial rotate, a re-sent format event or a heartbeat. */
  | { kind: 'skip'; reason: 'artificial' | 'resent-format' | 'heartbeat'; file: string | undefined; position: number };

/**
 * Turns the events of a file+position binlog dump into archive records. It follows the
 * server's file switches, drops what the server makes up (artificial rotates, the format
 * event re-sent on a mid-file start, heartbeats), verifies each event's CRC32, and checks
 * that every event starts exactly where the previous one ended. Pure: no I/O, no clock.
 */
export class BinlogStreamFramer {
  #file: string | undefined;
  #expectedOffset: number;
  readonly #tracker = new TransactionTracker();

  constructor(start: { file: string; position: number }) {
    this.#file = start.file;
    this.#expectedOffset = start.position;
  }

  /** Where a dump must restart to continue exactly after the last framed event. */
  get next(): { file: string; position: number } {
    if (this.#file === undefined) throw new Error('framer has no file');
    return { file: this.#file, position: this.#expectedOffset };
  }

  get file(): string | undefined {
    return this.#file;
  }

  get position(): number {
    return this.#expectedOffset;
  }

  frame(event: Buffer): FramedEvent {
    if (event.length < BINLOG_HEADER_BYTES) {
      throw new HotspareError('BINLOG_FRAME', `a binlog event of ${event.length} bytes is shorter than its header`, {
        hint: 'the stream restarts from the durable position; a repeat points at the network or the server',
      });
    }
    const header = readEventHeader(event);
    if (header.type === EventType.HEARTBEAT || header.type === EventType.HEARTBEAT_V2) {
      return { kind: 'skip', reason: 'heartbeat', file: this.#file, position: this.#expectedOffset };
    }
    if (header.sizeBytes !== event.length) {
      throw new HotspareError('BINLOG_FRAME', `event length field ${header.sizeBytes} differs from the ${event.length} bytes received`, {
        hint: 'the stream restarts from the durable position',
      });
    }
    if (!eventChecksumValid(event)) {
      throw new HotspareError('BINLOG_CHECKSUM_MISMATCH', `CRC32 mismatch in an event at ${this.#file}:${this.#expectedOffset}`, {
        hint: 'the event was damaged on its way; the stream restarts from the durable position',
      });
    }
    if (header.type === EventType.ROTATE && isArtificial(header)) {
      const { nextFile, position } = parseRotate(event);
      // A restarted dump names the file and position we asked for: nothing changes, and a
      // transaction we were inside of goes on. Any other artificial rotate moves us.
      if (nextFile !== this.#file || position !== this.#expectedOffset) this.#tracker.reset();
      this.#file = nextFile;
      this.#expectedOffset = position;
      return { kind: 'skip', reason: 'artificial', file: this.#file, position };
    }
    if (isArtificial(header)) {
      return { kind: 'skip', reason: 'artificial', file: this.#file, position: this.#expectedOffset };
    }
    if (header.type === EventType.FORMAT_DESCRIPTION && header.nextPosition === 0) {
      // The dump thread re-sends the file's format event on a mid-file start (log_pos 0).
      return { kind: 'skip', reason: 'resent-format', file: this.#file, position: this.#expectedOffset };
    }
    const file = this.#file;
    if (file === undefined) {
      throw new HotspareError('BINLOG_FRAME', 'the server sent an event before naming its file', { hint: 'the stream restarts' });
    }
    const offset = this.#expectedOffset;
    if (header.nextPosition !== 0 && header.nextPosition !== offset + header.sizeBytes) {
      throw new HotspareError(
        'BINLOG_CONTINUITY',
        `event ending at ${file}:${header.nextPosition} does not start at the expected offset ${offset}`,
        { hint: 'the stream restarts from the durable position; if this repeats, run `hotspare verify`' },
      );
    }
    const boundary = this.#tracker.observe(event, header);
    const record: BinlogRecord = {
      file,
      offset,
      bytes: event,
      timestampS: header.timestampS,
      boundary,
      gtid: boundary ? this.#tracker.lastGtid : undefined,
    };
    if (header.type === EventType.ROTATE) {
      // A real rotate ends its file; the next events belong to the file it names.
      const { nextFile, position } = parseRotate(event);
      this.#file = nextFile;
      this.#expectedOffset = position > 0 ? position : BINLOG_FIRST_EVENT_POSITION;
      this.#tracker.reset();
    } else if (header.type === EventType.STOP) {
      // The server's shutdown ends its file with STOP; it writes on in the next one when it
      // starts again. A dump restarted meanwhile asks for that one: asked for the end of this
      // file instead, a primary that purged it on its restart (expired while it was down)
      // would refuse the start as BINLOG_PURGED though nothing is missing.
      this.#file = nextBinlogName(file);
      this.#expectedOffset = BINLOG_FIRST_EVENT_POSITION;
      this.#tracker.reset();
    } else {
      this.#expectedOffset = offset + header.sizeBytes;
    }
    return { kind: 'record', record };
  }
}
