import type { ArchiveFiles } from '../archive/archive-files.js';
import type { Logger } from '../platform/logger.js';
import { decodeSegment, decodeLine, journalDir, journalPath, seqsOf, type JournalLine } from './spool-format.js';
import { checkpointHead, parseSegment, type ParsedSegment } from './spool-tree.js';

/** A journal segment whose checkpoint verifies; a torn one holds the operations before its first bad record. */
export interface SegmentRead extends ParsedSegment {
  /** Bytes of the records that verify, from the start. */
  goodBytes: number;
  bytes: number;
  /** Something after goodBytes does not verify. */
  torn: boolean;
  /**
   * ...and a record after it verifies and starts a later append (see APPEND_START_FIELD): the
   * bad bytes had been acknowledged. Without that, in the newest segment they may be a crash's:
   * an append's aligned middle goes to the disk directly and its start through the page cache,
   * and a remote append's pieces land independently, so an unacknowledged append can leave a
   * hole before whole records of its own. In a segment with a later one, torn is damage anyway.
   */
  damaged: boolean;
}

/** A segment's first line: when its checkpoint was made, and what it records besides. */
export interface SegmentHead {
  seq: number;
  checkpointMs: number;
  exclude?: string[];
  /** Every block written after this checkpoint went to this pack or a later one (absent in older archives). */
  pack?: number;
}

/**
 * One source's journal as read from the archive: every segment listed, and those read. A
 * journal holds up to a retention's worth of operations (gigabytes on a busy spool), so the
 * agent, retention and restore read only the segments they need; verify reads them all.
 */
export interface JournalScan {
  /** Every segment listed, oldest first. */
  seqs: number[];
  /** Segments read whose checkpoint verifies, oldest first. */
  segments: SegmentRead[];
  /**
   * Segments read that exist but whose checkpoint does not verify. A crash never leaves one (a
   * new segment is written whole under a temporary name first), so each is damage: nothing in
   * it can be used, and the time it covered is unknown.
   */
  unreadable: number[];
  /** Segments listed but gone when read: removed meanwhile by the agent's retention (a live archive). */
  vanished: number[];
}

/** The segment numbers of a source's journal, oldest first. */
export async function listSegments(files: ArchiveFiles, name: string): Promise<number[]> {
  return seqsOf(await files.list(journalDir(name)), 'jnl');
}

/** Reads one segment whole (a torn tail cut off in memory, never on disk). */
export async function readSegment(files: ArchiveFiles, name: string, seq: number, logger: Logger): Promise<SegmentRead | 'unreadable' | 'vanished'> {
  const data = await files.readFile(journalPath(name, seq));
  if (data === undefined) return 'vanished';
  const { lines, goodBytes, torn, damaged } = decodeSegment(data);
  const parsed = parseSegment(seq, lines);
  if (parsed === undefined) {
    logger.error({ source: name, segment: seq }, 'spool journal segment has no complete checkpoint: it is damaged and cannot be used');
    return 'unreadable';
  }
  return { ...parsed, goodBytes, torn, damaged, bytes: data.length };
}

/**
 * `length` bytes of segment file `path` from `offset` (fewer at its end); undefined when the
 * segment is gone (retention removed it meanwhile). Any other failure (EIO, a dropped link)
 * throws: it must not pass for a removal, or a prune would drop the segment before it as well.
 */
async function readSegmentAt(files: ArchiveFiles, path: string, offset: number, length: number): Promise<Buffer | undefined> {
  return files.readAt(path, offset, length).catch(async (err: unknown) => {
    if ((await files.size(path)) === undefined) return undefined;
    throw err;
  });
}

/** Bytes read at a time looking for a segment's first line (a ckpt line with a long exclude list may need more). */
const HEAD_READ_BYTES = 16 * 1024;
/** A first line longer than this is not a checkpoint's. */
const HEAD_BYTES_MAX = 1024 * 1024;

/** A segment's first line, when it is a checkpoint's and verifies; 'vanished' when the segment is gone (removed meanwhile). Other read failures throw. */
export async function readSegmentHead(files: ArchiveFiles, name: string, seq: number): Promise<SegmentHead | 'unreadable' | 'vanished'> {
  const path = journalPath(name, seq);
  let data = Buffer.alloc(0);
  for (;;) {
    const more = await readSegmentAt(files, path, data.length, HEAD_READ_BYTES);
    if (more === undefined) return 'vanished';
    data = Buffer.concat([data, more]);
    const nl = data.indexOf(0x0a);
    if (nl >= 0) {
      const head = checkpointHead(decodeLine(data, 0, nl));
      return head === undefined ? 'unreadable' : { seq, ...head };
    }
    if (more.length < HEAD_READ_BYTES || data.length >= HEAD_BYTES_MAX) return 'unreadable';
  }
}

/**
 * Bytes first read looking for the end of a segment's checkpoint, doubled at every further read
 * up to the most: a small tree's checkpoint comes in one read, a large one's (tens of MB for
 * hundreds of thousands of files) in a few, each a round trip on a remote archive.
 */
const CHECKPOINT_READ_BYTES_MIN = 64 * 1024;
const CHECKPOINT_READ_BYTES_MAX = 4 * 1024 * 1024;

/**
 * A segment's checkpoint alone (its operations neither read nor decoded), for retention: a
 * segment holds up to DEFAULT_SPOOL_SEGMENT_BYTES_MAX of operations after its checkpoint, which
 * read and decoded whole held the agent's event loop for most of a second at every new segment.
 * 'unreadable' when the checkpoint does not verify or ends before its end marker; 'vanished'
 * when the segment is gone. Other read failures throw.
 */
export async function readSegmentCheckpoint(files: ArchiveFiles, name: string, seq: number): Promise<ParsedSegment | 'unreadable' | 'vanished'> {
  const path = journalPath(name, seq);
  const lines: JournalLine[] = [];
  /** The pieces of a line that began in an earlier read (joined once its end arrives: a long line is copied once). */
  const partial: Buffer[] = [];
  for (let offset = 0, chunk = CHECKPOINT_READ_BYTES_MIN; ; chunk = Math.min(2 * chunk, CHECKPOINT_READ_BYTES_MAX)) {
    const more = await readSegmentAt(files, path, offset, chunk);
    if (more === undefined) return 'vanished';
    offset += more.length;
    let pos = 0;
    for (let nl = more.indexOf(0x0a); nl >= 0; nl = more.indexOf(0x0a, pos)) {
      let line: JournalLine | undefined;
      if (partial.length > 0) {
        const whole = Buffer.concat([...partial.splice(0), more.subarray(pos, nl + 1)]);
        line = decodeLine(whole, 0, whole.length - 1);
      } else line = decodeLine(more, pos, nl);
      if (line === undefined) return 'unreadable';
      lines.push(line);
      pos = nl + 1;
      if (line.op === 'ckpt-end') return parseSegment(seq, lines) ?? 'unreadable';
      // Anything but the checkpoint's lines before its end marker: no checkpoint.
      if (lines.length === 1 ? line.op !== 'ckpt' : line.op !== 'ent') return 'unreadable';
    }
    if (pos < more.length) partial.push(more.subarray(pos));
    if (more.length < chunk) return 'unreadable';
  }
}

/** Reads every journal segment of a source (verify). */
export async function scanJournal(files: ArchiveFiles, name: string, logger: Logger): Promise<JournalScan> {
  const scan: JournalScan = { seqs: await listSegments(files, name), segments: [], unreadable: [], vanished: [] };
  for (const seq of scan.seqs) addRead(scan, seq, await readSegment(files, name, seq, logger));
  const last = newestSeq(scan);
  for (const s of scan.segments) {
    if ((s.torn && s.seq !== last) || s.damaged) logger.error({ source: name, segment: s.seq, goodBytes: s.goodBytes, bytes: s.bytes }, 'spool journal segment is damaged: a record in it does not verify, and a later segment follows; only the records before it can be used');
  }
  return scan;
}

/** Files what readSegment found for `seq` in `scan` (segments kept in order). */
export function addRead(scan: JournalScan, seq: number, read: SegmentRead | 'unreadable' | 'vanished'): void {
  if (read === 'unreadable') scan.unreadable.push(seq);
  else if (read === 'vanished') scan.vanished.push(seq);
  else {
    scan.segments.push(read);
    scan.segments.sort((a, b) => a.seq - b.seq);
  }
}

/** The newest segment number listed, readable or not (0: none). */
export const newestSeq = (scan: JournalScan): number => scan.seqs[scan.seqs.length - 1] ?? 0;

/**
 * Why the operations of `segment` may not reach the start of the next segment (the state at a
 * point after its last usable operation is then unknown), or undefined when they do. A record
 * that does not verify is normal only in the newest segment, unless a later append follows it
 * (see SegmentRead.damaged): a crash cut an append that was never acknowledged. In an older
 * one, records that were made durable are gone; so are those of a missing or unreadable next
 * segment. The next segment
 * must have been read into `scan` when it is listed.
 */
export function spanLoss(scan: JournalScan, segment: SegmentRead): string | undefined {
  const damagedAfter = `journal segment ${segment.seq} is damaged after its first ${segment.goodBytes} of ${segment.bytes} bytes`;
  if (segment.seq === newestSeq(scan)) return segment.damaged ? damagedAfter : undefined;
  if (segment.torn) return damagedAfter;
  const next = segment.seq + 1;
  if (scan.unreadable.includes(next)) return `journal segment ${next} is damaged (its checkpoint does not verify)`;
  if (!scan.segments.some((s) => s.seq === next)) return `journal segment ${next} is missing`;
  return undefined;
}
