import { blockMatches, canCheckBlock } from './block-hash.js';
import type { FileReader } from './file-reader.js';
import type { PackWriter } from './pack-writer.js';
import { blockCount, blockLength, blockPieces, type BlockPiece, type BlockRef, type FileEntry } from './spool-format.js';
import type { Found } from './tree-scanner.js';

export type ShipResult =
  /** `changedWhileRead`, `grewTo`: as the reader's (ReadOutcome). */
  | { kind: 'shipped'; found: Found; set: Array<[number, ...BlockRef]>; blocks: BlockRef[]; dataBytes: number; rereads: number; changedWhileRead?: true; grewTo?: number }
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
  /** A run of new blocks at least this long is written from the read buffer instead of copied. */
  directBytes: number;
  /** A block extended by appends is stored in at most this many pieces, then shipped whole (0: always whole). */
  piecesMax: number;
  /** Test seam: runs once the file is open and its size known, before any byte is read. */
  beforeRead?: (() => Promise<void> | void) | undefined;
  /** The source names this file append-only (see the reader's ReadJob). */
  appendOnly?: boolean;
}

/**
 * Reads a file (through the FileReader, which checks that what it read is one version of the
 * file, see there) and ships the blocks that differ from what the archive has for it
 * (`before`): an append ships its new bytes (the old last block, when partial, is extended by a
 * piece: see BlockRef), an in-place rewrite its changed blocks, a block the archive already
 * holds anywhere is referenced instead. `scanned` (the scan's lstat)
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
      // New blocks side by side in the piece go to the pack as one run: a long one written
      // straight from the reader's buffer, a short one copied into the pack's batch.
      const written: Array<Promise<void>> = [];
      let run: Array<[index: number, hash: string, length: number]> = [];
      let runStart = 0;
      let runBytes = 0;
      /** Block `i` is now at `ref`, `bytes` of it shipped by this read. */
      const stored = (i: number, ref: BlockRef, bytes: number): void => {
        ctx.known.set(ref[0], ref);
        blocks.push(ref);
        set.push([i, ...ref]);
        dataBytes += bytes;
      };
      const endRun = async (): Promise<void> => {
        if (run.length === 0) return;
        const bytes = piece.subarray(runStart, runStart + runBytes);
        let at: [number, number];
        if (runBytes >= ctx.directBytes) {
          const direct = await ctx.pack.addDirect(bytes);
          at = direct.at;
          written.push(direct.written);
        } else at = await ctx.pack.add(bytes);
        let offset = at[1];
        for (const [i, h, length] of run) {
          stored(i, [h, at[0], offset], length);
          offset += length;
        }
        run = [];
        runBytes = 0;
      };
      for (let k = 0, at = 0; at < piece.length; k++, at += B) {
        const i = (pos + at) / B;
        const h = hashes[k] as string;
        const length = blockLength(size, i, B);
        const old = before?.blocks[i];
        if (old !== undefined && old[0] === h && (i < count - 1 || before?.size === size || length === B)) {
          await endRun();
          blocks.push(old);
          continue;
        }
        // A block the run already holds is referenced, not stored twice: the run ends first.
        if (run.some(([, rh]) => rh === h)) await endRun();
        const ref = ctx.known.get(h);
        if (ref !== undefined) {
          await endRun();
          blocks.push(ref);
          set.push([i, ...ref]);
          continue;
        }
        const extended = old === undefined || before === undefined ? undefined : extension(old, blockLength(before.size, i, B), piece.subarray(at, at + length), ctx.piecesMax);
        if (extended !== undefined) {
          // The block as the archive has it, then the bytes appended to it: only those are shipped.
          await endRun();
          const [pack, offset] = await ctx.pack.add(extended.appended);
          const [[headPack, headOffset], ...tail] = extended.pieces;
          stored(i, [h, headPack, headOffset, [...tail, [pack, offset, extended.appended.length]]], extended.appended.length);
          continue;
        }
        if (run.length === 0) runStart = at;
        run.push([i, h, length]);
        runBytes += length;
      }
      await endRun();
      // The reader keeps the piece's buffer until these writes have read it. A failed write
      // fails the pass at the pack's flush, before any journal line can refer to it.
      return written.length === 0 ? undefined : { hold: Promise.allSettled(written) };
    },
  }, ctx.appendOnly);
  if (outcome.kind === 'read') {
    const { kind: _read, ...read } = outcome;
    return { kind: 'shipped', ...read, set, blocks, dataBytes };
  }
  return outcome;
}

/**
 * When `bytes` (a block as read now) is the archive's block `old` (of `oldLength` bytes) with
 * bytes appended, and `old` has fewer than `piecesMax` pieces: where `old` lies and the appended
 * bytes. Proven by hashing the first `oldLength` bytes with the function `old` was named by (an
 * id this host cannot compute proves nothing: the block is shipped whole).
 */
function extension(old: BlockRef, oldLength: number, bytes: Buffer, piecesMax: number): { pieces: [BlockPiece, ...BlockPiece[]]; appended: Buffer } | undefined {
  if (oldLength >= bytes.length || !canCheckBlock(old[0])) return undefined;
  // A place of no known form (damage, which verify reports) is not extended: its tail could not be.
  const pieces = blockPieces(old, oldLength);
  if (pieces === undefined || pieces.length >= piecesMax) return undefined;
  return blockMatches(bytes.subarray(0, oldLength), old[0]) ? { pieces, appended: bytes.subarray(oldLength) } : undefined;
}
