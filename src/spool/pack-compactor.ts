import type { ArchiveFiles } from '../archive/archive-files.js';
import type { Logger } from '../platform/logger.js';
import { blake3Unavailable, blockMatches, canCheckBlock } from './block-hash.js';
import type { PackWriter } from './pack-writer.js';
import { blockLength, blockPieces, packDir, packPath, packsOf, placeKey, seqsOf, type BlockPiece, type BlockRef } from './spool-format.js';
import type { SpoolTree } from './spool-tree.js';

export interface CompactLimits {
  /** A pack whose live share is below this is emptied: its live blocks are copied forward. */
  liveRatioMin: number;
  /** At most this many bytes are copied per call (the rest waits for the next checkpoint). */
  bytesMax: number;
  /** Bytes read from the archive at once. */
  readBytes: number;
}

interface LiveBlock {
  offset: number;
  length: number;
  hash: string;
}

/**
 * Pruning drops a pack only when no kept journal segment refers to it, so one long-lived file
 * would pin a pack full of long-deleted data forever. Before a checkpoint is written, the live
 * blocks of mostly-dead packs are copied into the current pack and the tree is pointed at the
 * copies; the checkpoint records the new places, and once the segments older than it leave the
 * retention window, nothing refers to the old pack and pruning removes it. Each byte is copied
 * at most once per time its pack falls below `liveRatioMin`, so copying costs at most what it frees.
 *
 * A block stored in pieces (an append extended it) with a piece in such a pack is copied whole:
 * to free a piece of a few bytes it may copy up to a block, once (the copy is one piece), within
 * `bytesMax` per call like any copy. Copying only the piece would keep the block's pieces spread
 * over ever more packs.
 *
 * The copies are queued on `pack`; the caller flushes it before writing the checkpoint.
 * Returns the bytes copied.
 */
export async function relocateSparsePacks(
  tree: SpoolTree,
  files: ArchiveFiles,
  name: string,
  pack: PackWriter,
  known: Map<string, BlockRef>,
  limits: CompactLimits,
  log: Logger,
): Promise<number> {
  /** Blocks stored whole, by pack and offset: copied in runs of neighbours. */
  const live = new Map<number, Map<number, LiveBlock>>();
  /** Blocks stored in pieces (see BlockRef), by where their bytes lie: copied whole, assembled. */
  const pieced = new Map<string, { hash: string; pieces: BlockPiece[] }>();
  /** Live bytes per pack: the longest run from each offset (a block and the head of one an append extended share theirs). */
  const runs = new Map<number, Map<number, number>>();
  const addRun = ([p, offset, length]: BlockPiece): void => {
    let at = runs.get(p);
    if (at === undefined) runs.set(p, (at = new Map()));
    at.set(offset, Math.max(at.get(offset) ?? 0, length));
  };
  for (const e of tree.entries.values()) {
    if (e.kind !== 'file') continue;
    e.blocks.forEach((b, i) => {
      const length = blockLength(e.size, i, tree.blockBytes);
      const pieces = blockPieces(b, length);
      // Damaged (verify reports it): left where it is, and so are its packs.
      if (pieces === undefined) {
        for (const p of packsOf(b)) addRun([p, 0, Infinity]);
        return;
      }
      pieces.forEach(addRun);
      if (pieces.length > 1) {
        pieced.set(placeKey(b), { hash: b[0], pieces });
        return;
      }
      const [hash, p, offset] = b;
      let blocks = live.get(p);
      if (blocks === undefined) live.set(p, (blocks = new Map()));
      blocks.set(offset, { offset, length, hash });
    });
  }
  const sparse = new Set<number>();
  const listed = new Set(seqsOf(await files.list(packDir(name)), 'pack'));
  for (const p of listed) {
    const at = runs.get(p);
    if (p >= pack.seq || at === undefined) continue;
    const size = (await files.size(packPath(name, p))) ?? 0;
    let liveBytes = 0;
    for (const length of at.values()) liveBytes += length;
    if (liveBytes < size * limits.liveRatioMin) sparse.add(p);
  }
  if (sparse.size === 0) return 0;
  /** Where the block is already held outside the packs being emptied, if anywhere. */
  const heldElsewhere = (hash: string): BlockRef | undefined => {
    const elsewhere = known.get(hash);
    return elsewhere !== undefined && packsOf(elsewhere).every((p) => !sparse.has(p)) ? elsewhere : undefined;
  };
  const moved = new Map<string, BlockRef>();
  let copied = 0;
  let unchecked = 0;
  for (const p of sparse) {
    if (copied >= limits.bytesMax) break;
    const blocks = [...(live.get(p)?.values() ?? [])].sort((a, b) => a.offset - b.offset);
    // Neighbouring blocks are read together, up to readBytes at once.
    for (let i = 0; i < blocks.length && copied < limits.bytesMax; ) {
      const first = blocks[i] as LiveBlock;
      let j = i + 1;
      let end = first.offset + first.length;
      for (; j < blocks.length; j++) {
        const next = blocks[j] as LiveBlock;
        if (next.offset !== end || end + next.length - first.offset > limits.readBytes) break;
        end += next.length;
      }
      const start = first.offset;
      const data = await files.readAt(packPath(name, p), start, end - start);
      for (const b of blocks.slice(i, j)) {
        if (!canCheckBlock(b.hash)) {
          // Named by a function this host cannot compute (BLAKE3 without its module): it is
          // not copied unchecked; it stays where it is, and its pack with it.
          unchecked += 1;
          continue;
        }
        const bytes = data.subarray(b.offset - start, b.offset - start + b.length);
        if (bytes.length !== b.length || !blockMatches(bytes, b.hash)) {
          // Copying would spread the damage; the block stays where it is and verify reports it.
          log.error({ code: 'SPOOL_DATA_DAMAGED', pack: p, offset: b.offset }, `spool pack ${p} of ${name} does not hold the recorded block at offset ${b.offset}; left in place`);
          continue;
        }
        const elsewhere = heldElsewhere(b.hash);
        let ref: BlockRef;
        if (elsewhere !== undefined) ref = elsewhere;
        else {
          const [np, no] = await pack.add(bytes);
          ref = [b.hash, np, no];
          copied += b.length;
        }
        known.set(b.hash, ref);
        moved.set(`${p}:${b.offset}`, ref);
      }
      i = j;
    }
  }
  // A block in pieces with a piece in a pack being emptied is assembled and copied whole.
  for (const [key, { hash, pieces }] of pieced) {
    if (copied >= limits.bytesMax) break;
    if (!pieces.some(([p]) => sparse.has(p))) continue;
    if (!canCheckBlock(hash)) {
      unchecked += 1;
      continue;
    }
    // A piece in a pack that is not there (damage: verify names it) is not read: left in place,
    // as a block whole in such a pack is, and the pass goes on.
    const missing = pieces.find(([p]) => !listed.has(p));
    if (missing !== undefined) {
      log.error({ code: 'SPOOL_DATA_MISSING', pack: missing[0], pieces }, `spool pack ${missing[0]} of ${name}, which holds a piece of a live block, is missing; the block is left in place`);
      continue;
    }
    const parts: Buffer[] = [];
    for (const [p, offset, length] of pieces) parts.push(await files.readAt(packPath(name, p), offset, length));
    const bytes = Buffer.concat(parts);
    const length = pieces.reduce((n, piece) => n + piece[2], 0);
    if (bytes.length !== length || !blockMatches(bytes, hash)) {
      log.error({ code: 'SPOOL_DATA_DAMAGED', pieces }, `spool packs of ${name} do not hold the recorded block in pieces ${JSON.stringify(pieces)}; left in place`);
      continue;
    }
    let ref = heldElsewhere(hash);
    if (ref === undefined) {
      const [np, no] = await pack.add(bytes);
      ref = [hash, np, no];
      copied += length;
    }
    known.set(hash, ref);
    moved.set(key, ref);
  }
  for (const e of tree.entries.values()) {
    if (e.kind !== 'file') continue;
    for (let i = 0; i < e.blocks.length; i++) {
      const b = e.blocks[i] as BlockRef;
      const to = moved.get(placeKey(b));
      if (to !== undefined) e.blocks[i] = to;
    }
  }
  if (unchecked > 0) log.warn({ code: 'BLOCK_HASH_UNAVAILABLE', source: name, blocks: unchecked, hint: blake3Unavailable().fix }, `${unchecked} live spool blocks of ${name} are named by BLAKE3, and ${blake3Unavailable().why}: left in their packs`);
  log.info({ source: name, packs: [...sparse], blocks: moved.size, bytes: copied }, 'live spool blocks copied out of mostly-dead packs');
  return copied;
}
