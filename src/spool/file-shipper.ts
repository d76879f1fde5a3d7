import { constants } from 'node:fs';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
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
  /** Test seam: runs once the file is open and its size taken, before any byte is read. */
  beforeRead?: (() => Promise<void> | void) | undefined;
}

/** Block hash: SHA-256 (hardware-accelerated, ~1 GB/s) cut to 128 bits, base64url. */
export function blockHash(data: Buffer): string {
  return createHash('sha256').update(data).digest().subarray(0, 16).toString('base64url');
}

const sameVersion = (a: Found, b: Found): boolean => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/**
 * Reads a file block by block and ships the blocks that differ from what the archive has for
 * it (`before`): an append ships its new blocks, an in-place rewrite its changed ones. The
 * file's size, mtime, ctime and inode are compared before and after the read; if they moved,
 * the file changed under us and is read again, so a torn mix is never recorded. The file is
 * opened non-blocking and without following links, so a FIFO or a swapped-in link cannot hang
 * or redirect the read.
 */
export async function shipFile(abs: string, before: FileEntry | undefined, ctx: ShipContext): Promise<ShipResult> {
  let rereads = 0;
  for (let attempt = 0; attempt < ctx.attempts; attempt++) {
    let handle;
    try {
      handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'gone', rereads };
      if (code === 'ELOOP') return { kind: 'not-a-file', found: { kind: 'link', mode: 0, mtimeNs: '0', ctimeNs: '0', size: 0, ino: 0 } };
      return { kind: 'unreadable', code };
    }
    try {
      const first = describe(await handle.stat({ bigint: true }));
      if (first.kind !== 'file') return { kind: 'not-a-file', found: first };
      await ctx.beforeRead?.();
      const count = blockCount(first.size, ctx.blockBytes);
      const blocks: BlockRef[] = [];
      const set: Array<[number, ...BlockRef]> = [];
      let dataBytes = 0;
      let short = false;
      const buf = Buffer.allocUnsafe(ctx.blockBytes);
      for (let i = 0; i < count; i++) {
        const length = blockLength(first.size, i, ctx.blockBytes);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await handle.read(buf, got, length - got, i * ctx.blockBytes + got);
          if (bytesRead === 0) break;
          got += bytesRead;
        }
        if (got < length) {
          short = true;
          break;
        }
        const data = buf.subarray(0, length);
        const hash = blockHash(data);
        const old = before?.blocks[i];
        if (old !== undefined && old[0] === hash && (i < count - 1 || before?.size === first.size || length === ctx.blockBytes)) {
          blocks.push(old);
          continue;
        }
        let ref = ctx.known.get(hash);
        if (ref === undefined) {
          const [pack, offset] = await ctx.pack.add(data);
          ref = [hash, pack, offset];
          ctx.known.set(hash, ref);
          dataBytes += length;
        }
        blocks.push(ref);
        set.push([i, ...ref]);
      }
      const afterStat = await handle.stat({ bigint: true });
      const after = describe(afterStat);
      // No link left: the file was removed or replaced (renamed over) while we read it. Its
      // bytes were a whole version, but not one the path still names: look at the path again.
      if (short || afterStat.nlink === 0n || !sameVersion(first, after)) {
        rereads++;
        continue;
      }
      return { kind: 'shipped', found: after, set, blocks, dataBytes, rereads };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      return { kind: 'unreadable', code };
    } finally {
      await handle.close();
    }
  }
  return { kind: 'unstable' };
}
