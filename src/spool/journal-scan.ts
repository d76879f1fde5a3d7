import type { ArchiveFiles } from '../archive/archive-files.js';
import type { Logger } from '../platform/logger.js';
import { decodeSegment, journalDir, journalPath, seqsOf } from './spool-format.js';
import { parseSegment, type ParsedSegment } from './spool-tree.js';

/** A journal segment whose checkpoint verifies; a torn one holds the operations before its first bad record. */
export interface SegmentRead extends ParsedSegment {
  /** Bytes of the records that verify, from the start. */
  goodBytes: number;
  bytes: number;
  /** Something after goodBytes does not verify. */
  torn: boolean;
  /** ...and a record after it verifies again: bytes were lost from the middle, not cut by a crash. */
  damaged: boolean;
}

/** One source's journal as read from the archive. */
export interface JournalScan {
  /** Segments whose checkpoint verifies, oldest first. */
  segments: SegmentRead[];
  /**
   * Segments that exist but whose checkpoint does not verify. A crash never leaves one (a new
   * segment is written whole under a temporary name first), so each is damage: nothing in it
   * can be used, and the time it covered is unknown.
   */
  unreadable: number[];
}

/** Reads every journal segment of a source (torn tails cut off in memory, never on disk). */
export async function scanJournal(files: ArchiveFiles, name: string, logger: Logger): Promise<JournalScan> {
  const scan: JournalScan = { segments: [], unreadable: [] };
  for (const seq of seqsOf(await files.list(journalDir(name)), 'jnl')) {
    const data = await files.readFile(journalPath(name, seq));
    if (data === undefined) continue;
    const { lines, goodBytes, torn, damaged } = decodeSegment(data);
    const parsed = parseSegment(seq, lines);
    if (parsed === undefined) {
      logger.error({ source: name, segment: seq }, 'spool journal segment has no complete checkpoint: it is damaged and cannot be used');
      scan.unreadable.push(seq);
      continue;
    }
    if (damaged) logger.error({ source: name, segment: seq, goodBytes, bytes: data.length }, 'spool journal segment is damaged: a record in its middle does not verify; only the records before it can be used');
    scan.segments.push({ ...parsed, goodBytes, torn, damaged, bytes: data.length });
  }
  return scan;
}

/** The newest segment number present, readable or not (0: none). */
export const newestSeq = (scan: JournalScan): number => Math.max(0, ...scan.unreadable, ...scan.segments.map((s) => s.seq));

/**
 * Why the operations of `scan.segments[index]` may not reach the start of the next segment
 * (the state at a point after its last usable operation is then unknown), or undefined when
 * they do. A torn tail is normal only in the newest segment: a crash cut it, and nothing after
 * it was ever acknowledged. Anywhere else, or with good records after the bad one, records
 * that were made durable are gone; so are those of a missing or unreadable next segment.
 */
export function spanLoss(scan: JournalScan, index: number): string | undefined {
  const segment = scan.segments[index];
  if (segment === undefined) return undefined;
  if (segment.damaged) return `journal segment ${segment.seq} is damaged after its first ${segment.goodBytes} of ${segment.bytes} bytes`;
  const newest = segment.seq === newestSeq(scan);
  if (segment.torn && !newest) return `journal segment ${segment.seq} is cut short after ${segment.goodBytes} of ${segment.bytes} bytes, and a later segment follows it`;
  if (newest) return undefined;
  const next = segment.seq + 1;
  if (scan.unreadable.includes(next)) return `journal segment ${next} is damaged (its checkpoint does not verify)`;
  if (scan.segments[index + 1]?.seq !== next) return `journal segment ${next} is missing`;
  return undefined;
}
