import { open, stat } from 'node:fs/promises';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { ArchiveLayout, nextBinlogName } from '../archive/archive-layout.js';
import { readRecordedGaps, type RecordedGap } from '../archive/binlog-gaps.js';
import { listArchivedBinlogs } from '../archive/archived-binlogs.js';
import { scanBinlogFile } from '../archive/binlog-file-scanner.js';
import { BINLOG_CHECKSUM_BYTES, BINLOG_HEADER_BYTES, EventType, isCommitCandidate, parseRotate, readEventHeader } from '../core/binlog-event.js';
import { HotspareError } from '../core/errors.js';
import { TransactionTracker } from '../core/transaction-tracker.js';

/** A complete transaction in the archive: where it ends, when it committed, its GTID. */
export interface CommitPoint {
  file: string;
  /** Offset just past the transaction's last event: a boundary where replay may stop. */
  position: number;
  timestampS: number;
  gtid: string | undefined;
  /**
   * Set on the one marker passed to `onCommit` where the chain restarts after a recorded gap
   * (not a transaction): `file`:4, `timestampS` the new file's first event. Everything before
   * it lies before the gap (see StopPointResolver).
   */
  chainRestart?: RecordedGap;
}

export interface ScannedFile {
  name: string;
  sizeBytes: number;
  /** End of the last complete transaction (or other boundary) in the file: replay never goes past it. */
  cleanEnd: number;
  /** The file ends in a ROTATE to the next file (false: the newest file, or a primary crash). */
  rotated: boolean;
  /** Timestamp of the file's first event (its format description: when the primary began the file). */
  firstEventS: number | undefined;
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
  /** Every gap recorded in state/gaps.json (the archive restarted its chain at a new base). */
  recordedGaps: RecordedGap[];
  /** Files before the last recorded gap the archive has passed: kept and checked, not restorable by promote. */
  earlierFiles: ScannedFile[];
  /** Damage in those earlier files (the current chain, `files`, is not affected by it). */
  earlierDamage: ArchiveDamage | undefined;
}

/**
 * Reads every archived binlog file in order, checking each event's length, position chain
 * and (optionally) CRC32, and the files' continuity: consecutive names, each older file
 * ending in a ROTATE to the next (or, after a primary crash, simply followed by the next).
 * It calls `onCommit` for each complete transaction, in log order, and stops at the first
 * damage or gap, which it reports; a partial transaction at the newest file's tail is not
 * damage (the agent is still writing it, or the primary died mid-transaction).
 *
 * A gap recorded in state/gaps.json is not damage: the chain restarts at its file (position
 * 4). `files` then holds the current chain only (the files before it move to `earlierFiles`,
 * damage there to `earlierDamage`), and `onCommit` gets a `chainRestart` marker in between.
 */
export async function scanArchive(
  root: string,
  options: { verifyChecksums: boolean; onCommit?: (commit: CommitPoint) => void },
): Promise<ArchiveScan> {
  const layout = new ArchiveLayout(root);
  const names = await listArchivedBinlogs(layout);
  const recordedGaps = await readRecordedGaps(new LocalArchiveFiles(root));
  const result: ArchiveScan = {
    files: [],
    damage: undefined,
    lastCommit: undefined,
    partialTail: undefined,
    newestEventS: undefined,
    recordedGaps,
    earlierFiles: [],
    earlierDamage: undefined,
  };
  // Where the chain restarts: the file index of each recorded gap's resume file.
  const restarts = new Map<number, RecordedGap>();
  for (const gap of recordedGaps) {
    const at = names.indexOf(gap.resumeAt.file);
    if (at > 0) restarts.set(at, gap);
  }
  const nextRestart = (after: number): number | undefined => [...restarts.keys()].filter((i) => i > after).sort((a, b) => a - b)[0];
  const tracker = new TransactionTracker();
  let i = 0;
  for (; i < names.length; i += 1) {
    const name = names[i] ?? '';
    const newest = i === names.length - 1;
    const restart = restarts.get(i);
    const previous = result.files[result.files.length - 1];
    if (restart !== undefined) {
      result.earlierFiles.push(...result.files);
      result.files = [];
      result.lastCommit = undefined;
    } else if (previous !== undefined) {
      const expected = nextBinlogName(previous.name);
      if (name !== expected) {
        const damage: ArchiveDamage = { kind: 'gap', file: expected, offset: 0, reason: `${expected} is missing (the archive continues with ${name})` };
        if (stopAtDamage(damage, i - 1)) return result;
        continue;
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
    let pendingRestart = restart;
    let firstEventS: number | undefined;
    const scan = await scanBinlogFile(path, {
      verifyChecksums: options.verifyChecksums,
      onEvent: ({ offset, header, bytes }) => {
        if (pendingRestart !== undefined) {
          options.onCommit?.({ file: name, position: 4, timestampS: header.timestampS, gtid: undefined, chainRestart: pendingRestart });
          pendingRestart = undefined;
        }
        lastType = header.type;
        firstEventS ??= header.timestampS;
        result.newestEventS = Math.max(result.newestEventS ?? 0, header.timestampS);
        if (header.type === EventType.ROTATE) rotateTo = parseRotate(bytes).nextFile;
        if (!tracker.observe(bytes, header)) return;
        cleanEnd = offset + header.sizeBytes;
        if (isCommitCandidate(header.type)) {
          const commit = { file: name, position: cleanEnd, timestampS: header.timestampS, gtid: tracker.lastGtid };
          result.lastCommit = commit;
          options.onCommit?.(commit);
        }
      },
    });
    const file: ScannedFile = { name, sizeBytes, cleanEnd, rotated: lastType === EventType.ROTATE, firstEventS };
    result.files.push(file);
    // The newest file may end in zeros after a crash (O_DIRECT blocks landed, the block after
    // them not; see BinlogAppendFile): nothing there was ever acknowledged, and zeros hold no
    // event. That is a torn tail, as a partial event is, not damage.
    const tornToZeros = newest && scan.stop.kind === 'corrupt' && (await tornIntoZeros(path, scan.stop.offset, sizeBytes));
    if ((scan.stop.kind === 'corrupt' && !tornToZeros) || (scan.stop.kind === 'truncated' && !newest)) {
      if (stopAtDamage({ kind: scan.stop.kind, file: name, offset: scan.stop.offset, reason: scan.stop.reason }, i)) return result;
      continue;
    }
    if (!newest && file.rotated && rotateTo !== undefined && rotateTo !== nextBinlogName(name)) {
      if (stopAtDamage({ kind: 'gap', file: name, offset: cleanEnd, reason: `${name} rotates to ${rotateTo}, not to ${nextBinlogName(name)}` }, i)) return result;
      continue;
    }
    if (newest && cleanEnd < sizeBytes) result.partialTail = { file: name, from: cleanEnd, to: sizeBytes };
  }
  return result;

  /**
   * Damage at file index `at`: the end of the scan, unless a recorded gap restarts the chain
   * later (then it is the earlier chain's damage, and the scan goes on at the restart).
   */
  function stopAtDamage(damage: ArchiveDamage, at: number): boolean {
    const restartAt = nextRestart(at);
    if (restartAt === undefined) {
      result.damage = damage;
      return true;
    }
    result.earlierDamage ??= damage;
    i = restartAt - 1;
    return false;
  }
}

/** The blocks O_DIRECT appends land in: a crash leaves whole ones or none. */
const TORN_BLOCK_BYTES = 4096;

/**
 * Whether the bad event at `offset` in the newest file is one a crash tore: from it (its header
 * zeros too) or from the first block boundary inside it, everything to the end of the file is
 * zeros, and the event's own last bytes (its CRC32) lie there. An event that landed whole has
 * its CRC32 in place, so damage to a complete event is still damage.
 */
async function tornIntoZeros(path: string, offset: number, size: number): Promise<boolean> {
  if (await zerosFrom(path, offset, size)) return true;
  const handle = await open(path, 'r');
  let eventEnd: number;
  try {
    const header = Buffer.alloc(BINLOG_HEADER_BYTES);
    const { bytesRead } = await handle.read(header, 0, header.length, offset);
    if (bytesRead < header.length) return false;
    eventEnd = offset + readEventHeader(header).sizeBytes;
  } finally {
    await handle.close();
  }
  const boundary = Math.ceil((offset + 1) / TORN_BLOCK_BYTES) * TORN_BLOCK_BYTES;
  return boundary < size && eventEnd - BINLOG_CHECKSUM_BYTES >= boundary && (await zerosFrom(path, boundary, size));
}

/** Bytes read at a time when checking that a file's tail is all zeros. */
const ZERO_CHECK_CHUNK_BYTES = 1024 * 1024;

/** Whether every byte of `path` from `from` to `size` is zero. */
async function zerosFrom(path: string, from: number, size: number): Promise<boolean> {
  const handle = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(Math.min(ZERO_CHECK_CHUNK_BYTES, Math.max(1, size - from)));
    for (let at = from; at < size; ) {
      const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, size - at), at);
      if (bytesRead === 0) return false;
      for (let i = 0; i < bytesRead; i++) if (buffer[i] !== 0) return false;
      at += bytesRead;
    }
    return true;
  } finally {
    await handle.close();
  }
}
