import type { Subscription } from 'rxjs';
import { checkArchivePath, type LocalArchiveFiles } from '../../archive/archive-files.js';
import { BINLOG_FILE_NAME } from '../../archive/archive-layout.js';
import type { BinlogArchiveWriter } from '../../archive/binlog-archive-writer.js';
import { DEFAULT_WIRE_FILE_CHUNK_BYTES } from '../../config/defaults.js';
import { BINLOG_CHECKSUM_BYTES, BINLOG_HEADER_BYTES, eventChecksumValid, readEventHeader } from '../../core/binlog-event.js';
import type { BinlogRecord, DurablePoint } from '../../core/binlog-record.js';
import { DEFAULT_WIRE_FRAME_EVENTS_MAX } from '../../config/defaults.js';
import { HotspareError, errorMessage } from '../../core/errors.js';
import type { Logger } from '../../platform/logger.js';
import { FrameType, wireError, type Frame } from '../../wire/wire-frame.js';
import {
  FileOp,
  decodeEvents,
  decodeFileRequest,
  encodeFileResponse,
  encodeJson,
  type FileRequest,
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
  nowMs: () => number;
}

interface Upload {
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
  #fileQueue: Promise<void> = Promise.resolve();
  #ending = false;
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
      case FrameType.FILE_REQUEST: {
        const request = decodeFileRequest(frame.payload);
        this.#fileQueue = this.#fileQueue.then(() => this.#onFileRequest(request));
        return;
      }
      case FrameType.BYE:
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

  /** Reports the failure to the agent, logs it, and drops the connection. */
  fail(err: unknown): void {
    if (this.options.wire.closed) return;
    const problem: Problem =
      err instanceof HotspareError
        ? { code: err.code, message: err.message, hint: err.hint }
        : { code: 'RECEIVER_ERROR', message: errorMessage(err), hint: 'see the receiver log' };
    this.options.logger.warn({ code: problem.code, hint: problem.hint }, `dropping agent session: ${problem.message}`);
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
    try {
      await this.options.writer.close();
    } catch (err) {
      this.options.logger.warn({ err }, 'closing the archive writer failed; the next session recovers the tail');
    }
    this.#resolveClosed();
  }

  #onEvents(payload: readonly Buffer[]): void {
    if (this.#ending) throw wireError('EVENTS after BYE');
    const records = decodeEvents(payload, DEFAULT_WIRE_FRAME_EVENTS_MAX);
    // Every event of the frame is checked before any of them is written: a frame is taken whole or not at all.
    for (const record of records) checkRecord(record);
    for (const record of records) this.options.writer.append(record);
    if (this.options.writer.pendingBytes > this.options.pendingBytesMax) this.options.wire.pauseReading();
  }

  #onDurable(point: DurablePoint): void {
    this.options.wire.send(FrameType.ACK, [encodeJson(point)]);
    if (this.options.writer.pendingBytes <= this.options.pendingBytesMax / 2) this.options.wire.resumeReading();
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
      result = { error: problem };
    }
    this.options.wire.send(FrameType.FILE_RESPONSE, encodeFileResponse({ id: request.id, result, data }));
  }

  async #runFileOp({ id, op, args, data }: FileRequest): Promise<{ result: FileResult; data: Buffer }> {
    const files = this.options.files;
    const ok = { result: {}, data: Buffer.alloc(0) };
    const path = (): string => checkArchivePath(args.path ?? '');
    switch (op) {
      case FileOp.PUT_BEGIN: {
        const target = path();
        if (this.#uploads.size >= this.options.uploadsMax) {
          throw new HotspareError('RECEIVER_BUSY', `more than ${this.options.uploadsMax} uploads at once`, { hint: 'the agent sends fewer files at a time' });
        }
        const channel = new UploadChannel();
        const upload: Upload = { channel, done: Promise.resolve(), failure: undefined };
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
        await files.writeAt(path(), args.offset ?? 0, data);
        return ok;
      case FileOp.WRITE:
        await files.write(path(), args.offset ?? 0, data);
        return ok;
      case FileOp.SYNC:
        await files.sync([path()]);
        return ok;
      case FileOp.TRUNCATE:
        await files.truncate(path(), args.size ?? 0);
        return ok;
      case FileOp.READ_FILE: {
        const bytes = await files.readFile(path());
        return { result: { exists: bytes !== undefined }, data: bytes ?? Buffer.alloc(0) };
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
        await files.rename(path(), checkArchivePath(args.to ?? ''));
        return ok;
      case FileOp.REMOVE:
        await files.remove(path());
        return ok;
    }
  }
}

/** The receiver's own checks on an event before it goes near the archive. */
function checkRecord(record: BinlogRecord): void {
  const bad = (why: string): never => {
    throw new HotspareError('WIRE_BAD_EVENT', `refused an event for ${JSON.stringify(record.file.slice(0, 64))}:${record.offset}: ${why}`, {
      hint: 'nothing was written; the agent restarts from the durable position',
    });
  };
  if (!BINLOG_FILE_NAME.test(record.file)) bad('not a binlog file name');
  if (record.bytes.length < BINLOG_HEADER_BYTES + BINLOG_CHECKSUM_BYTES) bad('shorter than an event header');
  const header = readEventHeader(record.bytes);
  if (header.sizeBytes !== record.bytes.length) bad(`length field ${header.sizeBytes} differs from the ${record.bytes.length} bytes sent`);
  if (header.nextPosition !== 0 && header.nextPosition !== record.offset + record.bytes.length) bad(`its end position ${header.nextPosition} does not match its offset`);
  if (!eventChecksumValid(record.bytes)) bad('CRC32 mismatch');
}
