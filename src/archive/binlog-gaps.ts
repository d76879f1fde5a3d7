import { readFileSync, statSync } from 'node:fs';
import { compareBinlogPositions, type BinlogPosition } from '../core/binlog-position.js';
import { HotspareError } from '../core/errors.js';
import type { ArchiveFiles } from './archive-files.js';
import { ArchiveLayout } from './archive-layout.js';

/** `state/gaps.json`, relative to the archive root (written through ArchiveFiles, so remote too). */
export const GAPS_PATH = 'state/gaps.json';

/**
 * A hole in the archive's binlog chain, recorded when the primary had purged binlog the
 * archive needed and the archive restarted its chain at a newer base backup's file. The
 * binlog between `after` and `resumeAt` is not in the archive: promotion never replays across
 * it, and `status` and `verify` report it.
 */
export interface RecordedGap {
  /** Where the archive's binlog ended (its durable resume point) when the gap was found. */
  after: BinlogPosition;
  /** Where the chain continues: the base backup's binlog file, position 4. */
  resumeAt: BinlogPosition;
  /** The base backup the new chain starts from. */
  base: string;
  /** The oldest binlog file the primary still had. */
  primaryOldest: string;
  recordedAt: string;
  reason: string;
}

interface GapsFile {
  gaps: RecordedGap[];
}

function parse(raw: Buffer | string | undefined, where: string): RecordedGap[] {
  if (raw === undefined) return [];
  try {
    const parsed = JSON.parse(raw.toString()) as GapsFile;
    return Array.isArray(parsed.gaps) ? parsed.gaps : [];
  } catch (err) {
    throw new HotspareError('ARCHIVE_READ', `cannot parse ${where}`, { cause: err, hint: `the file records the archive's binlog gaps; restore it from a copy, or check the volume` });
  }
}

/** Far more than any archive's recorded gaps (each a few hundred bytes). */
const GAPS_FILE_BYTES_MAX = 1024 * 1024;

/** The recorded gaps, oldest first. */
export async function readRecordedGaps(files: ArchiveFiles): Promise<RecordedGap[]> {
  return parse(await files.readFile(GAPS_PATH), GAPS_PATH);
}

/** The recorded gaps of a local archive, read synchronously (the binlog writer's append path). */
export function readRecordedGapsSync(layout: ArchiveLayout): RecordedGap[] {
  let raw: Buffer;
  try {
    // Read on the event loop, from a file a peer can write: never more than a gaps file can be.
    const size = statSync(layout.gapsFile).size;
    if (size > GAPS_FILE_BYTES_MAX) {
      throw new HotspareError('ARCHIVE_DAMAGED', `${layout.gapsFile} is ${size} bytes, more than a list of gaps can be (${GAPS_FILE_BYTES_MAX})`, {
        hint: 'the file is damaged or not hotspare\'s; run `hotspare verify` on the archive',
      });
    }
    raw = readFileSync(layout.gapsFile);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return parse(raw, layout.gapsFile);
}

/** Adds a gap durably (the whole file is rewritten atomically); a gap already recorded is kept once. */
export async function recordGap(files: ArchiveFiles, gap: RecordedGap): Promise<void> {
  const gaps = await readRecordedGaps(files);
  if (gaps.some((g) => compareBinlogPositions(g.resumeAt, gap.resumeAt) === 0)) return;
  gaps.push(gap);
  gaps.sort((a, b) => compareBinlogPositions(a.resumeAt, b.resumeAt));
  const body: GapsFile = { gaps };
  await files.putFile(GAPS_PATH, Buffer.from(`${JSON.stringify(body, null, 2)}\n`));
}

/**
 * Whether the archive may continue its chain with `nextFile` after `lastFile`, although
 * `nextFile` is not the successor: only where a gap was recorded that restarts there.
 * This is the binlog writer's one exception to BINLOG_GAP.
 */
export function chainRestartRecorded(layout: ArchiveLayout, lastFile: string, nextFile: string): boolean {
  return readRecordedGapsSync(layout).some((g) => g.after.file === lastFile && g.resumeAt.file === nextFile);
}
