import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import { writeAllAt } from '../platform/sliced-write.js';
import {
  DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES,
  DEFAULT_ARCHIVE_DIRECT_BUFFER_BYTES,
  DEFAULT_ARCHIVE_DIRECT_BUFFERS,
  DEFAULT_ARCHIVE_DIRECT_WRITE_BYTES_MIN,
  DEFAULT_ARCHIVE_WRITEBACK_BYTES,
} from '../config/defaults.js';
import { HotspareError } from '../core/errors.js';
import { fsyncDir, writeFileDurable } from '../platform/durable-file.js';
import { alignDown, alignUp } from '../platform/aligned-memory.js';
import { archiveWriteError } from './archive-errors.js';
import { DirectWriter } from './direct-writes.js';

/** Top-level folders that archive file operations may touch (binlog/ has its own writer). */
const WRITABLE_ROOTS = ['base', 'files', 'state'] as const;
/**
 * Under state/, only these (the agent's records: when it last heard the primary, the gaps it
 * restarted the chain across, a time the primary was not itself: PrimaryBreak). The lock and
 * the binlog checkpoint belong to the archive's own writer, and a peer that could rewrite them
 * could misdirect a resume.
 */
const WRITABLE_STATE_FILES: ReadonlySet<string> = new Set(['state/last-heard.json', 'state/gaps.json', 'state/primary-break.json']);
/** A bound on one relative path, so a hostile peer cannot send a megabyte of name. */
export const ARCHIVE_PATH_BYTES_MAX = 4096;

/**
 * Durable file operations inside an archive, for everything that is not the binlog stream:
 * base backups, spool data and history, indexes. Every path is relative, checked, and kept
 * under base/, files/ or state/; nothing can be written outside the archive. A write is
 * durable (fsynced, directory included) when its promise resolves.
 */
export interface ArchiveFiles {
  /** Writes a whole file atomically (temporary name, fsync, rename, fsync of the directory). */
  putFile(path: string, data: AsyncIterable<Buffer> | Buffer): Promise<void>;
  /** Writes bytes at `offset` of a file (created if absent) and fsyncs it; for journals and appends. */
  writeAt(path: string, offset: number, data: Buffer): Promise<void>;
  /**
   * Writes bytes at `offset` of a file (created if absent) without waiting for them to reach
   * the disk: several writes, then one `sync`, cost one flush instead of one each. Nothing may
   * refer to these bytes before `sync` resolves.
   */
  write(path: string, offset: number, data: Buffer): Promise<void>;
  /** Makes every earlier `write` to these files durable: their data, and the directory entry of a file `write` created. */
  sync(paths: readonly string[]): Promise<void>;
  /** Cuts a file to `size` bytes (a journal's torn tail) and fsyncs it. */
  truncate(path: string, size: number): Promise<void>;
  /** The file's bytes, or undefined when it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** Up to `length` bytes from `offset` (fewer at the end of the file); throws when the file does not exist. */
  readAt(path: string, offset: number, length: number): Promise<Buffer>;
  /** The file's size, or undefined. */
  size(path: string): Promise<number | undefined>;
  /** Names directly inside a folder (empty when it does not exist). */
  list(path: string): Promise<string[]>;
  /** Renames within the archive, durably (e.g. a finished base backup from a temporary name). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file or a whole folder. */
  remove(path: string): Promise<void>;
}

/** fsyncs a folder and every folder under it (their entries, not the files' data). */
async function fsyncFolders(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) if (entry.isDirectory()) await fsyncFolders(join(dir, entry.name));
  await fsyncDir(dir);
}

/** Closes the descriptors that opened; a failed open was already reported to its writes. */
async function closeAll(handles: ReadonlyArray<Promise<FileHandle | undefined> | undefined>): Promise<void> {
  const opened = await Promise.allSettled(handles);
  await Promise.all(opened.map((o) => (o.status === 'fulfilled' ? o.value?.close() : undefined)));
}

async function datasyncFile(target: string): Promise<void> {
  const handle = await open(target, 'r+');
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Checks a relative archive path and returns it normalised; throws ARCHIVE_PATH otherwise. */
export function checkArchivePath(path: string): string {
  const bad = (why: string): never => {
    throw new HotspareError('ARCHIVE_PATH', `refused archive path ${JSON.stringify(path.slice(0, 200))}: ${why}`, {
      hint: 'the peer sent a path outside the archive; it was not written',
    });
  };
  if (typeof path !== 'string' || path.length === 0) bad('empty');
  if (Buffer.byteLength(path) > ARCHIVE_PATH_BYTES_MAX) bad('too long');
  if (path.includes('\0') || path.includes('\\')) bad('contains NUL or backslash');
  if (path.startsWith('/')) bad('absolute');
  // The raw parts are checked, not a normalised form: a peer that sends "a//b" or "a/./b" is
  // not following the protocol, and is refused rather than interpreted.
  const parts = path.split('/');
  const normal = posix.normalize(path);
  if (parts.some((p) => p === '..' || p === '.' || p === '')) bad('contains "..", "." or an empty part');
  if (!(WRITABLE_ROOTS as readonly string[]).includes(parts[0] ?? '')) bad(`must be under ${WRITABLE_ROOTS.join('/, ')}/`);
  if (parts[0] === 'state' && !WRITABLE_STATE_FILES.has(path)) bad(`under state/ only ${[...WRITABLE_STATE_FILES].join(', ')}`);
  return normal;
}

/** Numbers each putFile's temporary file in this process. */
let putFileSequence = 0;

/** ArchiveFiles on a local folder: the file replica and the receiver both use it. */
export class LocalArchiveFiles implements ArchiveFiles {
  /**
   * `rootMustExist`: a write never creates the archive folder itself (a file replica's session,
   * whose folder was opened: one moved away or unmounted meanwhile would be begun again at the
   * old path, in the way of moving it back); it fails with ENOENT instead.
   */
  constructor(
    readonly root: string,
    private readonly options: { rootMustExist?: boolean } = {},
  ) {}

  /** See `rootMustExist`: throws ENOENT when the archive folder is not there. */
  async #rootThere(): Promise<void> {
    if (this.options.rootMustExist === true) await stat(this.root);
  }

  /** A failed write says what it means for the archive (DISK_FULL, ...: see archive-errors.ts). */
  async #mapped<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      throw archiveWriteError(err, this.root);
    }
  }

  #abs(path: string): string {
    return join(this.root, checkArchivePath(path));
  }

  putFile(path: string, data: AsyncIterable<Buffer> | Buffer): Promise<void> {
    return this.#mapped(this.#putFile(path, data));
  }

  async #putFile(path: string, data: AsyncIterable<Buffer> | Buffer): Promise<void> {
    const target = this.#abs(path);
    // A temporary name of its own per upload: two uploads of one path never share (and mix) a file.
    putFileSequence += 1;
    await this.#rootThere();
    await writeFileDurable(target, data, { mode: 0o640, tmpPath: `${target}.partial-${process.pid}-${putFileSequence}` });
  }

  async writeAt(path: string, offset: number, data: Buffer): Promise<void> {
    await this.write(path, offset, data);
    await this.sync([path]);
  }

  /**
   * Files whose directory entry a `sync` of this instance has made durable. A file this instance
   * did not see created may still lack a durable entry (another instance, such as an earlier
   * receiver session, or an earlier process created it and never synced), so the first sync of
   * every file here fsyncs its folder too.
   */
  readonly #entryDurable = new Set<string>();
  /** Files `write` has written and no `sync` has covered yet, with their early write-back. */
  readonly #dirty = new Map<string, { bytes: number; writeback: Promise<void> | undefined; error: unknown }>();

  readonly #direct = new DirectWriter({ alignBytes: DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES, buffers: DEFAULT_ARCHIVE_DIRECT_BUFFERS, bufferBytes: DEFAULT_ARCHIVE_DIRECT_BUFFER_BYTES });

  /**
   * Descriptors of files being written, shared by the writes under way to each (a pack gets
   * several at once): opened by the first, closed when the last ends, so none outlives its writes.
   */
  readonly #writing = new Map<string, { users: number; handle: Promise<FileHandle>; direct: Promise<FileHandle | undefined> | undefined }>();

  write(path: string, offset: number, data: Buffer): Promise<void> {
    return this.#mapped(this.#write(path, offset, data));
  }

  async #write(path: string, offset: number, data: Buffer): Promise<void> {
    const target = this.#abs(path);
    let open = this.#writing.get(target);
    if (open === undefined) this.#writing.set(target, (open = { users: 0, handle: this.#openForWrite(target), direct: undefined }));
    open.users++;
    // A long write's aligned middle goes past the page cache (see DirectWriter); its unaligned
    // ends, whose pages it shares with the bytes before and after, go through the page cache.
    // The two never touch the same page, and the sync below makes both durable.
    const A = DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES;
    const bodyAt = alignUp(offset, A);
    const bodyEnd = alignDown(offset + data.length, A);
    let buffered = data.length;
    try {
      const handle = await open.handle;
      if (this.#direct.enabled && bodyEnd - bodyAt >= DEFAULT_ARCHIVE_DIRECT_WRITE_BYTES_MIN) {
        await writeAllAt(handle, data.subarray(0, bodyAt - offset), offset);
        open.direct ??= this.#direct.open(target);
        const direct = await open.direct;
        if (direct !== undefined && (await this.#direct.write(direct, bodyAt, data.subarray(bodyAt - offset, bodyEnd - offset)))) {
          await writeAllAt(handle, data.subarray(bodyEnd - offset), bodyEnd);
          buffered = data.length - (bodyEnd - bodyAt);
        } else await writeAllAt(handle, data.subarray(bodyAt - offset), bodyAt);
      } else await writeAllAt(handle, data, offset);
    } finally {
      if (--open.users === 0) {
        this.#writing.delete(target);
        await closeAll([open.handle, open.direct]);
      }
    }
    let dirty = this.#dirty.get(target);
    if (dirty === undefined) this.#dirty.set(target, (dirty = { bytes: 0, writeback: undefined, error: undefined }));
    dirty.bytes += buffered;
    if (dirty.bytes >= DEFAULT_ARCHIVE_WRITEBACK_BYTES && dirty.writeback === undefined) {
      // Start writing back while more data comes, so the sync at the end has little left to do.
      // Its error is kept for that sync: once a write-back error is seen here, a later fsync
      // through another descriptor would not report it again.
      const d = dirty;
      d.bytes = 0;
      d.writeback = datasyncFile(target)
        .catch((err: unknown) => {
          d.error ??= err;
        })
        .finally(() => {
          d.writeback = undefined;
        });
    }
  }

  async #openForWrite(target: string): Promise<FileHandle> {
    try {
      return await open(target, 'r+');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await this.#rootThere();
    await mkdir(dirname(target), { recursive: true });
    const handle = await open(target, 'wx+', 0o640).catch(async (err: NodeJS.ErrnoException) => {
      // Created meanwhile by another write: use it.
      if (err.code === 'EEXIST') return open(target, 'r+');
      throw err;
    });
    return handle;
  }

  sync(paths: readonly string[]): Promise<void> {
    return this.#mapped(this.#sync(paths));
  }

  async #sync(paths: readonly string[]): Promise<void> {
    for (const path of new Set(paths)) {
      const target = this.#abs(path);
      const dirty = this.#dirty.get(target);
      this.#dirty.delete(target);
      await dirty?.writeback;
      if (dirty?.error !== undefined) throw dirty.error;
      // fdatasync through a new descriptor flushes the file's dirty pages whoever wrote them,
      // and reports a write-back error nobody has seen yet (Linux errseq), so closing the
      // writing descriptor first loses nothing.
      await datasyncFile(target);
      if (!this.#entryDurable.has(target)) {
        await fsyncDir(dirname(target));
        this.#entryDurable.add(target);
      }
    }
  }

  truncate(path: string, size: number): Promise<void> {
    return this.#mapped(this.#truncate(path, size));
  }

  async #truncate(path: string, size: number): Promise<void> {
    const handle = await open(this.#abs(path), 'r+');
    try {
      await handle.truncate(size);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(this.#abs(path));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async readAt(path: string, offset: number, length: number): Promise<Buffer> {
    const handle = await open(this.#abs(path), 'r');
    try {
      const buf = Buffer.allocUnsafe(length);
      let got = 0;
      while (got < length) {
        const { bytesRead } = await handle.read(buf, got, length - got, offset + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    } finally {
      await handle.close();
    }
  }

  async size(path: string): Promise<number | undefined> {
    try {
      return (await stat(this.#abs(path))).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async list(path: string): Promise<string[]> {
    try {
      return (await readdir(this.#abs(path))).sort();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
  }

  rename(from: string, to: string): Promise<void> {
    return this.#mapped(this.#rename(from, to));
  }

  async #rename(from: string, to: string): Promise<void> {
    const source = this.#abs(from);
    const target = this.#abs(to);
    // A folder (a base's) is published by its rename: its entries must be durable first, also
    // those of files a write created through another instance (an earlier receiver session).
    if ((await stat(source)).isDirectory()) await fsyncFolders(source);
    await mkdir(dirname(target), { recursive: true });
    await rename(source, target);
    // Entries moved: the next sync of anything fsyncs its folder again (renames are rare).
    this.#entryDurable.clear();
    await fsyncDir(dirname(target));
  }

  remove(path: string): Promise<void> {
    return this.#mapped(this.#remove(path));
  }

  async #remove(path: string): Promise<void> {
    await rm(this.#abs(path), { recursive: true, force: true });
    // A file written again after this is a new entry.
    this.#entryDurable.clear();
  }

  /** A read stream of an archive file (for shipping or restoring). */
  openRead(path: string): NodeJS.ReadableStream {
    return createReadStream(this.#abs(path));
  }
}
