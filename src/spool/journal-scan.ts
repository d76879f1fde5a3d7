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
  /**
   * ...and a record after it verifies again. In a segment with a later one (all its writes were
   * acknowledged before the next began) that is damage. In the newest it may be a crash too: an
   * append's aligned middle goes to the disk directly and its start through the page cache, and
   * a remote append's pieces land independently, so an unacknowledged append can leave a hole
   * before whole records.
   */
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
  /** Segments listed but gone when read: removed meanwhile by the agent's retention (a live archive). */
  vanished: number[];
}

/** Reads every journal segment of a source (torn tails cut off in memory, never on disk). */
export async function scanJournal(files: ArchiveFiles, name: string, logger: Logger): Promise<JournalScan> {
  const scan: JournalScan = { segments: [], unreadable: [], vanished: [] };
  for (const seq of seqsOf(await files.list(journalDir(name)), 'jnl')) {
    const data = await files.readFile(journalPath(name, seq));
    if (data === undefined) {
      scan.vanished.push(seq);
      continue;
    }
    const { lines, goodBytes, torn, damaged } = decodeSegment(data);
    const parsed = parseSegment(seq, lines);
    if (parsed === undefined) {
      logger.error({ source: name, segment: seq }, 'spool journal segment has no complete checkpoint: it is damaged and cannot be used');
      scan.unreadable.push(seq);
      continue;
    }
    scan.segments.push({ ...parsed, goodBytes, torn, damaged, bytes: data.length });
  }
  const last = newestSeq(scan);
  for (const s of scan.segments) {
    if (s.torn && s.seq !== last) logger.error({ source: name, segment: s.seq, goodBytes: s.goodBytes, bytes: s.bytes }, 'spool journal segment is damaged: a record in it does not verify, and a later segment follows; only the records before it can be used');
  }
  return scan;
}

/** The newest segment number present, readable or not (0: none). */
export const newestSeq = (scan: JournalScan): number => Math.max(0, ...scan.unreadable, ...scan.segments.map((s) => s.seq));

/**
 * Why the operations of `scan.segments[index]` may not reach the start of the next segment
 * (the state at a point after its last usable operation is then unknown), or undefined when
 * they do. A record that does not verify is normal only in the newest segment: a crash cut an
 * append that was never acknowledged (see SegmentRead.damaged). In an older one, records that
 * were made durable are gone; so are those of a missing or unreadable next segment.
 */
export function spanLoss(scan: JournalScan, index: number): string | undefined {
  const segment = scan.segments[index];
  if (segment === undefined) return undefined;
  const newest = segment.seq === newestSeq(scan);
  if (newest) return undefined;
  if (segment.torn) return `journal segment ${segment.seq} is damaged after its first ${segment.goodBytes} of ${segment.bytes} bytes`;
  const next = segment.seq + 1;
  if (scan.unreadable.includes(next)) return `journal segment ${next} is damaged (its checkpoint does not verify)`;
  if (scan.segments[index + 1]?.seq !== next) return `journal segment ${next} is missing`;
  return undefined;
}
