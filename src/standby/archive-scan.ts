import { open, stat } from 'node:fs/promises';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';
import { ArchiveLayout, nextBinlogName } from '../archive/archive-layout.js';
import { readRecordedGaps, type RecordedGap } from '../archive/binlog-gaps.js';
import type { LastHeardRecord } from '../archive/last-heard.js';
import { compareBinlogPositions, formatBinlogPosition, type BinlogPosition } from '../core/binlog-position.js';
import { listArchivedBinlogs } from '../archive/archived-binlogs.js';
import { scanBinlogFile } from '../archive/binlog-file-scanner.js';
import { BINLOG_CHECKSUM_BYTES, BINLOG_FIRST_EVENT_POSITION, BINLOG_HEADER_BYTES, EventType, isCommitCandidate, parseRotate, readEventHeader } from '../core/binlog-event.js';
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
   * Set on the one marker passed to `onCommit` where the chain restarts (not a transaction):
   * `file`:4, `timestampS` the new file's first event. Everything before it lies before a
   * recorded gap or damage (see StopPointResolver).
   */
  chainRestart?: ChainRestart;
}

/** Where the archive's chain of binlog starts again, and what it starts again after. */
export interface ChainRestart {
  /** The first file of the new chain, position 4. */
  resumeAt: BinlogPosition;
  /** The base backup the new chain starts from. */
  base: string;
  /** What lies before it, for messages: "the binlog gap recorded between ..." or "the damage at ...". */
  after: string;
  /** A recorded gap, or damage a later base backup passes over. */
  kind: 'gap' | 'damage';
}

/** A recorded gap as a chain restart. */
export function gapRestart(gap: RecordedGap): ChainRestart {
  return {
    resumeAt: gap.resumeAt,
    base: gap.base,
    after: `the binlog gap recorded between ${formatBinlogPosition(gap.after)} and ${formatBinlogPosition(gap.resumeAt)} (${gap.reason})`,
    kind: 'gap',
  };
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
  /** Where the scan of the file began: 4, or a base's position where the chain restarted inside it after damage. */
  startOffset: number;
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
  /** Files before the last chain restart (a recorded gap, or damage a base passes over): kept and checked, not restorable by promote. */
  earlierFiles: ScannedFile[];
  /** Damage in those earlier files (the current chain, `files`, is not affected by it). */
  earlierDamage: ArchiveDamage | undefined;
  /** Every damage passed over (a chain restarted after each), in the archive's order; the first is `earlierDamage`. */
  passedOver: ArchiveDamage[];
  /** The chain restarted after damage at a base (restartAfterDamage), not only after recorded gaps. */
  restartedAfterDamage: boolean;
  /** What the current chain (`files`) starts after: the archive's beginning, a recorded gap, or damage passed over. */
  chainStartsAfter: 'beginning' | 'gap' | 'damage';
  /** The base the current chain restarted at (after a gap or damage). */
  chainBase: string | undefined;
}

/** scanArchive's `heldDurably` from the agent's record, when it names a boundary. */
export function heldDurably(heard: LastHeardRecord | undefined): { heldDurably?: { boundary: BinlogPosition; at: string } } {
  return heard?.boundary === undefined ? {} : { heldDurably: { boundary: heard.boundary, at: heard.at } };
}

/** The bases as scanArchive's restart candidates. */
export function baseStartsOf(bases: readonly BaseBackupMetadata[]): BaseStart[] {
  return bases.map((b) => ({ id: b.id, file: b.binlog.file, position: b.binlog.position, finishedS: Math.ceil(Date.parse(b.finishedAt) / 1000) }));
}

export function describeDamage(d: ArchiveDamage): string {
  return `${d.file}:${d.offset} (${d.kind}: ${d.reason})`;
}

/** A base backup's binlog position, where the chain may start again after damage (scanArchive's `restartAfterDamage`). */
export interface BaseStart {
  id: string;
  file: string;
  position: number;
  /** When the base finished (seconds): no point before it is restored from it. */
  finishedS: number;
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
 *
 * With `restartAfterDamage` (the archive's base backups), damage is passed over the same way
 * when a base starts in a later file and the caller wants it (its target lies past the damage):
 * that base and the binlog from its file on restore everything after it, so a flipped byte in
 * a file kept only for older points in time does not stand between a promotion and the
 * archive's end. (Promotion passes them, and status and verify, whose latest restorable point
 * is then the one promotion reaches; they still report the damage, `earlierDamage`.)
 */
export async function scanArchive(
  root: string,
  options: {
    verifyChecksums: boolean;
    onCommit?: (commit: CommitPoint) => void;
    /** The bases where the chain may restart after damage, when `wanted` (asked at the damage) says so. */
    restartAfterDamage?: { bases: readonly BaseStart[]; wanted: (damage: ArchiveDamage) => boolean };
    /**
     * A transaction boundary the archive once held durably, and when (state/last-heard.json,
     * read before the scan: the archive only grows). An archive ending before it lost complete
     * transactions: its tail was cut off (a file truncated or removed on the volume), which a
     * scan of the files alone takes for a clean end. That is damage at the end.
     */
    heldDurably?: { boundary: BinlogPosition; at: string };
  },
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
    passedOver: [],
    restartedAfterDamage: false,
    chainStartsAfter: 'beginning',
    chainBase: undefined,
  };
  // Where the chain restarts: the file index of each recorded gap's resume file.
  const restarts = new Map<number, ChainRestart>();
  for (const gap of recordedGaps) {
    const at = names.indexOf(gap.resumeAt.file);
    if (at > 0) restarts.set(at, gapRestart(gap));
  }
  // Where it may restart after damage: each base's file index and position, oldest first.
  const baseStarts = (options.restartAfterDamage?.bases ?? [])
    .map((base) => ({ base, at: names.indexOf(base.file) }))
    .filter((s) => s.at >= 0)
    .sort((a, b) => a.at - b.at || a.base.position - b.base.position);
  const firstAfter = (indexes: Iterable<number>, after: number): number | undefined => [...indexes].filter((i) => i > after).sort((a, b) => a - b)[0];
  /**
   * The first base past damage at file index `at` (at `offset` in it, for damage inside the
   * file): one in a later file, or one later in the damaged file itself (its position is a
   * transaction boundary, and everything from it on is scanned again).
   */
  const baseAfter = (damage: ArchiveDamage, at: number, headerEnd: number): { at: number; base: BaseStart } | undefined =>
    baseStarts.find((s) => s.at > at || (s.at === at && damage.kind === 'corrupt' && damage.file === names[at] && damage.offset >= headerEnd && s.base.position > damage.offset));
  /** A restart after damage, taken by stopAtDamage: its marker goes out with that file's first event. */
  let damageRestart: { at: number; fromOffset: number; finishedS: number; restart: ChainRestart } | undefined;
  /** Where each file's first two events end, once scanned from its start (a later restart inside it keeps the knowledge). */
  const headerEndOf = new Map<number, number>();
  const tracker = new TransactionTracker();
  let i = 0;
  for (; i < names.length; i += 1) {
    const name = names[i] ?? '';
    const newest = i === names.length - 1;
    const restartHere = damageRestart?.at === i ? damageRestart : undefined;
    damageRestart = undefined;
    // A restart inside the file (at a base's position) is the one that counts there, over a gap's at its start.
    const restart = restartHere?.restart ?? restarts.get(i);
    const startOffset = restartHere?.fromOffset ?? 4;
    const previous = result.files[result.files.length - 1];
    if (restart !== undefined) {
      result.chainStartsAfter = restart.kind;
      result.chainBase = restart.base;
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
    let cleanEnd = startOffset;
    let lastType = -1;
    let rotateTo: string | undefined;
    let pendingRestart = restart;
    let firstEventS: number | undefined;
    // mariadb-binlog --start-position reads a file's first events (its format description,
    // and the header of the one after it) before it seeks: a restart inside the file needs
    // those intact, so damage there ends the file for good.
    let headerEnd = headerEndOf.get(i) ?? Number.MAX_SAFE_INTEGER;
    let seen = 0;
    const scan = await scanBinlogFile(path, {
      fromOffset: startOffset,
      verifyChecksums: options.verifyChecksums,
      onEvent: ({ offset, header, bytes }) => {
        if (startOffset === 4 && seen < 2) headerEnd = offset + header.sizeBytes;
        seen += 1;
        if (pendingRestart !== undefined) {
          options.onCommit?.({ file: name, position: startOffset, timestampS: header.timestampS, gtid: undefined, chainRestart: pendingRestart });
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
    // A restart file without an event still restarts the chain: commits before it no longer count.
    // Its time: the base's finish for a restart at a base (it may hold commits up to then, later
    // than any event before the damage), else the newest event seen.
    if (pendingRestart !== undefined) options.onCommit?.({ file: name, position: startOffset, timestampS: Math.max(result.newestEventS ?? 0, restartHere?.finishedS ?? 0), gtid: undefined, chainRestart: pendingRestart });
    const file: ScannedFile = { name, sizeBytes, cleanEnd, rotated: lastType === EventType.ROTATE, firstEventS, startOffset };
    result.files.push(file);
    // The newest file may end in zeros after a crash (O_DIRECT blocks landed, the block after
    // them not; see BinlogAppendFile): nothing there was ever acknowledged, and zeros hold no
    // event. That is a torn tail, as a partial event is, not damage.
    const tornToZeros = newest && scan.stop.kind === 'corrupt' && (await tornIntoZeros(path, scan.stop.offset, sizeBytes));
    if ((scan.stop.kind === 'corrupt' && !tornToZeros) || (scan.stop.kind === 'truncated' && !newest)) {
      if (startOffset === 4 && seen >= 2) headerEndOf.set(i, headerEnd);
      if (stopAtDamage({ kind: scan.stop.kind, file: name, offset: scan.stop.offset, reason: scan.stop.reason }, i, headerEndOf.get(i) ?? Number.MAX_SAFE_INTEGER)) return result;
      continue;
    }
    if (!newest && file.rotated && rotateTo !== undefined && rotateTo !== nextBinlogName(name)) {
      if (stopAtDamage({ kind: 'gap', file: name, offset: cleanEnd, reason: `${name} rotates to ${rotateTo}, not to ${nextBinlogName(name)}` }, i)) return result;
      continue;
    }
    if (newest && cleanEnd < sizeBytes) result.partialTail = { file: name, from: cleanEnd, to: sizeBytes };
  }
  const end = result.files[result.files.length - 1];
  // A boundary at a file's first event position names no transaction of that file: a session
  // resumed in the next file after its predecessor's ROTATE or STOP announces it before that
  // file's first bytes are durable (the record can land first), and it holds nothing to lose.
  const held = options.heldDurably !== undefined && options.heldDurably.boundary.position > BINLOG_FIRST_EVENT_POSITION ? options.heldDurably : undefined;
  if (end !== undefined && held !== undefined && compareBinlogPositions({ file: end.name, position: end.cleanEnd }, held.boundary) < 0) {
    const reason = `the archive ends here, before ${formatBinlogPosition(held.boundary)}, which it held durably at ${held.at} (state/last-heard.json): its tail was cut off`;
    // Nothing comes after it to restart at: this is the end's damage.
    stopAtDamage({ kind: 'truncated', file: end.name, offset: end.cleanEnd, reason }, names.indexOf(end.name));
  }
  return result;

  /**
   * Damage at file index `at`: the end of the scan, unless a recorded gap or a base backup
   * restarts the chain in a later file (then it is the earlier chain's damage, and the scan
   * goes on at the restart; whatever lies between is passed over).
   */
  function stopAtDamage(damage: ArchiveDamage, at: number, headerEnd = Number.MAX_SAFE_INTEGER): boolean {
    const gapAt = firstAfter(restarts.keys(), at);
    const base = options.restartAfterDamage?.wanted(damage) === true ? baseAfter(damage, at, headerEnd) : undefined;
    if (gapAt === undefined && base === undefined) {
      result.damage = damage;
      return true;
    }
    result.earlierDamage ??= damage;
    result.passedOver.push(damage);
    if (base !== undefined && (gapAt === undefined || base.at < gapAt)) {
      // In a later file the chain starts at its beginning (whole files from the base's file
      // on, as a new archive's); in the damaged file itself, at the base's own position.
      const fromOffset = base.at === at ? base.base.position : 4;
      result.restartedAfterDamage = true;
      damageRestart = { at: base.at, fromOffset, finishedS: base.base.finishedS, restart: { resumeAt: { file: names[base.at] ?? '', position: fromOffset }, base: base.base.id, after: `the damage at ${describeDamage(damage)}`, kind: 'damage' } };
      i = base.at - 1;
    } else i = (gapAt as number) - 1;
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
