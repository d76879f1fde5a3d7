import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HEADER_FLAGS_OFFSET } from '../core/binlog-event.js';

/** Offset of the FDE's flags byte that holds LOG_EVENT_BINLOG_IN_USE_F (magic + header offset). */
const IN_USE_FLAG_OFFSET = 4 + HEADER_FLAGS_OFFSET;

export interface BinlogComparison {
  /** Files in the archive, in order. */
  files: string[];
  /** Files whose bytes differ beyond the allowed in-use flag, with the first differing offset. */
  differences: { file: string; offset: number; archiveSize: number; primarySize: number }[];
}

/**
 * Compares every archived binlog file with the primary's file of the same name, byte for byte.
 * The only allowed difference is the in-use flag of the format event (the server clears it in
 * what it sends while the file is still open). An archived file shorter than the primary's is
 * a difference too, unless `allowShorterNewest` says the newest may still be catching up.
 */
export function compareArchiveWithPrimary(archiveBinlogDir: string, primaryDatadir: string): BinlogComparison {
  const files = readdirSync(archiveBinlogDir)
    .filter((n) => /\.\d{6,}$/.test(n))
    .sort();
  const differences: BinlogComparison['differences'] = [];
  for (const file of files) {
    const archived = readFileSync(join(archiveBinlogDir, file));
    const primary = readFileSync(join(primaryDatadir, file));
    const offset = firstDifference(archived, primary);
    if (offset !== undefined) differences.push({ file, offset, archiveSize: archived.length, primarySize: primary.length });
  }
  return { files, differences };
}

function firstDifference(a: Buffer, b: Buffer): number | undefined {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i += 1) {
    if (a[i] === b[i]) continue;
    if (i === IN_USE_FLAG_OFFSET && ((a[i] ?? 0) ^ (b[i] ?? 0)) === 0x01) continue;
    return i;
  }
  return a.length === b.length ? undefined : length;
}

/**
 * The primary's binlog file names (from its datadir), in order; with `from`, only those from
 * that file on (an archive starts at the file holding its base backup's coordinates).
 */
export function primaryBinlogFiles(datadir: string, from?: string): string[] {
  return readdirSync(datadir)
    .filter((n) => /^mysql-bin\.\d{6,}$/.test(n) && (from === undefined || n >= from))
    .sort();
}
