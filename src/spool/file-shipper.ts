import { hash } from 'node:crypto';
import { close, constants, fstat, open, read, type BigIntStats } from 'node:fs';
import { blockCount, blockLength, type BlockRef, type FileEntry } from './spool-format.js';
import type { PackWriter } from './pack-writer.js';
import { describe, type Found } from './tree-scanner.js';

export type ShipResult =
  | { kind: 'shipped'; found: Found; set: Array<[number, ...BlockRef]>; blocks: BlockRef[]; dataBytes: number; rereads: number }
  | { kind: 'gone'; rereads: number }
  | { kind: 'not-a-file'; found: Found }
  | { kind: 'unstable' }
  | { kind: 'unreadable'; code: string };

export interface ShipContext {
  blockBytes: number;
  pack: PackWriter;
  /** Blocks the archive already holds, by hash: identical data is referenced, not shipped again. */
  known: Map<string, BlockRef>;
  attempts: number;
  /** Read buffers of `readBytes`, reused from file to file (fresh large buffers cost page faults). */
  buffers: ReadBuffers;
  /** Test seam: runs once the file is open and its size known, before any byte is read. */
  beforeRead?: (() => Promise<void> | void) | undefined;
}

/**
 * A free list of read buffers. Each file being read holds at most two, so the list never
 * holds more than twice the number of concurrent reads.
 */
export class ReadBuffers {
  readonly #free: Buffer[] = [];
  constructor(readonly bytes: number) {}
  take(): Buffer {
    return this.#free.pop() ?? Buffer.allocUnsafe(this.bytes);
  }
  give(buffer: Buffer | undefined): void {
    if (buffer !== undefined) this.#free.push(buffer);
  }
}

/** Block hash: SHA-256 (hardware-accelerated, ~1 GB/s) cut to 128 bits, base64url. */
export function blockHash(data: Buffer): string {
  return hash('sha256', data, 'buffer').toString('base64url', 0, 16);
}

const sameVersion = (a: Found, b: Found): boolean => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

// The callback API on raw descriptors: a tree of small files is bound by per-call overhead,
// and fs/promises' FileHandle costs noticeably more per call.
const openFd = (path: string, flags: number): Promise<number> => new Promise((resolve, reject) => open(path, flags, (err, fd) => (err === null ? resolve(fd) : reject(err))));
const readFd = (fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> =>
  new Promise((resolve, reject) => read(fd, buf, offset, length, position, (err, n) => (err === null ? resolve(n) : reject(err))));
const fstatFd = (fd: number): Promise<BigIntStats> => new Promise((resolve, reject) => fstat(fd, { bigint: true }, (err, st) => (err === null ? resolve(st) : reject(err))));
const closeFd = (fd: number): Promise<void> => new Promise((resolve) => close(fd, () => resolve()));

/** Marks a failure that is not the source file's. */
class NotTheFile extends Error {}
const notTheFile = <T>(p: Promise<T>): Promise<T> =>
  p.catch((err: unknown) => {
    throw new NotTheFile('archive failure', { cause: err });
  });

/** Reads up to `length` bytes at `position`; fewer only at the end of the file. */
async function readFully(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const bytesRead = await readFd(fd, buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got;
}

/**
 * Reads a file and ships the blocks that differ from what the archive has for it (`before`):
 * an append ships its new blocks, an in-place rewrite its changed ones. The file's size,
 * mtime, ctime and inode are compared before and after the read, and its link count after;
 * if anything moved, the file changed, was removed or was replaced under us and is read again,
 * so a torn mix is never recorded. `scanned` (the scan's lstat of the path) serves as the
 * "before" of the first attempt: a file that changed since the scan fails the comparison just
 * the same, and a quiet one costs one fstat instead of two. The file is opened non-blocking
 * and without following links, so a FIFO or a swapped-in link cannot hang or redirect the read.
 */
export async function shipFile(abs: string, before: FileEntry | undefined, ctx: ShipContext, scanned?: Found): Promise<ShipResult> {
  let rereads = 0;
  const B = ctx.blockBytes;
  const chunkBytes = Math.max(B, Math.floor(ctx.buffers.bytes / B) * B);
  for (let attempt = 0; attempt < ctx.attempts; attempt++) {
    let fd: number;
    try {
      fd = await openFd(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'gone', rereads };
      if (code === 'ELOOP') return { kind: 'not-a-file', found: { kind: 'link', mode: 0, mtimeNs: '0', ctimeNs: '0', size: 0, ino: 0 } };
      return { kind: 'unreadable', code };
    }
    let prefetch: Promise<number> | undefined;
    const buffers: Array<Buffer | undefined> = [undefined, undefined];
    try {
      let first: Found;
      if (attempt === 0 && scanned?.kind === 'file') first = scanned;
      else {
        first = describe(await fstatFd(fd));
        if (first.kind !== 'file') return { kind: 'not-a-file', found: first };
      }
      await ctx.beforeRead?.();
      const size = first.size;
      const count = blockCount(size, B);
      const blocks: BlockRef[] = [];
      const set: Array<[number, ...BlockRef]> = [];
      let dataBytes = 0;
      let short = false;
      let failed: NodeJS.ErrnoException | undefined;
      // Two buffers: the next piece is read into one while the other is hashed.
      if (size > 0) {
        buffers[0] = ctx.buffers.take();
        if (size > chunkBytes) buffers[1] = ctx.buffers.take();
        prefetch = readFully(fd, buffers[0], Math.min(chunkBytes, size), 0);
      }
      for (let pos = 0, turn = 0; pos < size; pos += chunkBytes, turn ^= 1) {
        const length = Math.min(chunkBytes, size - pos);
        let got: number;
        try {
          got = await (prefetch as Promise<number>);
        } catch (err) {
          prefetch = undefined;
          failed = err as NodeJS.ErrnoException;
          break;
        }
        prefetch = undefined;
        if (got < length) {
          short = true;
          break;
        }
        const piece = buffers[turn] as Buffer;
        const next = pos + length;
        if (next < size) prefetch = readFully(fd, buffers[turn ^ 1] as Buffer, Math.min(chunkBytes, size - next), next);
        for (let at = 0; at < length; at += B) {
          const i = (pos + at) / B;
          const data = piece.subarray(at, at + blockLength(size, i, B));
          const h = blockHash(data);
          const old = before?.blocks[i];
          if (old !== undefined && old[0] === h && (i < count - 1 || before?.size === size || data.length === B)) {
            blocks.push(old);
            continue;
          }
          let ref = ctx.known.get(h);
          if (ref === undefined) {
            const [pack, offset] = await notTheFile(ctx.pack.add(data));
            ref = [h, pack, offset];
            ctx.known.set(h, ref);
            dataBytes += data.length;
          }
          blocks.push(ref);
          set.push([i, ...ref]);
        }
      }
      const afterStat = await fstatFd(fd);
      const after = describe(afterStat);
      if (after.kind !== 'file') return { kind: 'not-a-file', found: after };
      if (failed !== undefined) return { kind: 'unreadable', code: failed.code ?? String(failed) };
      // No link left: the file was removed or replaced (renamed over) while we read it. Its
      // bytes were a whole version, but not one the path still names: look at the path again.
      if (short || afterStat.nlink === 0n || !sameVersion(first, after)) {
        rereads++;
        continue;
      }
      return { kind: 'shipped', found: after, set, blocks, dataBytes, rereads };
    } catch (err) {
      // A failure of the archive fails the pass; only the file's own errors make it unreadable.
      if (err instanceof NotTheFile) throw err.cause;
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return { kind: 'unreadable', code };
    } finally {
      // A read still under way must end before its descriptor closes.
      await prefetch?.catch(() => undefined);
      ctx.buffers.give(buffers[0]);
      ctx.buffers.give(buffers[1]);
      await closeFd(fd);
    }
  }
  return { kind: 'unstable' };
}
