/**
 * Lag arithmetic for the lag endpoint. Pure: no I/O and no clock; `nowMs` is always a
 * parameter. The definitions (see ARCHITECTURE.md, "Lag"):
 *
 * - bytesBehind: binlog bytes the primary holds beyond the replica's durable position,
 *   summed across files with the sizes from SHOW BINARY LOGS.
 * - secondsBehind: 0 when the durable position equals the primary's freshly known head;
 *   otherwise now minus the earliest moment at which the primary is known to have held a
 *   byte beyond the durable position (the first observation of the head, or of the
 *   replica's own stream, past that point; see HeadTimeline). When the head is not known
 *   freshly (the primary is unreachable, or only the head checks fail), nothing written since
 *   the later of the last successful head check and what the replica's own stream proves once
 *   durable (a heartbeat, or its last commit's header time: see ReplicaSnapshot.caughtUpAtMs)
 *   can be ruled out, so the age counts from there: it grows for as long as the agent cannot
 *   see the primary. Bytes beyond the durable position that the primary already held at this
 *   run's first head check, and that no earlier mark dates (a backlog's header time), were
 *   written while the agent was not watching: their age counts from the durable point's
 *   commit time, when known (see replicaLag).
 */

/** A place in the primary's binlog: a file and a byte offset in it. */
export interface BinlogPosition {
  file: string;
  position: number;
}

export interface BinlogFileSize {
  name: string;
  sizeBytes: number;
}

/** The sequence number of a binlog file name (`mysql-bin.000012` → 12), NaN when it has none. */
export function binlogFileSequence(name: string): number {
  // Checked character by character: this runs for every comparison of positions in two files,
  // which the lag timeline makes on each of a catch-up's reports (a regular expression there
  // was about 1% of the agent's main thread).
  const from = name.lastIndexOf('.') + 1;
  if (from === name.length) return Number.NaN;
  for (let i = from; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c < 48 || c > 57) return Number.NaN;
  }
  return Number(name.slice(from));
}

export function compareBinlogFiles(a: string, b: string): number {
  if (a === b) return 0;
  const sa = binlogFileSequence(a);
  const sb = binlogFileSequence(b);
  if (Number.isNaN(sa) || Number.isNaN(sb) || sa === sb) return a < b ? -1 : 1;
  return sa - sb;
}

export function compareBinlogPositions(a: BinlogPosition, b: BinlogPosition): number {
  const byFile = compareBinlogFiles(a.file, b.file);
  return byFile !== 0 ? byFile : a.position - b.position;
}

/**
 * Bytes from `from` up to `to` across files: the rest of `from`'s file, every whole file in
 * between, and `to`'s file up to its position. A file whose size is not listed counts as
 * empty (the list is a snapshot; the caller reports missing files as a gap separately).
 */
export function bytesBetween(from: BinlogPosition, to: BinlogPosition, files: readonly BinlogFileSize[]): number {
  if (compareBinlogPositions(from, to) >= 0) return 0;
  if (from.file === to.file) return to.position - from.position;
  let total = 0;
  const fromSize = files.find((f) => f.name === from.file)?.sizeBytes;
  if (fromSize !== undefined) total += Math.max(0, fromSize - from.position);
  for (const f of files) {
    if (compareBinlogFiles(f.name, from.file) > 0 && compareBinlogFiles(f.name, to.file) < 0) total += f.sizeBytes;
  }
  return total + to.position;
}

interface Mark {
  file: string;
  position: number;
  atMs: number;
}

/** At most this many observations are kept per replica; see HeadTimeline.observe. */
export const HEAD_TIMELINE_MARKS_MAX = 4_096;

/**
 * When the primary's binlog first reached each position, as far as the agent saw it: from
 * the head poller (SHOW MASTER STATUS) and from the replica's own stream (each event or
 * heartbeat received). Each mark says "by `atMs` the binlog extended to `position`", so the
 * oldest byte beyond a durable point D existed no later than the first mark past D: that
 * mark's time is the write time of the oldest undurable event, to within the observation
 * granularity (milliseconds while the stream runs, one poll interval when it does not).
 * Marks are kept increasing in both position and time; those at or below the durable point
 * are dropped. A long outage adds one mark per poll; past the limit every other mark after
 * the first is dropped, which only coarsens later ages and never loses the oldest.
 */
export class HeadTimeline {
  #marks: Mark[] = [];

  observe(at: BinlogPosition, atMs: number): void {
    const marks = this.#marks;
    // Insert keeping both orders: a mark further along that is no later makes this one
    // redundant; earlier-positioned marks that are later in time are superseded by it.
    let i = marks.length;
    while (i > 0 && compareBinlogPositions(marks[i - 1] as Mark, at) > 0) i--;
    const after = marks[i];
    if (after !== undefined && after.atMs <= atMs) return;
    const previous = marks[i - 1];
    if (previous !== undefined && compareBinlogPositions(previous, at) === 0 && previous.atMs <= atMs) return;
    let j = i;
    while (j > 0 && (marks[j - 1] as Mark).atMs >= atMs) j--;
    marks.splice(j, i - j, { file: at.file, position: at.position, atMs });
    if (marks.length > HEAD_TIMELINE_MARKS_MAX) {
      // Every other mark goes, never the first (the oldest undurable write) or the last (the newest).
      this.#marks = marks.filter((_, index) => index === 0 || index % 2 === 1 || index === marks.length - 1);
    }
  }

  /** Drops what the replica holds durably. */
  durableAt(durable: BinlogPosition): void {
    let n = 0;
    while (n < this.#marks.length && compareBinlogPositions(this.#marks[n] as Mark, durable) <= 0) n++;
    if (n > 0) this.#marks.splice(0, n);
  }

  /** The earliest time the primary is known to have held a byte beyond `durable`. */
  firstBeyondMs(durable: BinlogPosition | undefined): number | undefined {
    for (const mark of this.#marks) {
      if (durable === undefined || compareBinlogPositions(mark, durable) > 0) return mark.atMs;
    }
    return undefined;
  }

  /** The furthest position observed. */
  get furthest(): BinlogPosition | undefined {
    const last = this.#marks[this.#marks.length - 1];
    return last === undefined ? undefined : { file: last.file, position: last.position };
  }

  get size(): number {
    return this.#marks.length;
  }
}

/** What the agent currently knows of the primary's binlog (from the head poller). */
export interface PrimaryHeadView {
  head: BinlogPosition | undefined;
  /** When the head was last read successfully. */
  checkedAtMs: number | undefined;
  /** True while the last head check succeeded and is recent. */
  fresh: boolean;
  files: readonly BinlogFileSize[];
  /** binlog_expire_logs_seconds; 0 when the server does not expire binlog by age. */
  expireLogsSeconds: number;
  /** When the agent saw each file stop being the newest (≈ its last modification). */
  rotatedAtMs: ReadonlyMap<string, number>;
  /** When the agent began watching; the age reference before the first head check. */
  sinceMs: number;
  /** The primary purges: the agent saw its oldest file go, or its oldest is not its first (a purge by hand or by a size policy). */
  purgesSeen?: boolean;
  /**
   * The head at this run's first successful head check, and when it was read: the bytes up to
   * it were written before the agent first looked, at times the agent never saw.
   */
  firstHead?: { head: BinlogPosition; checkedAtMs: number } | undefined;
}

export interface ReplicaLagInput {
  durable: (BinlogPosition & { commitTimestampS?: number | undefined }) | undefined;
  /** HeadTimeline.firstBeyondMs(durable). */
  firstBeyondMs: number | undefined;
  /** HeadTimeline.furthest: the stream may have seen more than the last head check. */
  furthest: BinlogPosition | undefined;
  /** A time by which the replica held durably every byte the primary had written (ReplicaSnapshot.caughtUpAtMs). */
  caughtUpAtMs?: number | undefined;
}

/**
 * The latest time by which the replica is known to have held, durably, every byte the primary
 * had written: with nothing the agent has seen beyond its durable point, the last head check
 * (or, if later, what its own stream proved: ReplicaSnapshot.caughtUpAtMs); otherwise that
 * proof alone, from when it last held everything; undefined when nothing shows it. While the
 * primary is unreachable secondsBehind grows (nothing written since can be ruled out), and
 * this is what tells a standby that holds all the agent ever saw of a lost primary from one
 * that does not: bytesBehind 0 and this time at the primary's last sign of life.
 */
export function caughtUpAtMs(input: ReplicaLagInput, primary: PrimaryHeadView, lag: { bytesBehind: number }): number | undefined {
  const endKnown = primary.head !== undefined || input.furthest !== undefined;
  const proved = input.caughtUpAtMs;
  if (input.durable === undefined || !endKnown || lag.bytesBehind > 0 || input.firstBeyondMs !== undefined || primary.checkedAtMs === undefined) return proved;
  return Math.max(primary.checkedAtMs, proved ?? -Infinity);
}

/** bytesBehind and secondsBehind for one replica, by the definitions at the top of this file. */
export function replicaLag(input: ReplicaLagInput, primary: PrimaryHeadView, nowMs: number): { bytesBehind: number; secondsBehind: number } {
  const oldest = primary.files[0];
  const durable = input.durable ?? (oldest === undefined ? undefined : { file: oldest.name, position: 0 });
  let end = primary.head;
  if (input.furthest !== undefined && (end === undefined || compareBinlogPositions(input.furthest, end) > 0)) end = input.furthest;
  const bytesBehind = end === undefined || durable === undefined ? 0 : bytesBetween(durable, end, primary.files);
  let sinceMs: number | undefined;
  if (input.firstBeyondMs !== undefined) sinceMs = input.firstBeyondMs;
  else if (!primary.fresh) sinceMs = Math.max(primary.checkedAtMs ?? primary.sinceMs, input.caughtUpAtMs ?? -Infinity);
  // Otherwise the head was just read and nothing seen lies beyond the durable point: caught up.
  const saved = input.durable;
  const first = primary.firstHead;
  if (
    bytesBehind > 0 &&
    saved?.commitTimestampS !== undefined &&
    first !== undefined &&
    compareBinlogPositions(saved, first.head) < 0 &&
    (input.firstBeyondMs === undefined || input.firstBeyondMs >= first.checkedAtMs)
  ) {
    // The oldest undurable byte was already there at the agent's first head check and no mark
    // dates it (a standby behind since before this run: down, or cut off by a purge): the marks
    // say only "by then", so the age from them is the agent's uptime, however long the agent
    // was down before it. It was written after the durable point's last commit (the primary's
    // header time, whole seconds) and before that check; the age is taken from the commit,
    // the older end, since an alert that comes late is worse than one that comes early (it is
    // exact when the primary wrote on right after that commit, as it does while busy). Never
    // less than the marks' age (a primary's clock ahead of the agent's).
    // Not before the replica was last known to hold everything (the last run's saved "caught
    // up by" time): an idle primary's few bytes after a restart were not days old.
    sinceMs = Math.min(sinceMs ?? Infinity, Math.max(saved.commitTimestampS * 1000, input.caughtUpAtMs ?? -Infinity));
  }
  const secondsBehind = sinceMs === undefined ? 0 : Math.max(0, nowMs - sinceMs) / 1000;
  return { bytesBehind, secondsBehind };
}

export type PurgeRisk =
  | { kind: 'none' }
  | { kind: 'warning'; code: 'PURGE_SOON'; message: string }
  | { kind: 'gone'; code: 'BINLOG_PURGED'; message: string };

export interface PurgeRiskInput {
  /** The file the replica resumes from (its durable file). */
  needFile: string | undefined;
  /** Lower bound of that file's last modification, when nothing better is known (ms). */
  needFileWrittenAtLeastMs: number | undefined;
  /** Warn when the primary keeps this many older files or fewer before the needed one. */
  warningFiles: number;
  /** Warn when the needed file's age reaches this fraction of binlog_expire_logs_seconds. */
  warningExpireRatio: number;
}

/**
 * How close the primary is to purging the binlog a replica still needs. The newest file is
 * never purged, so a replica that needs only it is safe whatever the settings. Otherwise it
 * warns when few files are older than the needed one and the primary has been seen purging
 * (PURGE BINARY LOGS or a size-based policy reaches it next; a young primary that purges
 * nothing keeps few files too, and a replica one file behind it is no alarm), or when the
 * needed file's age nears binlog_expire_logs_seconds
 * (the server purges by file modification time). A needed file older than the oldest listed
 * one is gone: the archive cannot continue without a new base backup.
 */
export function purgeRisk(input: PurgeRiskInput, primary: PrimaryHeadView, nowMs: number): PurgeRisk {
  const need = input.needFile;
  const oldest = primary.files[0];
  if (need === undefined || oldest === undefined || primary.head === undefined) return { kind: 'none' };
  const index = primary.files.findIndex((f) => f.name === need);
  if (index < 0) {
    if (compareBinlogFiles(need, oldest.name) < 0) {
      return { kind: 'gone', code: 'BINLOG_PURGED', message: `the primary no longer has ${need}, where this archive continues (its oldest is ${oldest.name})` };
    }
    return { kind: 'none' };
  }
  if (need === primary.head.file) return { kind: 'none' };
  if (primary.purgesSeen === true && index <= input.warningFiles) {
    return {
      kind: 'warning',
      code: 'PURGE_SOON',
      message: `the primary keeps only ${index} binlog file(s) older than ${need}, which this archive still needs`,
    };
  }
  const expireS = primary.expireLogsSeconds;
  const writtenMs = primary.rotatedAtMs.get(need) ?? input.needFileWrittenAtLeastMs;
  if (expireS > 0 && writtenMs !== undefined) {
    const ageS = (nowMs - writtenMs) / 1000;
    if (ageS >= expireS * input.warningExpireRatio) {
      return {
        kind: 'warning',
        code: 'PURGE_SOON',
        message: `${need}, which this archive still needs, is ${Math.round(ageS)} s old and binlog_expire_logs_seconds is ${expireS}`,
      };
    }
  }
  return { kind: 'none' };
}
