import type { Subscription } from 'rxjs';
import { checkArchivePath, type LocalArchiveFiles } from '../../archive/archive-files.js';
import { BINLOG_FILE_NAME } from '../../archive/archive-layout.js';
import type { BinlogArchiveWriter } from '../../archive/binlog-archive-writer.js';
import { crc32 } from '../../core/crc32.js';
import { DEFAULT_RECEIVER_FILE_REQUEST_COST_BYTES, DEFAULT_WIRE_FILE_CHUNK_BYTES, DEFAULT_WIRE_FRAME_BYTES_MAX, DEFAULT_WIRE_FRAME_EVENTS_MAX } from '../../config/defaults.js';
import { BINLOG_CHECKSUM_BYTES, BINLOG_HEADER_BYTES, CRC32_RESIDUE, eventChecksumValid, readEventHeader } from '../../core/binlog-event.js';
import type { BinlogRecord, DurablePoint } from '../../core/binlog-record.js';
import { HotspareError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../platform/logger.js';
import { FrameType, wireError, type Frame } from '../../wire/wire-frame.js';
import {
  FileOp,
  decodeEventPiece,
  decodeEvents,
  decodeFileRequest,
  encodeFileResponse,
  encodeJson,
  isArchiveCode,
  type Ack,
  type AckVolume,
  type FileRequest,
  type EventPiece,
  type FileResult,
  type Problem,
} from '../../wire/wire-messages.js';
import type { WireSocket } from '../../wire/wire-socket.js';
import { UploadChannel } from './upload-channel.js';

export interface ReceiverSessionOptions {
  agentId: string;
  wire: WireSocket;
  writer: BinlogArchiveWriter;
  files: LocalArchiveFiles;
  logger: Logger;
  pendingBytesMax: number;
  uploadsMax: number;
  /** Reading stops while this many bytes of file requests wait their turn. */
  fileQueueBytesMax: number;
  nowMs: () => number;
  /** The archive volume as last read, as it travels (sent with each ACK); undefined when it could not be read. */
  volume?: () => AckVolume | undefined;
  /** Told of every failure the session reports to its agent before it drops the connection. */
  onProblem?: (problem: Problem) => void;
}

/** An event arriving in EVENT_PIECE frames: its metadata, how much came, and the CRC32 so far. */
interface OpenEvent {
  first: EventPiece;
  eventType: number;
  received: number;
  crc: number;
}

interface Upload {
  /** The archive path it will become. */
  target: string;
  channel: UploadChannel;
  done: Promise<void>;
  failure: unknown;
}

/**
 * One agent's authenticated session on a receiver: binlog events into the archive writer,
 * an ACK after every fsync, archive file operations answered in order. Everything the agent
 * sends is checked again here (names, lengths, CRC32, positions, paths); a bad frame ends the
 * session with an ERROR frame and a log line, and never reaches the disk.
 */
export class ReceiverSession {
  readonly connectedAtMs: number;
  lastHeardAtMs: number;
  readonly #subscription: Subscription;
  readonly #uploads = new Map<number, Upload>();
  /** Files a write failed on in this session: a later write to one may not start past its end. */
  readonly #failedWrites = new Set<string>();
  #fileQueue: Promise<void> = Promise.resolve();
  /** Payload bytes of the file requests in #fileQueue. */
  #fileQueueBytes = 0;
  /** The most #fileQueueBytes and the writer's pending bytes reached since reading last paused (for its log line). */
  #fileQueuePeakBytes = 0;
  #pendingPeakBytes = 0;
  #ending = false;
  #openEvent: OpenEvent | undefined;
  #resumeScheduled = false;
  readonly closed: Promise<void>;
  #resolveClosed!: () => void;

  constructor(private readonly options: ReceiverSessionOptions) {
    this.connectedAtMs = options.nowMs();
    this.lastHeardAtMs = this.connectedAtMs;
    this.closed = new Promise((r) => (this.#resolveClosed = r));
    this.#subscription = options.writer.durable$.subscribe({
      next: (point) => this.#onDurable(point),
      error: (err: unknown) => this.fail(err),
    });
  }

  get durablePoint(): DurablePoint | undefined {
    return this.options.writer.durablePoint;
  }

  get remote(): string {
    return this.options.wire.remote;
  }

  onFrame(frame: Frame): void {
    this.lastHeardAtMs = this.options.nowMs();
    switch (frame.type) {
      case FrameType.EVENTS:
        this.#onEvents(frame.segments);
        return;
      case FrameType.EVENT_PIECE:
        this.#onPiece(frame.segments);
        return;
      case FrameType.FILE_REQUEST: {
        const request = decodeFileRequest(frame.payload);
        const bytes = Math.max(frame.payload.length, DEFAULT_RECEIVER_FILE_REQUEST_COST_BYTES);
        this.#fileQueueBytes += bytes;
        this.#fileQueuePeakBytes = Math.max(this.#fileQueuePeakBytes, this.#fileQueueBytes);
        // One queue, in order; an unexpected failure ends the connection rather than leaving
        // every later request of the session unanswered.
        this.#fileQueue = this.#fileQueue
          .then(() => this.#onFileRequest(request))
          .catch((err: unknown) => {
            this.options.logger.error({ err }, 'answering an archive file operation failed; closing the connection');
            this.options.wire.close(err instanceof Error ? err : new Error(String(err)));
          })
          .finally(() => {
            this.#fileQueueBytes -= bytes;
            this.#resumeIfRoom();
          });
        // Each request holds its payload until its turn: a peer that writes faster than the
        // disk takes it is read no further until the queue shrinks.
        this.#throttle();
        return;
      }
      case FrameType.BYE:
        if (this.#openEvent !== undefined) throw wireError('BYE in the middle of an event sent in pieces');
        this.#ending = true;
        void this.options.writer.flush().then(
          () => {
            this.options.wire.send(FrameType.BYE_OK);
            this.options.wire.close(undefined);
          },
          (err: unknown) => this.fail(err),
        );
        return;
      default:
        throw wireError(`unexpected frame type ${frame.type} in a session`);
    }
  }

  /** Sends the agent a PING with `payload` (the archive volume's figures). */
  sendPing(payload: Buffer): void {
    this.options.wire.send(FrameType.PING, [payload]);
  }

  /** Reports the failure to the agent, logs it, and drops the connection. */
  fail(err: unknown): void {
    if (this.options.wire.closed) return;
    const problem: Problem =
      err instanceof HotspareError
        ? { code: err.code, message: err.message, hint: err.hint }
        : { code: 'RECEIVER_ERROR', message: errorMessage(err), hint: 'see the receiver log' };
    this.options.logger.warn({ code: problem.code, hint: problem.hint }, `dropping agent session: ${problem.message}`);
    this.options.onProblem?.(problem);
    this.options.wire.send(FrameType.ERROR, [encodeJson(problem)]);
    this.options.wire.close(err instanceof Error ? err : new Error(String(err)));
  }

  /** Called when the connection is gone: makes what was appended durable, releases the writer. */
  async teardown(): Promise<void> {
    this.#subscription.unsubscribe();
    const gone = new HotspareError('RECEIVER_SESSION_ENDED', 'the agent session ended', { hint: 'the agent reconnects and resends' });
    for (const upload of this.#uploads.values()) upload.channel.fail(gone);
    await Promise.allSettled([...this.#uploads.values()].map((u) => u.done));
    await this.#fileQueue.catch(() => undefined);
    // The pieces of an event that never completed go; they were never acknowledged (and if
    // this fails, the next session's tail recovery cuts them).
    await this.options.writer.dropPieces().catch((err: unknown) => this.options.logger.warn({ err }, 'could not cut off the pieces of an incomplete event'));
    try {
      await this.options.writer.close();
    } catch (err) {
      this.options.logger.warn({ err }, 'closing the archive writer failed; the next session recovers the tail');
    }
    this.#resolveClosed();
  }

  #onEvents(payload: readonly Buffer[]): void {
    if (this.#ending) throw wireError('EVENTS after BYE');
    if (this.#openEvent !== undefined) throw wireError('EVENTS in the middle of an event sent in pieces');
    const records = decodeEvents(payload, DEFAULT_WIRE_FRAME_EVENTS_MAX);
    // Every event of the frame is checked before any of them is written: a frame is taken whole or not at all.
    for (const record of records) checkRecord(record);
    for (const record of records) this.options.writer.append(record);
    this.#throttle();
  }

  /**
   * One piece of a large event: checked against the pieces before it and written past the
   * durable point at once (so a session holds about one frame of it, whatever the event's
   * size); the event's CRC32 is computed as the pieces come, and only a last piece that makes
   * it check out lets the event count. A mismatch drops the session; teardown cuts the pieces off.
   */
  #onPiece(payload: readonly Buffer[]): void {
    if (this.#ending) throw wireError('EVENT_PIECE after BYE');
    const piece = decodeEventPiece(payload);
    let open = this.#openEvent;
    if (open === undefined) {
      if (piece.pieceOffset !== 0) throw badEvent(piece, `its first piece starts at ${piece.pieceOffset}, not 0`);
      if (piece.bytes.length < BINLOG_HEADER_BYTES) throw badEvent(piece, 'its first piece is shorter than an event header');
      checkEventStart(piece, piece.bytes, piece.length);
      open = { first: piece, eventType: readEventHeader(piece.bytes).type, received: 0, crc: 0 };
      this.#openEvent = open;
    } else {
      const first = open.first;
      if (piece.file !== first.file || piece.offset !== first.offset || piece.length !== first.length || piece.timestampS !== first.timestampS || piece.boundary !== first.boundary || piece.gtid !== first.gtid) {
        throw badEvent(piece, 'a piece of another event arrived before the last one of this');
      }
      if (piece.pieceOffset !== open.received) throw badEvent(piece, `a piece at ${piece.pieceOffset} where ${open.received} was due`);
    }
    if (piece.bytes.length === 0) throw badEvent(piece, 'an empty piece');
    open.crc = crc32(piece.bytes, open.crc);
    open.received += piece.bytes.length;
    const record: BinlogRecord = { file: piece.file, offset: piece.offset + piece.pieceOffset, bytes: piece.bytes, timestampS: piece.timestampS, boundary: piece.boundary, gtid: piece.gtid };
    if (open.received < piece.length) {
      this.options.writer.appendPiece(record);
    } else {
      if (open.crc >>> 0 !== CRC32_RESIDUE) throw badEvent(piece, 'CRC32 mismatch over its pieces');
      this.#openEvent = undefined;
      // A peer may send a small event as one piece: then it is simply a whole event.
      if (piece.pieceOffset === 0) this.options.writer.append(record);
      else this.options.writer.appendLastPiece(record, open.eventType);
    }
    this.#throttle();
  }

  /**
   * Stops reading while too much waits for fsync, or while too many file requests wait their
   * turn. Reading resumes when both are at half their limit: on an ACK, once everything is
   * durable (pieces of an event make no ACK until the event is whole), or as requests finish.
   */
  #throttle(): void {
    const writer = this.options.writer;
    this.#pendingPeakBytes = Math.max(this.#pendingPeakBytes, writer.pendingBytes);
    const eventsOver = writer.pendingBytes > this.options.pendingBytesMax;
    if (!eventsOver && this.#fileQueueBytes <= this.options.fileQueueBytesMax) return;
    if (!this.options.wire.readingPaused) {
      this.options.logger.debug({ fileQueueBytes: this.#fileQueueBytes, pendingBytes: writer.pendingBytes }, 'agent sends faster than the archive takes it: reading paused');
      this.#fileQueuePeakBytes = this.#fileQueueBytes;
      this.#pendingPeakBytes = writer.pendingBytes;
    }
    this.options.wire.pauseReading();
    if (!eventsOver || this.#resumeScheduled) return;
    this.#resumeScheduled = true;
    writer.flush().then(
      () => {
        this.#resumeScheduled = false;
        this.#resumeIfRoom();
      },
      (err: unknown) => this.fail(err),
    );
  }

  #resumeIfRoom(): void {
    const wire = this.options.wire;
    if (this.options.writer.pendingBytes > this.options.pendingBytesMax / 2 || this.#fileQueueBytes > this.options.fileQueueBytesMax / 2) return;
    if (wire.readingPaused && !wire.closed) {
      // The peaks show what pausing held memory to (at most one frame past the limit).
      this.options.logger.debug({ fileQueuePeakBytes: this.#fileQueuePeakBytes, pendingPeakBytes: this.#pendingPeakBytes }, 'reading resumed');
    }
    wire.resumeReading();
  }

  #onDurable(point: DurablePoint): void {
    const volume = this.options.volume?.();
    const ack: Ack = volume === undefined ? point : { ...point, volume };
    this.options.wire.send(FrameType.ACK, [encodeJson(ack)]);
    this.#resumeIfRoom();
  }

  async #onFileRequest(request: FileRequest): Promise<void> {
    if (this.options.wire.closed) return;
    let result: FileResult = {};
    let data: Buffer = Buffer.alloc(0);
    try {
      ({ result, data } = await this.#runFileOp(request));
    } catch (err) {
      const problem: Problem =
        err instanceof HotspareError
          ? { code: err.code, message: err.message, hint: err.hint }
          : { code: (err as NodeJS.ErrnoException).code ?? 'ARCHIVE_IO', message: errorMessage(err), hint: 'check the archive volume on the standby' };
      this.options.logger.warn({ op: request.op, code: problem.code }, `refused archive file operation: ${problem.message}`);
      // The archive's own failure (a full volume during a base upload, say) is the receiver's
      // lastError as much as one of the binlog stream; a request the peer got wrong is not.
      // (ARCHIVE_PATH is the peer's: a path outside the archive. A read's failure comes with the
      // system's code, EIO or EACCES, and is the volume's.)
      if ((isArchiveCode(problem.code) && problem.code !== 'ARCHIVE_PATH') || /^E[A-Z0-9]+$/.test(problem.code)) this.options.onProblem?.(problem);
      result = { error: problem };
    }
    let response = encodeFileResponse({ id: request.id, result, data });
    if (response.reduce((n, b) => n + b.length, 0) > DEFAULT_WIRE_FRAME_BYTES_MAX) {
      // The agent would drop the connection for an oversized frame: tell it why instead.
      const problem: Problem = { code: 'RECEIVER_RESPONSE_TOO_LARGE', message: `the answer to file operation ${request.op} is larger than a frame`, hint: 'the folder holds too many files to list at once' };
      this.options.logger.warn({ op: request.op, code: problem.code }, `refused archive file operation: ${problem.message}`);
      response = encodeFileResponse({ id: request.id, result: { error: problem }, data: Buffer.alloc(0) });
    }
    // The next request waits until the peer has taken this answer (up to a chunk of file data):
    // a peer that asks and never reads cannot pile answers up in memory.
    if (!this.options.wire.send(FrameType.FILE_RESPONSE, response)) await this.options.wire.drained();
  }

  async #runFileOp({ id, op, args, data }: FileRequest): Promise<{ result: FileResult; data: Buffer }> {
    const files = this.options.files;
    const ok = { result: {}, data: Buffer.alloc(0) };
    const path = (): string => checkArchivePath(args.path ?? '');
    switch (op) {
      case FileOp.PUT_BEGIN: {
        const target = path();
        if (this.#uploads.has(id)) throw new HotspareError('RECEIVER_UPLOAD', `upload ${id} is already open`, { hint: 'the agent starts the file again' });
        for (const u of this.#uploads.values()) {
          if (u.target === target) throw new HotspareError('RECEIVER_UPLOAD', `${target} is already being uploaded`, { hint: 'the agent starts the file again' });
        }
        if (this.#uploads.size >= this.options.uploadsMax) {
          throw new HotspareError('RECEIVER_BUSY', `more than ${this.options.uploadsMax} uploads at once`, { hint: 'the agent sends fewer files at a time' });
        }
        const channel = new UploadChannel();
        const upload: Upload = { target, channel, done: Promise.resolve(), failure: undefined };
        upload.done = files.putFile(target, channel.chunks()).catch((err: unknown) => {
          upload.failure = err;
        });
        this.#uploads.set(id, upload);
        return ok;
      }
      case FileOp.PUT_CHUNK:
      case FileOp.PUT_END:
      case FileOp.PUT_ABORT: {
        const upload = this.#uploads.get(args.upload ?? -1);
        if (upload === undefined) throw new HotspareError('RECEIVER_UPLOAD', `no open upload ${String(args.upload)}`, { hint: 'the agent starts the file again' });
        if (op === FileOp.PUT_ABORT) {
          upload.channel.fail(new Error('aborted by the agent'));
          await upload.done;
          this.#uploads.delete(args.upload ?? -1);
          return ok;
        }
        const step = op === FileOp.PUT_CHUNK ? upload.channel.push(data) : upload.channel.end();
        await Promise.race([step, upload.done]);
        if (op === FileOp.PUT_END) {
          await upload.done;
          this.#uploads.delete(args.upload ?? -1);
        }
        if (upload.failure !== undefined) {
          this.#uploads.delete(args.upload ?? -1);
          throw upload.failure;
        }
        return ok;
      }
      case FileOp.WRITE_AT:
      case FileOp.WRITE: {
        const target = path();
        const offset = args.offset ?? 0;
        // After a failed write to a file (ENOSPC, EIO), a later one past its end would leave a
        // hole of zeros that SIZE counts as held: the agent resumes an upload at that size.
        if (this.#failedWrites.has(target)) {
          const end = (await files.size(target)) ?? 0;
          if (offset > end) {
            throw new HotspareError('RECEIVER_WRITE_HOLE', `a write at ${offset} of ${target}, past its end (${end}), after an earlier write to it failed: it would leave a hole`, {
              hint: 'the agent goes on from the size the standby holds',
            });
          }
        }
        try {
          if (op === FileOp.WRITE_AT) await files.writeAt(target, offset, data);
          else await files.write(target, offset, data);
        } catch (err) {
          this.#failedWrites.add(target);
          throw err;
        }
        // Contiguous again: a later deliberate gap (a spool pack's alignment skip) is fine.
        this.#failedWrites.delete(target);
        return ok;
      }
      case FileOp.SYNC:
        await files.sync([path()]);
        return ok;
      case FileOp.TRUNCATE:
        await files.truncate(path(), args.size ?? 0);
        this.#failedWrites.delete(path());
        return ok;
      case FileOp.READ_FILE: {
        // The first chunk and the whole size: the agent reads the rest with READ_AT, so no
        // answer (and no receiver buffer) is larger than a chunk, whatever the file.
        const target = path();
        const size = await files.size(target);
        if (size === undefined) return { result: { exists: false }, data: Buffer.alloc(0) };
        return { result: { exists: true, size }, data: await files.readAt(target, 0, Math.min(size, DEFAULT_WIRE_FILE_CHUNK_BYTES)) };
      }
      case FileOp.READ_AT: {
        const size = args.size ?? 0;
        if (size > DEFAULT_WIRE_FILE_CHUNK_BYTES) {
          throw new HotspareError('RECEIVER_READ_TOO_LARGE', `a read of ${size} bytes is over the ${DEFAULT_WIRE_FILE_CHUNK_BYTES}-byte limit`, { hint: 'the agent reads in smaller pieces' });
        }
        return { result: {}, data: await files.readAt(path(), args.offset ?? 0, size) };
      }
      case FileOp.SIZE:
        return { result: { size: (await files.size(path())) ?? null }, data: Buffer.alloc(0) };
      case FileOp.LIST:
        return { result: { names: await files.list(path()) }, data: Buffer.alloc(0) };
      case FileOp.RENAME:
        await files.rename(entryPath(args.path), entryPath(args.to));
        return ok;
      case FileOp.REMOVE:
        await files.remove(entryPath(args.path));
        this.#failedWrites.delete(entryPath(args.path));
        return ok;
    }
  }
}

/** A path a peer may remove or rename: inside one of the archive's folders, never the folder itself. */
function entryPath(path: string | undefined): string {
  const checked = checkArchivePath(path ?? '');
  if (!checked.includes('/')) throw new HotspareError('ARCHIVE_PATH', `refused to remove or rename the folder ${JSON.stringify(checked)}`, { hint: 'only entries inside an archive folder can be removed or renamed' });
  return checked;
}

/** The receiver's own checks on an event before it goes near the archive. */
function checkRecord(record: BinlogRecord): void {
  checkEventStart(record, record.bytes, record.bytes.length);
  if (!eventChecksumValid(record.bytes)) throw badEvent(record, 'CRC32 mismatch');
}

/** Checks an event's name, length and position from its first bytes (at least its header). */
function checkEventStart(at: { file: string; offset: number }, head: Buffer, length: number): void {
  if (!BINLOG_FILE_NAME.test(at.file)) throw badEvent(at, 'not a binlog file name');
  if (length < BINLOG_HEADER_BYTES + BINLOG_CHECKSUM_BYTES || head.length < BINLOG_HEADER_BYTES) throw badEvent(at, 'shorter than an event header');
  const header = readEventHeader(head);
  if (header.sizeBytes !== length) throw badEvent(at, `length field ${header.sizeBytes} differs from the ${length} bytes sent`);
  if (header.nextPosition !== 0 && header.nextPosition !== at.offset + length) throw badEvent(at, `its end position ${header.nextPosition} does not match its offset`);
}

function badEvent(at: { file: string; offset: number }, why: string): HotspareError {
  return new HotspareError('WIRE_BAD_EVENT', `refused an event for ${JSON.stringify(at.file.slice(0, 64))}:${at.offset}: ${why}`, {
    hint: 'nothing of it counts as durable; the agent restarts from the durable position',
  });
}
