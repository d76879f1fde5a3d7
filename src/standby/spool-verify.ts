import { LocalArchiveFiles } from '../archive/archive-files.js';
import { errorMessage } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';
import { blockHashOf, blockMatches, canCheckBlock } from '../spool/block-hash.js';
import { blockLength, blockPieces, journalDir, placeWords, seqsOf, type BlockPiece, type BlockRef, type SourceMeta } from '../spool/spool-format.js';
import { scanJournal, spanLoss } from '../spool/journal-scan.js';
import { treeFromCheckpoint } from '../spool/spool-tree.js';
import { PackBlockReader } from './pack-block-reader.js';
import { readSpoolSources } from './spool-restore.js';

export interface SpoolVerifyResult {
  source: string;
  segments: number;
  /** Distinct blocks referred to (by where their bytes lie). */
  blocks: number;
  /** Of those, blocks whose bytes are there but which this host cannot check (BLAKE3 without its module). */
  unchecked: number;
  /** What is wrong, first damage first; empty when intact. */
  problems: string[];
}

/**
 * Checks one spool source's history the way a restore would use it: every kept journal
 * segment verifies (a torn tail only in the newest: a crash cut it) and follows the one before
 * without a gap, its checkpoint plus its operations fold, and every block any of them refers
 * to is in its pack with the bytes its hash says.
 */
export async function verifySpoolSource(archiveDir: string, meta: SourceMeta, logger: Logger, seams: { afterJournalRead?: () => Promise<void> } = {}): Promise<SpoolVerifyResult> {
  const files = new LocalArchiveFiles(archiveDir);
  const scan = await scanJournal(files, meta.name, logger);
  const segments = scan.segments;
  const problems: string[] = [];
  for (const seq of scan.unreadable) problems.push(`journal segment ${seq} is damaged: its checkpoint does not verify`);
  segments.forEach((segment, i) => {
    const loss = spanLoss(scan, segment);
    // A missing or unreadable next segment is reported once, as itself.
    if (loss !== undefined && (segment.torn || segment.damaged)) problems.push(`${loss}; its changes after ${new Date(segment.ops.at(-1)?.t ?? segment.checkpointMs).toISOString()} are lost`);
    const next = segments[i + 1];
    if (next !== undefined) for (let seq = segment.seq + 1; seq < next.seq; seq++) if (!scan.unreadable.includes(seq) && !scan.vanished.includes(seq)) problems.push(`journal segment ${seq} is missing`);
  });
  // Where a block lies (its pieces) → hash, each checked once; `lastSeq`: the newest segment referring to it.
  const refs = new Map<string, { pieces: BlockPiece[]; hash: string; where: string; lastSeq: number }>();
  let noteSeq = 0;
  const note = (ref: BlockRef, length: number, where: string): void => {
    const pieces = blockPieces(ref, length);
    if (pieces === undefined) {
      problems.push(`${where}: a block's place is of no known form (${String(JSON.stringify(ref.slice(1))).slice(0, 80)})`);
      return;
    }
    const hash = ref[0];
    const key = pieces.map((p) => p.join(':')).join('+');
    const seen = refs.get(key);
    if (seen === undefined) refs.set(key, { pieces, hash, where, lastSeq: noteSeq });
    else if (seen.hash !== hash) problems.push(`${where}: block ${placeWords(pieces)} is recorded with two different hashes`);
    else seen.lastSeq = noteSeq;
  };
  for (const segment of segments) {
    noteSeq = segment.seq;
    const tree = treeFromCheckpoint(segment, meta.blockBytes);
    for (const [path, e] of segment.checkpoint) {
      if (e.kind !== 'file') continue;
      e.blocks.forEach((ref, i) => note(ref, blockLength(e.size, i, meta.blockBytes), `segment ${segment.seq} checkpoint ${path}`));
    }
    for (const op of segment.ops) {
      try {
        tree.apply(op);
      } catch (err) {
        problems.push(`segment ${segment.seq}: ${errorMessage(err)}`);
        break;
      }
      if (op.op === 'file') for (const [i, ...ref] of op.set) note(ref, blockLength(op.e.size, i, meta.blockBytes), `segment ${segment.seq} ${op.path}`);
    }
  }
  await seams.afterJournalRead?.();
  /**
   * The oldest journal segment kept now, read again when a pack is missing: a running agent's
   * retention removes the oldest segments and then the packs only they referred to, and may
   * have done so since the journal was read. A block whose every referring segment is gone
   * now is no longer part of the history. Retention never removes the newest segment, so no
   * segment at all, or a folder that cannot be listed, is no retention: the pack is reported.
   */
  const retiredSince = async (lastSeq: number): Promise<boolean> => {
    const oldest = seqsOf(await files.list(journalDir(meta.name)).catch(() => []), 'jnl')[0];
    return oldest !== undefined && lastSeq < oldest;
  };
  const packs = new PackBlockReader(archiveDir, meta.name);
  /** Blocks named by a function this host cannot compute (BLAKE3 without its module): not checked, and said so. */
  let unchecked = 0;
  try {
    const first = (r: { pieces: BlockPiece[] }): BlockPiece => r.pieces[0] as BlockPiece;
    for (const ref of [...refs.values()].sort((a, b) => first(a)[0] - first(b)[0] || first(a)[1] - first(b)[1])) {
      const place = placeWords(ref.pieces);
      if (blockHashOf(ref.hash) === undefined) {
        problems.push(`${ref.where}: block ${place} has an id of no known form`);
        continue;
      }
      const got = await packs.read(ref.pieces).catch((err: NodeJS.ErrnoException) => ({ kind: 'unreadable' as const, code: err.code ?? err.message }));
      const problem =
        got.kind === 'missing' ? ((await retiredSince(ref.lastSeq)) ? 'retired' : `${ref.where}: pack ${got.pack} is missing`)
        : got.kind === 'short' ? `${ref.where}: pack ${got.pack} ends before offset ${got.end}`
        : got.kind === 'unreadable' ? `${ref.where}: a pack of block ${place} cannot be read (${got.code})`
        : undefined;
      if (problem === 'retired') continue;
      if (problem !== undefined) problems.push(problem);
      // Its bytes are there; whether they are the block's this host cannot tell.
      else if (!canCheckBlock(ref.hash)) unchecked += 1;
      else if (got.kind === 'read' && !blockMatches(got.bytes, ref.hash)) problems.push(`${ref.where}: block ${place} does not match its hash`);
    }
  } finally {
    await packs.close();
  }
  return { source: meta.name, segments: segments.length, blocks: refs.size, unchecked, problems };
}

/** verifySpoolSource for every spool source in the archive, and a problem for each whose source.json cannot be used. */
export async function verifySpoolArchive(archiveDir: string, logger: Logger): Promise<SpoolVerifyResult[]> {
  const { sources, unusable } = await readSpoolSources(archiveDir);
  const out: SpoolVerifyResult[] = unusable.map(({ name, error }) => ({ source: name, segments: 0, blocks: 0, unchecked: 0, problems: [error.message] }));
  for (const meta of sources) out.push(await verifySpoolSource(archiveDir, meta, logger));
  return out.sort((a, b) => a.source.localeCompare(b.source));
}
