import { hash } from 'node:crypto';
import type { FileReader } from './file-reader.js';
import type { PackWriter } from './pack-writer.js';
import { blockCount, blockLength, type BlockRef, type FileEntry } from './spool-format.js';
import type { Found } from './tree-scanner.js';

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
  reader: FileReader;
  /** Test seam: runs once the file is open and its size known, before any byte is read. */
  beforeRead?: (() => Promise<void> | void) | undefined;
}

/** Block hash: SHA-256 (hardware-accelerated, ~1 GB/s) cut to 128 bits, base64url. */
export function blockHash(data: Buffer): string {
  return hash('sha256', data, 'buffer').toString('base64url', 0, 16);
}

/**
 * Reads a file (through the FileReader, which checks that what it read is one version of the
 * file, see there) and ships the blocks that differ from what the archive has for it
 * (`before`): an append ships its new blocks, an in-place rewrite its changed ones, a block
 * the archive already holds anywhere is referenced instead. `scanned` (the scan's lstat)
 * serves as the "before" of the first attempt. A failure of the archive rejects; the file's
 * own failures are results.
 */
export async function shipFile(abs: string, before: FileEntry | undefined, ctx: ShipContext, scanned?: Found): Promise<ShipResult> {
  const B = ctx.blockBytes;
  let blocks: BlockRef[] = [];
  let set: Array<[number, ...BlockRef]> = [];
  let dataBytes = 0;
  const outcome = await ctx.reader.read(abs, scanned, {
    beforeRead: ctx.beforeRead,
    retry: () => {
      blocks = [];
      set = [];
      dataBytes = 0;
    },
    data: async (size, pos, piece, hashes) => {
      const count = blockCount(size, B);
      for (let k = 0, at = 0; at < piece.length; k++, at += B) {
        const i = (pos + at) / B;
        const h = hashes[k] as string;
        const length = blockLength(size, i, B);
        const old = before?.blocks[i];
        if (old !== undefined && old[0] === h && (i < count - 1 || before?.size === size || length === B)) {
          blocks.push(old);
          continue;
        }
        let ref = ctx.known.get(h);
        if (ref === undefined) {
          const [pack, offset] = await ctx.pack.add(piece.subarray(at, at + length));
          ref = [h, pack, offset];
          ctx.known.set(h, ref);
          dataBytes += length;
        }
        blocks.push(ref);
        set.push([i, ...ref]);
      }
    },
  });
  if (outcome.kind === 'read') return { kind: 'shipped', found: outcome.found, set, blocks, dataBytes, rereads: outcome.rereads };
  return outcome;
}
