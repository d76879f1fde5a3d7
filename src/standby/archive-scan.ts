import { stat } from 'node:fs/promises';
import { ArchiveLayout, nextBinlogName } from '../archive/archive-layout.js';
import { listArchivedBinlogs } from '../archive/binlog-archive-writer.js';
import { scanBinlogFile } from '../archive/binlog-file-scanner.js';
import { EventType, parseRotate } from '../core/binlog-event.js';
import { HotspareError } from '../core/errors.js';
import { TransactionTracker } from '../core/transaction-tracker.js';

/** A complete transaction in the archive: where it ends, when it committed, its GTID. */
export interface CommitPoint {
  file: string;
  /** Offset just past the transaction's last event: a boundary where replay may stop. */
  position: number;
  timestampS: number;
  gtid: string | undefined;
}

export interface ScannedFile {
  name: string;
  sizeBytes: number;
  /** End of the last complete transaction (or other boundary) in the file: replay never goes past it. */
  cleanEnd: number;
  /** The file ends in a ROTATE to the next file (false: the newest file, or a primary crash). */
  rotated: boolean;
}

/** The first place where the archive cannot be trusted; nothing at or after it is replayed. */
export interface ArchiveDamage {
  kind: 'corrupt' | 'truncated' | 'gap';
  file: string;
  offset: number;
  reason: string;
}

export interface ArchiveScan {
  /** The files that can be replayed, oldest first, up to (and including) the one with damage. */
  files: ScannedFile[];
  damage: ArchiveDamage | undefined;
  /** The last complete transaction before any damage. */
  lastCommit: CommitPoint | undefined;
  /** Bytes of an incomplete transaction at the newest file's tail (normal while streaming). */
  partialTail: { file: string; from: number; to: number } | undefined;
  /** Timestamp of the newest event the archive holds (seconds): when it last heard from the primary. */
  newestEventS: number | undefined;
}

/**
 * Reads every archived binlog file in order, checking each event's length, position chain
 * and (optionally) CRC32, and the files' continuity: consecutive names, each older file
 * ending in a ROTATE to the next (or, after a primary crash, simply followed by the next).
 * It calls `onCommit` for each complete transaction, in log order, and stops at the first
 * damage or gap, which it reports; a partial transaction at the newest file's tail is not
 * damage (the agent is still writing it, or the primary died mid-transaction).
 */
export async function scanArchive(
  root: string,
  options: { verifyChecksums: boolean; onCommit?: (commit: CommitPoint) => void },
): Promise<ArchiveScan> {
  const layout = new ArchiveLayout(root);
  const names = await listArchivedBinlogs(layout);
  const result: ArchiveScan = { files: [], damage: undefined, lastCommit: undefined, partialTail: undefined, newestEventS: undefined };
  const tracker = new TransactionTracker();
  for (let i = 0; i < names.length; i += 1) {
    const name = names[i] ?? '';
    const newest = i === names.length - 1;
    const previous = result.files[result.files.length - 1];
    if (previous !== undefined) {
      const expected = nextBinlogName(previous.name);
      if (name !== expected) {
        result.damage = { kind: 'gap', file: expected, offset: 0, reason: `${expected} is missing (the archive continues with ${name})` };
        return result;
      }
    }
    const path = layout.binlogFile(name);
    let sizeBytes: number;
    try {
      sizeBytes = (await stat(path)).size;
    } catch (err) {
      throw new HotspareError('ARCHIVE_READ', `cannot read ${path}`, { cause: err, hint: 'check the archive volume (mount, permissions)' });
    }
    tracker.reset();
    let cleanEnd = 4;
    let lastType = -1;
    let rotateTo: string | undefined;
    const scan = await scanBinlogFile(path, {
      verifyChecksums: options.verifyChecksums,
      onEvent: ({ offset, header, bytes }) => {
        lastType = header.type;
        result.newestEventS = Math.max(result.newestEventS ?? 0, header.timestampS);
        if (header.type === EventType.ROTATE) rotateTo = parseRotate(bytes).nextFile;
        if (!tracker.observe(bytes, header)) return;
        cleanEnd = offset + header.sizeBytes;
        if (header.type === EventType.XID || header.type === EventType.QUERY || header.type === EventType.XA_PREPARE) {
          const commit = { file: name, position: cleanEnd, timestampS: header.timestampS, gtid: tracker.lastGtid };
          result.lastCommit = commit;
          options.onCommit?.(commit);
        }
      },
    });
    const file: ScannedFile = { name, sizeBytes, cleanEnd, rotated: lastType === EventType.ROTATE };
    result.files.push(file);
    if (scan.stop.kind === 'corrupt' || (scan.stop.kind === 'truncated' && !newest)) {
      result.damage = { kind: scan.stop.kind, file: name, offset: scan.stop.offset, reason: scan.stop.reason };
      return result;
    }
    if (!newest && file.rotated && rotateTo !== undefined && rotateTo !== nextBinlogName(name)) {
      result.damage = { kind: 'gap', file: name, offset: cleanEnd, reason: `${name} rotates to ${rotateTo}, not to ${nextBinlogName(name)}` };
      return result;
    }
    if (newest && cleanEnd < sizeBytes) result.partialTail = { file: name, from: cleanEnd, to: sizeBytes };
  }
  return result;
}
