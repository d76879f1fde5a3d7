import { crc32 } from '../core/crc32.js';
import type { BlockHashName } from './block-hash.js';

/**
 * The on-disk format of one spool source in the archive, under files/<source name>/:
 *
 *   source.json                 what the source is: original path, excludes, hooks, block size
 *   packs/<seq>.pack            raw data, append-only; blocks are referenced by (pack, offset)
 *   journal/<seq>.jnl           append-only journal segments; each one starts with a checkpoint
 *                               (the whole tree's state) followed by timestamped operations
 *
 * A journal line is `<crc32 as 8 hex digits> <json>\n`; a line whose CRC does not match ends
 * the journal (a torn tail after a crash). A file's content is a list of fixed-size blocks,
 * each a reference into a pack plus its hash, so an in-place rewrite records only the blocks
 * that changed and an append only the new ones. A block an append extended is stored as the
 * block it was plus the appended bytes (see BlockRef), so an append ships its new bytes, not
 * its file's whole last block again. Data reaches a pack (fsynced) before the journal line
 * that references it, so a durable journal line never points at missing bytes.
 */
/**
 * source.json's `format`: 2 records `completeFromMs`; 3, block ids that may be BLAKE3's
 * (block-hash.ts); 4, blocks stored in pieces (BlockRef's tail). A reader refuses a source of a
 * later format than its own (a newer hotspare wrote it): hotspare before format 3 did not
 * check, and took BLAKE3 ids for damaged blocks; one of format 3 would read a block in pieces
 * as one run of bytes and find it damaged.
 */
export const SPOOL_FORMAT_VERSION = 4;

/** Why this hotspare must not read or extend a source written in `format`; undefined when it may. */
export function newerSourceFormat(format: unknown): string | undefined {
  return typeof format === 'number' && format > SPOOL_FORMAT_VERSION ? `was written by a newer hotspare (spool format ${format}; this one knows up to ${SPOOL_FORMAT_VERSION})` : undefined;
}

/** A run of a block's bytes in a pack. */
export type BlockPiece = [pack: number, offset: number, length: number];

/**
 * A block of a file: hash of its bytes, pack number, offset in the pack. Its length follows from
 * the file size. A block an append extended (format 4) has a tail: its bytes are the head, from
 * (pack, offset), then each tail piece in order; the head's length is the block's less the
 * tail's. An append to a file whose last block is partial ships only the appended bytes (a
 * monitoring system's feed file grows by 4 bytes every few seconds; shipping its last block
 * again each time cost up to a block per append), and once a block has
 * DEFAULT_SPOOL_BLOCK_PIECES_MAX pieces it is shipped whole again, so a restore reads a bounded
 * number of runs per block and a journal line stays short.
 */
export type BlockRef = [hash: string, pack: number, offset: number] | [hash: string, pack: number, offset: number, tail: BlockPiece[]];

/**
 * Where the bytes of a block of `length` bytes lie, in order; undefined when the reference cannot
 * describe such a block (a tail that is no list of positive whole-number pieces, or longer than
 * the block): a damaged or foreign journal, which the caller reports.
 */
export function blockPieces(ref: BlockRef, length: number): [BlockPiece, ...BlockPiece[]] | undefined {
  const [, pack, offset] = ref;
  if (!isCount(pack) || !isCount(offset)) return undefined;
  if (ref.length === 3) return [[pack, offset, length]];
  const tail: unknown = ref[3];
  if (ref.length !== 4 || !Array.isArray(tail)) return undefined;
  let head = length;
  for (const piece of tail as unknown[]) {
    if (!Array.isArray(piece) || piece.length !== 3 || !piece.every(isCount) || (piece[2] as number) === 0) return undefined;
    head -= piece[2] as number;
  }
  if (head <= 0) return undefined;
  return [[pack, offset, head], ...(tail as BlockPiece[])];
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** The packs a block's bytes lie in (of a tail that is no list, none: blockPieces reports it). */
export function packsOf(ref: BlockRef): number[] {
  const tail: unknown = ref[3];
  return Array.isArray(tail) ? [ref[1], ...(tail as unknown[]).map((p) => (Array.isArray(p) ? (p[0] as number) : ref[1]))] : [ref[1]];
}

/** Where a block's bytes lie, for messages: `at pack 3, offset 65536`, or `in 2 pieces (...)`. */
export function placeWords(pieces: readonly BlockPiece[]): string {
  const one = (p: BlockPiece): string => `pack ${p[0]}, offset ${p[1]}`;
  return pieces.length === 1 ? `at ${one(pieces[0] as BlockPiece)}` : `in ${pieces.length} pieces (${pieces.map((p) => `${one(p)}, ${p[2]} bytes`).join('; ')})`;
}

/**
 * A key that names where a block's bytes lie (equal keys: the same bytes of the same packs).
 * Never throws: the compactor keys every block of the tree, a damaged one too (a tail that is
 * no list of pieces, which blockPieces reports), and must go on past it.
 */
export const placeKey = (ref: BlockRef): string => {
  if (ref.length !== 4) return `${ref[1]}:${ref[2]}`;
  const tail: unknown = ref[3];
  return `${ref[1]}:${ref[2]}+${Array.isArray(tail) && tail.every((p) => Array.isArray(p)) ? (tail as unknown[][]).map((p) => p.join(':')).join('+') : JSON.stringify(tail)}`;
};

export interface FileEntry {
  kind: 'file';
  mode: number;
  mtimeNs: string;
  ctimeNs: string;
  size: number;
  ino: number;
  /** Owner (absent in entries recorded before owners were kept). */
  uid?: number;
  gid?: number;
  blocks: BlockRef[];
  /** Read so soon after its last write that a same-size rewrite could share its mtime: hash again. */
  racy?: boolean;
}
export interface DirEntry {
  kind: 'dir';
  mode: number;
  mtimeNs: string;
  ino: number;
  uid?: number;
  gid?: number;
}
export interface LinkEntry {
  kind: 'link';
  target: string;
  mtimeNs: string;
  ino: number;
  uid?: number;
  gid?: number;
}
export type SpoolEntry = FileEntry | DirEntry | LinkEntry;

/**
 * One journal operation; `t` is when the agent observed the change (ms since the epoch).
 *
 * `u` (see UNWATCHED_SINCE_FIELD): the change was found by the first pass after nobody watched
 * the source (the agent stopped, or the standby away), so it happened at an unknown moment
 * after `u` (the last observation before) and at or before `t`. Restore to a point inside
 * [u, t) places it by the file's mtime, and says so (SPOOL_POINT_UNCERTAIN). Readers that
 * predate it ignore the field (as they do `b`), and restore such records at `t` as before.
 *
 * `seen`: no change; the tree the journal holds was the source's whole state when the agent
 * last looked at `t`. Written after the first full pass after an outage (closing its window)
 * and every DEFAULT_SPOOL_SEEN_RECORD_MS while the source is idle, so that the next start
 * knows since when nobody watched. Readers that predate it fold it as nothing (SpoolTree.apply
 * has no case for it) and take its `t` as their point's time.
 */
export type SpoolOp = (
  | { op: 'file'; t: number; path: string; e: Omit<FileEntry, 'blocks'>; set: Array<[index: number, ...ref: BlockRef]> }
  | { op: 'dir'; t: number; path: string; e: DirEntry }
  | { op: 'link'; t: number; path: string; e: LinkEntry }
  | { op: 'rm'; t: number; path: string }
  | { op: 'mv'; t: number; from: string; to: string }
  | { op: 'seen'; t: number }
) & { u?: number };

/** The field of an operation found after an outage: since when nobody watched (see SpoolOp). */
export const UNWATCHED_SINCE_FIELD = 'u';

/** The start of the window an operation's change happened in, when it is not known to the moment (see SpoolOp's `u`). */
export function unwatchedSince(op: SpoolOp): number | undefined {
  return typeof op.u === 'number' && Number.isFinite(op.u) && op.u < op.t ? op.u : undefined;
}

/** Lines of a checkpoint: a header, one entry per path, an end marker with the count. */
export type CheckpointLine =
  /**
   * `exclude`: the source's excludes while this segment was written (absent in archives from
   * before it was recorded). Excludes change only when the agent starts, with a new segment.
   * `pack`: every block written after the checkpoint goes to this pack or a later one, so the
   * packs a segment and all after it can refer to are its checkpoint's and those from `pack` on:
   * retention reads one checkpoint, not every operation kept.
   */
  | { op: 'ckpt'; t: number; seq: number; exclude?: string[]; pack?: number }
  | { op: 'ent'; path: string; e: SpoolEntry }
  | { op: 'ckpt-end'; n: number };

export type JournalLine = SpoolOp | CheckpointLine;

export const sourceDir = (name: string): string => `files/${name}`;
export const sourceMetaPath = (name: string): string => `files/${name}/source.json`;
export const journalDir = (name: string): string => `files/${name}/journal`;
export const packDir = (name: string): string => `files/${name}/packs`;
export const journalPath = (name: string, seq: number): string => `${journalDir(name)}/${String(seq).padStart(10, '0')}.jnl`;
export const packPath = (name: string, seq: number): string => `${packDir(name)}/${String(seq).padStart(10, '0')}.pack`;

const SEQ_FILE = /^(\d{10})\.(jnl|pack)$/;
/** Sequence numbers of journal or pack files in a folder listing, ascending. */
export function seqsOf(names: string[], ext: 'jnl' | 'pack'): number[] {
  const out: number[] = [];
  for (const n of names) {
    const m = SEQ_FILE.exec(n);
    if (m?.[2] === ext) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** What source.json holds. */
export interface SourceMeta {
  format: number;
  name: string;
  path: string;
  exclude: string[];
  blockBytes: number;
  /**
   * How the agent names new blocks (block-hash.ts); absent in archives from before BLAKE3, whose
   * blocks are SHA-256's. Readers go by each block id's own form, not by this.
   */
  blockHash?: BlockHashName;
  retentionSeconds: number;
  hooks: Array<{ run: string; timeoutSeconds: number }>;
  /**
   * From this instant (ms) on the archive holds the source's whole tree: the end of its first
   * full pass. Before it, the tree is partial (the first pass commits as it goes), and a
   * restore to such a point would delete from the target what the pass had not reached.
   * Format 2 records it (absent: no full pass has completed yet); format 1 did not, and its
   * history counts as complete from its start.
   */
  completeFromMs?: number;
}

/** source.json's text: the agent writes it when it changes (compared as text) and once the first full pass is in. */
export const encodeSourceMeta = (meta: SourceMeta): string => `${JSON.stringify(meta, null, 2)}\n`;

/** Where a source's history is complete from (see SourceMeta.completeFromMs); undefined: not yet. */
export const historyCompleteFromMs = (meta: SourceMeta): number | undefined => (meta.format < 2 ? 0 : meta.completeFromMs);

/** A journal line as text (the CRC covers the JSON's UTF-8 bytes); many are joined and converted to bytes at once. */
export function encodeLineText(line: JournalLine): string {
  const json = JSON.stringify(line);
  return `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`;
}

/**
 * The first operation of each journal append carries `"b": 1` (older archives: none). Appends
 * go one after the other, each made durable before the next begins, so a record that does not
 * verify followed by one that verifies and starts a later append was acknowledged: damage. A
 * crash can leave a hole only in the last append, before records of that same append.
 */
export const APPEND_START_FIELD = 'b';

/** Marks an encoded operation line as the first of an append (see APPEND_START_FIELD). */
export function markAppendStart(line: string): string {
  const op = JSON.parse(line.slice(9, -1)) as Record<string, unknown>;
  return encodeLineText({ ...op, [APPEND_START_FIELD]: 1 } as unknown as JournalLine);
}

/**
 * Parses a journal segment. Returns the lines that verify and the byte length they cover;
 * `torn` says whether anything after them was cut off or damaged, and `damaged` whether a line
 * after the first bad one verifies and starts a later append: then the bad bytes had been made
 * durable and acknowledged, and what they held cannot be known. Without that, the bad bytes may
 * be a crash's (a cut tail, or a hole in the last append).
 */
export function decodeSegment(data: Buffer): { lines: JournalLine[]; goodBytes: number; torn: boolean; damaged: boolean } {
  const lines: JournalLine[] = [];
  let pos = 0;
  while (pos < data.length) {
    const nl = data.indexOf(0x0a, pos);
    const line = nl < 0 ? undefined : decodeLine(data, pos, nl);
    if (line === undefined) return { lines, goodBytes: pos, torn: true, damaged: nl >= 0 && appendStartsAfter(data, nl + 1) };
    lines.push(line);
    pos = nl + 1;
  }
  return { lines, goodBytes: pos, torn: false, damaged: false };
}

/** The line data[pos..nl) (nl: its '\n') when its CRC and JSON check out. */
export function decodeLine(data: Buffer, pos: number, nl: number): JournalLine | undefined {
  if (nl - pos < 10 || data[pos + 8] !== 0x20) return undefined;
  const json = data.subarray(pos + 9, nl);
  if (crc32(json).toString(16).padStart(8, '0') !== data.toString('latin1', pos, pos + 8)) return undefined;
  try {
    return JSON.parse(json.toString('utf8')) as JournalLine;
  } catch {
    return undefined;
  }
}

/** Whether a whole line from `pos` on verifies and starts an append. */
function appendStartsAfter(data: Buffer, pos: number): boolean {
  while (pos < data.length) {
    const nl = data.indexOf(0x0a, pos);
    if (nl < 0) return false;
    const line = decodeLine(data, pos, nl) as Record<string, unknown> | undefined;
    if (line?.[APPEND_START_FIELD] === 1) return true;
    pos = nl + 1;
  }
  return false;
}

/** Number of blocks of a file of `size` bytes. */
export function blockCount(size: number, blockBytes: number): number {
  return Math.ceil(size / blockBytes);
}

/** Length of block `index` of a file of `size` bytes. */
export function blockLength(size: number, index: number, blockBytes: number): number {
  return Math.min(blockBytes, size - index * blockBytes);
}
