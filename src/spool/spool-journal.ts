import type { ArchiveFiles } from '../archive/archive-files.js';
import type { Logger } from '../platform/logger.js';
import { addRead, listSegments, newestSeq, readSegment, readSegmentCheckpoint, readSegmentHead, type JournalScan, type SegmentHead } from './journal-scan.js';
import { encodeLineText, journalPath, markAppendStart, packDir, packPath, packsOf, seqsOf, unwatchedSince } from './spool-format.js';
import { checkpointHead, SpoolTree, treeFromCheckpoint, type ParsedSegment } from './spool-tree.js';

/**
 * The writing end of one source's journal in one archive: appends operations durably, starts
 * a new segment with a checkpoint when the current one is large or old, and drops history
 * (segments, then packs nothing refers to) older than the retention.
 */
export class SpoolJournal {
  #seq: number;
  #bytes: number;
  #checkpointMs: number;
  #opsSinceCheckpoint: number;
  /** Bytes of the segment's checkpoint: the operations after it are what a rotation bounds. */
  #checkpointBytes: number;
  /** The excludes the current segment records (undefined: a segment from before they were recorded). */
  exclude: string[] | undefined;
  /** First lines of segments read or written, so retention reads each once. */
  readonly #heads = new Map<number, SegmentHead>();
  /** The pack the current segment's checkpoint names (0: none): new packs are numbered from here up. */
  packFloor = 0;
  /**
   * As opened: when the journal last recorded the source as looked at (its newest record's
   * time, a `seen` one's included), or, when that record was found after an outage, since when
   * nobody had watched (its `u`). An agent starting later did not watch in between.
   */
  lastObservedMs = 0;
  /** As opened: the newest record was found after an outage (its `u`), and no `seen` record says that pass ended. */
  unclosedWindowFromMs: number | undefined;

  private constructor(
    private readonly files: ArchiveFiles,
    readonly name: string,
    seq: number,
    bytes: number,
    checkpointMs: number,
    opsSinceCheckpoint: number,
    /** The time of the newest recorded operation (times only move forward). */
    public lastMs: number,
    checkpointBytes: number,
  ) {
    this.#checkpointBytes = checkpointBytes;
    this.#seq = seq;
    this.#bytes = bytes;
    this.#checkpointMs = checkpointMs;
    this.#opsSinceCheckpoint = opsSinceCheckpoint;
  }

  /**
   * Recovers the journal: the newest segment with a complete checkpoint, replayed, is what the
   * archive durably has. A torn tail (a crash; in the newest segment it cannot be told from
   * damage) is cut off on disk. A newer segment that cannot be read is damage: it is left on
   * disk as it is, for `verify` and restore to see, and the journal goes on in a new segment
   * whose checkpoint is the recovered tree (appending to the old one would hide that time was
   * lost). An archive without a usable segment gets an empty one (`fresh`), recording `exclude`.
   */
  static async open(
    files: ArchiveFiles,
    name: string,
    blockBytes: number,
    nowMs: number,
    logger: Logger,
    exclude?: readonly string[],
  ): Promise<{ journal: SpoolJournal; tree: SpoolTree; fresh: boolean }> {
    // Only the newest readable segment is needed (a journal may hold gigabytes of history).
    const scan: JournalScan = { seqs: await listSegments(files, name), segments: [], unreadable: [], vanished: [] };
    for (let i = scan.seqs.length - 1; i >= 0 && scan.segments.length === 0; i--) {
      const seq = scan.seqs[i] as number;
      addRead(scan, seq, await readSegment(files, name, seq, logger));
    }
    const lastSeq = newestSeq(scan);
    const newest = scan.segments[0];
    if (newest === undefined) {
      // An empty tree in the segment after the last one listed: the first of a new archive, or
      // one past segments none of which can be read (which may name packs the next writer must
      // stay above: see packFloorOf).
      const tree = new SpoolTree(blockBytes);
      const journal = new SpoolJournal(files, name, lastSeq, 0, nowMs, 0, nowMs, 0);
      const pack = scan.seqs.length === 0 ? 0 : await packFloorOf(files, name, scan.seqs);
      journal.packFloor = pack;
      await journal.rotate(tree, { exclude, pack });
      return { journal, tree, fresh: true };
    }
    const tree = treeFromCheckpoint(newest, blockBytes);
    let lastMs = newest.checkpointMs;
    for (const op of newest.ops) {
      tree.apply(op);
      lastMs = op.t;
    }
    const newestOp = newest.ops.at(-1);
    const unclosedWindowFromMs = newestOp === undefined ? undefined : unwatchedSince(newestOp);
    const observed = (journal: SpoolJournal): SpoolJournal => {
      journal.lastObservedMs = unclosedWindowFromMs ?? lastMs;
      journal.unclosedWindowFromMs = unclosedWindowFromMs;
      return journal;
    };
    if (scan.unreadable.length > 0 || newest.damaged) {
      logger.error({ source: name, segment: newest.seq, newestSegment: lastSeq, next: lastSeq + 1 }, 'spool journal is damaged at its end; going on from its last usable record in a new segment (the history in between is lost)');
      const journal = observed(new SpoolJournal(files, name, lastSeq, 0, newest.checkpointMs, 0, lastMs, 0));
      journal.exclude = newest.exclude;
      journal.stamp(nowMs);
      // The new segment names the highest pack any segment's first line names: the writer opens
      // at or above it (packFloor), so every block written after this checkpoint lies there or
      // later, and the next start, reading only this segment, keeps numbering above it.
      const pack = await packFloorOf(files, name, scan.seqs);
      journal.packFloor = pack;
      await journal.rotate(tree, { pack });
      return { journal, tree, fresh: false };
    }
    if (newest.torn) {
      logger.warn({ source: name, segment: newest.seq, keptBytes: newest.goodBytes, droppedBytes: newest.bytes - newest.goodBytes }, 'spool journal ends in a torn record; cut back to the last whole one');
      await files.truncate(journalPath(name, newest.seq), newest.goodBytes);
    }
    const checkpointBytes = treeFromCheckpoint(newest, blockBytes)
      .checkpointLines(newest.checkpointMs, newest.seq, newest)
      .reduce((n, line) => n + Buffer.byteLength(encodeLineText(line)), 0);
    const journal = observed(new SpoolJournal(files, name, newest.seq, newest.goodBytes, newest.checkpointMs, newest.ops.length, lastMs, checkpointBytes));
    journal.exclude = newest.exclude;
    journal.packFloor = newest.pack ?? 0;
    return { journal, tree, fresh: false };
  }

  /** A time for a new operation: now, but never before the last one recorded. */
  stamp(nowMs: number): number {
    this.lastMs = Math.max(this.lastMs, nowMs);
    return this.lastMs;
  }

  /**
   * Appends operations, each already encoded (`encodeLineText`, so a pass encodes each one as it
   * happens rather than all at its end), with one durable write; resolves once they are fsynced.
   * Returns the bytes written.
   */
  async append(lines: readonly string[]): Promise<number> {
    const [first, ...rest] = lines;
    if (first === undefined) return 0;
    // Marked, so that damage before a later append is told from a crash in the last one.
    const data = Buffer.from(markAppendStart(first) + rest.join(''));
    await this.files.writeAt(journalPath(this.name, this.#seq), this.#bytes, data);
    this.#bytes += data.length;
    this.#opsSinceCheckpoint += lines.length;
    return data.length;
  }

  /** Whether a new segment (with a checkpoint) is due. */
  rotationDue(nowMs: number, segmentBytesMax: number, retentionMs: number): boolean {
    if (this.#opsSinceCheckpoint === 0) return false;
    // The operations since the checkpoint, not the checkpoint: a tree whose checkpoint alone
    // passes the limit (hundreds of thousands of files) would otherwise get a new checkpoint
    // after every pass with a change, each kept for the whole retention.
    return this.#bytes - this.#checkpointBytes >= segmentBytesMax || nowMs - this.#checkpointMs >= retentionMs / 4;
  }

  /**
   * Starts a new segment whose checkpoint is `tree`, written atomically. It records `exclude`
   * (the current segment's by default) and `pack`, the pack new blocks go to from now on (with
   * the blocks of `tree` all durable): retention then needs this checkpoint alone to know what
   * the segment and every later one can refer to.
   */
  async rotate(tree: SpoolTree, head: { exclude?: readonly string[] | undefined; pack: number | undefined }): Promise<number> {
    const seq = this.#seq + 1;
    const t = this.lastMs;
    const exclude = 'exclude' in head ? head.exclude : this.exclude;
    const lines = tree.checkpointLines(t, seq, { exclude, pack: head.pack });
    const data = Buffer.from(lines.map(encodeLineText).join(''));
    await this.files.putFile(journalPath(this.name, seq), data);
    // Its first line, as retention would read it back.
    const written = checkpointHead(lines[0]);
    if (written !== undefined) this.#heads.set(seq, { seq, ...written });
    this.exclude = exclude === undefined ? undefined : [...exclude];
    this.packFloor = Math.max(this.packFloor, head.pack ?? 0);
    this.#seq = seq;
    this.#bytes = data.length;
    this.#checkpointBytes = data.length;
    this.#checkpointMs = t;
    this.#opsSinceCheckpoint = 0;
    return data.length;
  }

  /**
   * Drops segments no restore within the retention can need (a segment is needed while the
   * next one's checkpoint is younger than the retention), then packs no kept segment refers to.
   * What the kept segments refer to is the oldest kept checkpoint's packs and every pack from
   * the one it records on (see rotate), so only the segments' first lines and the oldest kept
   * segment's checkpoint are read, not the operations of the whole retention; a segment from
   * before `pack` was recorded has all kept segments read, as before.
   */
  async prune(nowMs: number, retentionMs: number, currentPack: number, logger: Logger): Promise<void> {
    const seqs = await listSegments(this.files, this.name);
    const heads: SegmentHead[] = [];
    for (const seq of seqs) {
      const head = this.#heads.get(seq) ?? (await readSegmentHead(this.files, this.name, seq));
      if (typeof head === 'string') continue;
      this.#heads.set(seq, head);
      heads.push(head);
    }
    const keepFrom = heads.findIndex((h, i) => {
      const next = heads[i + 1];
      return next === undefined || next.checkpointMs > nowMs - retentionMs;
    });
    const firstKept = heads[keepFrom];
    // Unreadable segments older than the first kept one go with the history around them.
    const dropped = firstKept === undefined ? [] : seqs.filter((seq) => seq < firstKept.seq);
    if (firstKept === undefined || dropped.length === 0) return;
    const live = new Set<number>([currentPack]);
    const addRefs = (s: ParsedSegment, withOps: boolean): void => {
      for (const [, e] of s.checkpoint) if (e.kind === 'file') for (const b of e.blocks) for (const p of packsOf(b)) live.add(p);
      if (withOps) for (const op of s.ops) if (op.op === 'file') for (const [, ...b] of op.set) for (const p of packsOf(b)) live.add(p);
    };
    let keepFromPack = Infinity;
    if (firstKept.pack !== undefined) {
      // Its checkpoint alone: what it and every later segment refer to is there or in a pack from `pack` on.
      const read = await readSegmentCheckpoint(this.files, this.name, firstKept.seq);
      // Unreadable now (damaged since its first line was read): keep every pack, decide next time.
      if (read === 'unreadable') logger.error({ code: 'SPOOL_JOURNAL_DAMAGED', source: this.name, segment: firstKept.seq, hint: 'run `hotspare verify` on the archive; retention goes on once the window has moved past the segment' }, `the checkpoint of spool journal segment ${firstKept.seq} does not verify: retention removes nothing until the window has moved past it`);
      if (typeof read === 'string') return;
      addRefs(read, false);
      keepFromPack = firstKept.pack;
    } else {
      for (const seq of seqs.filter((n) => n >= firstKept.seq)) {
        const read = await readSegment(this.files, this.name, seq, logger);
        if (typeof read !== 'string') addRefs(read, true);
      }
    }
    for (const seq of dropped) {
      await this.files.remove(journalPath(this.name, seq));
      this.#heads.delete(seq);
    }
    let packsRemoved = 0;
    for (const seq of seqsOf(await this.files.list(packDir(this.name)), 'pack')) {
      if (seq < currentPack && seq < keepFromPack && !live.has(seq)) {
        await this.files.remove(packPath(this.name, seq));
        packsRemoved++;
      }
    }
    logger.info({ source: this.name, segmentsRemoved: dropped.length, packsRemoved }, 'spool history older than the retention removed');
  }
}

/**
 * The highest pack the first lines of `seqs` name (0: none). A damaged segment's checkpoint
 * may name a pack above every pack on disk (one never written): new packs must not take a
 * number below it while a segment naming it is kept.
 */
async function packFloorOf(files: ArchiveFiles, name: string, seqs: readonly number[]): Promise<number> {
  let floor = 0;
  for (const seq of seqs) {
    const head = await readSegmentHead(files, name, seq);
    if (typeof head !== 'string') floor = Math.max(floor, head.pack ?? 0);
  }
  return floor;
}
