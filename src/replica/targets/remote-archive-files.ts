import type { ArchiveFiles } from '../../archive/archive-files.js';
import { DEFAULT_WIRE_FILE_CHUNK_BYTES } from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import { FileOp, type FileArgs, type FileOpCode, type FileResponse } from '../../wire/wire-messages.js';

/** Sends one FILE_REQUEST and resolves with its FILE_RESPONSE (errors already turned into throws). */
export type FileRequester = (op: FileOpCode, args: FileArgs, data?: Buffer) => Promise<FileResponse>;

/**
 * ArchiveFiles on a receiver's archive: every operation is a request/response pair on the
 * agent's connection; the receiver checks every path (checkArchivePath) and does the work with
 * its LocalArchiveFiles. Large data travels in chunks, one round trip each, so neither side
 * holds more than a chunk per upload.
 */
export class RemoteArchiveFiles implements ArchiveFiles {
  constructor(
    private readonly request: FileRequester,
    private readonly chunkBytes: number = DEFAULT_WIRE_FILE_CHUNK_BYTES,
  ) {}

  async putFile(path: string, data: AsyncIterable<Buffer> | Buffer): Promise<void> {
    const begin = await this.request(FileOp.PUT_BEGIN, { path });
    const upload = begin.id;
    try {
      const source: AsyncIterable<Buffer> | Iterable<Buffer> = Buffer.isBuffer(data) ? [data] : data;
      for await (const chunk of source) {
        for (let at = 0; at < chunk.length; at += this.chunkBytes) {
          await this.request(FileOp.PUT_CHUNK, { upload }, chunk.subarray(at, at + this.chunkBytes));
        }
      }
    } catch (err) {
      await this.request(FileOp.PUT_ABORT, { upload }).catch(() => undefined);
      throw err;
    }
    await this.request(FileOp.PUT_END, { upload });
  }

  async writeAt(path: string, offset: number, data: Buffer): Promise<void> {
    await this.write(path, offset, data);
    await this.sync([path]);
  }

  /**
   * Sends every chunk at once and waits for all their answers: the receiver works through them
   * in order while the next are on the way, so a batch costs one round trip, not one per chunk.
   * The caller bounds how much it has in flight (the pack writer: its batch buffers).
   */
  async write(path: string, offset: number, data: Buffer): Promise<void> {
    const sent: Array<Promise<unknown>> = [];
    let at = 0;
    do {
      sent.push(this.request(FileOp.WRITE, { path, offset: offset + at }, data.subarray(at, at + this.chunkBytes)));
      at += this.chunkBytes;
    } while (at < data.length);
    await settleAll(sent);
  }

  async sync(paths: readonly string[]): Promise<void> {
    await settleAll([...new Set(paths)].map((path) => this.request(FileOp.SYNC, { path })));
  }

  async truncate(path: string, size: number): Promise<void> {
    await this.request(FileOp.TRUNCATE, { path, size });
  }

  /** The first chunk comes with the file's size; the rest is read in chunks (no frame is larger than one). */
  async readFile(path: string): Promise<Buffer | undefined> {
    const response = await this.request(FileOp.READ_FILE, { path });
    if (response.result.exists !== true) return undefined;
    const first = Buffer.from(response.data);
    const size = response.result.size ?? first.length;
    if (size <= first.length) return first;
    const rest = await this.readAt(path, first.length, size - first.length);
    return Buffer.concat([first, rest]);
  }

  async readAt(path: string, offset: number, length: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (let at = 0; at < length; ) {
      const want = Math.min(this.chunkBytes, length - at);
      const response = await this.request(FileOp.READ_AT, { path, offset: offset + at, size: want });
      parts.push(Buffer.from(response.data));
      at += response.data.length;
      if (response.data.length < want) break;
    }
    return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
  }

  async size(path: string): Promise<number | undefined> {
    const response = await this.request(FileOp.SIZE, { path });
    return response.result.size ?? undefined;
  }

  async list(path: string): Promise<string[]> {
    const response = await this.request(FileOp.LIST, { path });
    return response.result.names ?? [];
  }

  async rename(from: string, to: string): Promise<void> {
    await this.request(FileOp.RENAME, { path: from, to });
  }

  async remove(path: string): Promise<void> {
    await this.request(FileOp.REMOVE, { path });
  }
}

/** Waits for every promise (none is left unobserved), then throws the first failure, if any. */
async function settleAll(promises: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
}

/**
 * Codes only the primary's side can mean (a purged binlog, a server id in use, the primary's own
 * setup): a receiver that sends one is wrong or hostile, and would steer the replica's state (a
 * `gap`, retries at the backoff's cap) from a standby. It is the receiver's error instead.
 */
const PRIMARY_ONLY_CODES: ReadonlySet<string> = new Set(['BINLOG_PURGED', 'SERVER_ID_IN_USE', 'BINLOG_ENCRYPTED', 'BINLOG_FORMAT', 'BINLOG_CHECKSUM', 'BINLOG_DISABLED', 'PRIVILEGES', 'SERVER_ID']);

export function problemError(problem: { code: string; message: string; hint: string }): HotspareError {
  const code = PRIMARY_ONLY_CODES.has(problem.code) || problem.code.startsWith('PRIMARY_') ? 'RECEIVER_ERROR' : problem.code;
  const message = code === problem.code ? problem.message : `${problem.message} (sent as ${problem.code}, which only the primary's side can mean)`;
  return new HotspareError(code, `receiver: ${message}`, { hint: problem.hint });
}
