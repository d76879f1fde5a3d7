import type { ArchiveFiles } from '../archive/archive-files.js';
import type { Logger } from '../platform/logger.js';
import { newestSeq, scanJournal } from './journal-scan.js';
import { encodeLineText, journalPath, packDir, packPath, seqsOf } from './spool-format.js';
import { SpoolTree, treeFromCheckpoint } from './spool-tree.js';

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
    const scan = await scanJournal(files, name, logger);
    const lastSeq = newestSeq(scan);
    const newest = scan.segments[scan.segments.length - 1];
    if (newest === undefined) {
      const seq = lastSeq + 1;
      const tree = new SpoolTree(blockBytes);
      await files.putFile(journalPath(name, seq), Buffer.from(tree.checkpointLines(nowMs, seq, exclude).map(encodeLineText).join('')));
      const size = (await files.size(journalPath(name, seq))) ?? 0;
      const journal = new SpoolJournal(files, name, seq, size, nowMs, 0, nowMs, size);
      journal.exclude = exclude === undefined ? undefined : [...exclude];
      return { journal, tree, fresh: true };
    }
    const tree = treeFromCheckpoint(newest, blockBytes);
    let lastMs = newest.checkpointMs;
    for (const op of newest.ops) {
      tree.apply(op);
      lastMs = op.t;
    }
    if (newest.seq !== lastSeq) {
      logger.error({ source: name, segment: newest.seq, newestSegment: lastSeq, next: lastSeq + 1 }, 'spool journal is damaged at its end; going on from its last usable record in a new segment (the history in between is lost)');
      const journal = new SpoolJournal(files, name, lastSeq, 0, newest.checkpointMs, 0, lastMs, 0);
      journal.exclude = newest.exclude;
      journal.stamp(nowMs);
      await journal.rotate(tree);
      return { journal, tree, fresh: false };
    }
    if (newest.torn) {
      logger.warn({ source: name, segment: newest.seq, keptBytes: newest.goodBytes, droppedBytes: newest.bytes - newest.goodBytes }, 'spool journal ends in a torn record; cut back to the last whole one');
      await files.truncate(journalPath(name, newest.seq), newest.goodBytes);
    }
    const checkpointBytes = treeFromCheckpoint(newest, blockBytes)
      .checkpointLines(newest.checkpointMs, newest.seq, newest.exclude)
      .reduce((n, line) => n + Buffer.byteLength(encodeLineText(line)), 0);
    const journal = new SpoolJournal(files, name, newest.seq, newest.goodBytes, newest.checkpointMs, newest.ops.length, lastMs, checkpointBytes);
    journal.exclude = newest.exclude;
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
    if (lines.length === 0) return 0;
    const data = Buffer.from(lines.join(''));
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

  /** Starts a new segment whose checkpoint is `tree`, written atomically; it records `exclude` (the current segment's by default). */
  async rotate(tree: SpoolTree, exclude: readonly string[] | undefined = this.exclude): Promise<number> {
    const seq = this.#seq + 1;
    const t = this.lastMs;
    const data = Buffer.from(tree.checkpointLines(t, seq, exclude).map(encodeLineText).join(''));
    await this.files.putFile(journalPath(this.name, seq), data);
    this.exclude = exclude === undefined ? undefined : [...exclude];
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
   */
  async prune(nowMs: number, retentionMs: number, currentPack: number, logger: Logger): Promise<void> {
    const scan = await scanJournal(this.files, this.name, logger);
    const segments = scan.segments;
    const keepFrom = segments.findIndex((s, i) => {
      const next = segments[i + 1];
      return next === undefined || next.checkpointMs > nowMs - retentionMs;
    });
    const dropped = segments.slice(0, Math.max(0, keepFrom));
    if (dropped.length === 0) return;
    // Unreadable segments older than the first kept one go with the history around them.
    const firstKept = segments[keepFrom]?.seq ?? 0;
    const unreadableDropped = scan.unreadable.filter((seq) => seq < firstKept);
    const live = new Set<number>([currentPack]);
    for (const s of segments.slice(keepFrom)) {
      for (const [, e] of s.checkpoint) if (e.kind === 'file') for (const b of e.blocks) live.add(b[1]);
      for (const op of s.ops) if (op.op === 'file') for (const b of op.set) live.add(b[2]);
    }
    for (const seq of [...dropped.map((s) => s.seq), ...unreadableDropped]) await this.files.remove(journalPath(this.name, seq));
    let packsRemoved = 0;
    for (const seq of seqsOf(await this.files.list(packDir(this.name)), 'pack')) {
      if (seq < currentPack && !live.has(seq)) {
        await this.files.remove(packPath(this.name, seq));
        packsRemoved++;
      }
    }
    logger.info({ source: this.name, segmentsRemoved: dropped.length + unreadableDropped.length, packsRemoved }, 'spool history older than the retention removed');
  }
}
