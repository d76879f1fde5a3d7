import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import { existsSync, stat as statCallback, statSync } from 'node:fs';
import { join } from 'node:path';
import { Subject, type Observable } from 'rxjs';
import { BINLOG_FIRST_EVENT_POSITION, BINLOG_MAGIC, EventType, isCommitCandidate, parseRotate } from '../core/binlog-event.js';
import { assert } from '../core/assert.js';
import { HotspareError } from '../core/errors.js';
import { TransactionTracker } from '../core/transaction-tracker.js';
import type { Clock } from '../platform/clock.js';
import { fsyncDir, writeFileDurable } from '../platform/durable-file.js';
import type { Logger } from '../platform/logger.js';
import {
  DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES,
  DEFAULT_BINLOG_DIRECT_BUFFER_BYTES,
  DEFAULT_BINLOG_DIRECT_BUFFERS,
  DEFAULT_INDEX_CHECKPOINT_INTERVAL_MS,
  DEFAULT_SYNC_BATCH_BYTES_MAX,
} from '../config/defaults.js';
import { BinlogAppendFile, DirectAppendBuffers, type DirectAppendLimits } from './binlog-append-file.js';
import { archiveWriteError } from './archive-errors.js';
import { promotedArchiveError, readPromotionFence, type PromotionFence } from './promotion-fence.js';
import { ArchiveLayout, BINLOG_FILE_NAME, BINLOG_PARTIAL_SUFFIX, compareBinlogNames, nextBinlogName } from './archive-layout.js';
import { listArchivedBinlogs } from './archived-binlogs.js';
import { scanBinlogFile } from './binlog-file-scanner.js';
import { chainRestartRecorded } from './binlog-gaps.js';
import type { BinlogRecord, DurablePoint, ResumePoint } from '../core/binlog-record.js';

/**
 * What an fsync still has to report about one written batch. The event bytes themselves are
 * in the page cache once written, so the batch lets go of them: memory holds only what is
 * queued, however far fsync lags behind.
 */
interface WrittenBatch {
  file: string;
  /** The file's handle (an fsync round may cover the end of one file and the start of the next). */
  handle: BinlogAppendFile;
  /** Where the file ends once this batch is in it. */
  end: number;
  bytes: number;
  /** The end of the batch's last complete event; undefined when the batch holds only pieces of an unverified event. */
  completeEnd: number | undefined;
  /** The last transaction boundary in the batch (its end offset), if any. */
  boundaryPosition: number | undefined;
  /** Where the event ending at boundaryPosition starts, when it arrived whole (not in pieces). */
  boundaryEventOffset: number | undefined;
  /** The last commit marker in the batch: its timestamp, and the last GTID among commits that carry one. */
  commitTimestampS: number | undefined;
  gtid: string | undefined;
}

interface Checkpoint {
  file: string;
  boundaryPosition: number;
  /**
   * Where the event ending at boundaryPosition starts (when it arrived whole): recovery reads
   * it again, so a checkpoint at a file's closing ROTATE resumes in the next file rather than
   * at the end of this one (which the primary may have purged since).
   */
  boundaryEventOffset?: number;
  commitTimestampS: number | undefined;
  gtid: string | undefined;
}

/**
 * A queued record. `piece`: bytes of an event too large to arrive at once, whose CRC32 is not
 * checked yet: written past the durable point, never counted as durable (see appendPiece).
 * `eventType`: the event's type when `bytes` is a last piece and not the whole event.
 */
type QueuedRecord = BinlogRecord & { piece?: true; eventType?: number };

/** Where an event that arrives in pieces started, and what the writer had accepted before it. */
interface OpenPieces {
  file: string;
  offset: number;
  previousFile: string | undefined;
  previousEnd: number;
}

export interface BinlogArchiveWriterOptions {
  logger: Logger;
  clock: Clock;
  syncBatchBytesMax?: number;
  checkpointIntervalMs?: number;
  /** O_DIRECT appends (see BinlogAppendFile); false writes everything through the page cache. */
  direct?: DirectAppendLimits | false;
}

/**
 * Appends binlog events to `ARCHIVE/binlog/<file>` byte for byte and makes them durable in
 * batches: write, fdatasync, then report the new durable point. Under load one fsync covers
 * many events (group commit); when idle each event is fsynced at once. On open it recovers
 * the newest file: it cuts a torn or partial tail back to the last complete transaction.
 */
export class BinlogArchiveWriter {
  readonly layout: ArchiveLayout;
  readonly #options: Required<BinlogArchiveWriterOptions>;
  readonly #durable = new Subject<DurablePoint>();
  #queue: QueuedRecord[] = [];
  #pieces: OpenPieces | undefined;
  #pendingBytes = 0;
  #flushing: Promise<void> | undefined;
  #failure: unknown;
  #closed = false;
  #handle: BinlogAppendFile | undefined;
  #file: string | undefined;
  /** Bytes accepted for the current file (queued or written). */
  #acceptedEnd = 0;
  #acceptedFile: string | undefined;
  #writtenEnd = 0;
  /** Written to the file but not yet covered by an fsync. */
  #unsynced: WrittenBatch[] = [];
  #syncing: Promise<void> | undefined;
  /** A file was created or renamed since the last fsync: its directory entry must be durable before any of its bytes count. */
  #dirSyncPending = false;
  /** Earlier files' handles, closed once no written batch of theirs waits for an fsync. */
  #retired: BinlogAppendFile[] = [];
  /** The binlog file each open handle writes (the current one and the retired ones). */
  readonly #fileOf = new WeakMap<BinlogAppendFile, string>();
  /** How far each handle's file is known fdatasynced (a round's datasync returned). */
  readonly #syncedEnd = new WeakMap<BinlogAppendFile, number>();
  /** The current file, written under its temporary name until the file before it is durable. */
  #partial: { handle: BinlogAppendFile; from: string; to: string } | undefined;
  #point: DurablePoint | undefined;
  #lastCheckpointMs = 0;
  /** Where the event ending at the durable point's boundary starts, if known (for the checkpoint). */
  #boundaryEventOffset: number | undefined;
  /** The aligned buffers every file of this writer appends through. */
  readonly #direct: DirectAppendBuffers;
  #directBytes = 0;

  private constructor(root: string, options: BinlogArchiveWriterOptions, readonly resume: ResumePoint | undefined) {
    this.layout = new ArchiveLayout(root);
    this.#options = {
      syncBatchBytesMax: DEFAULT_SYNC_BATCH_BYTES_MAX,
      checkpointIntervalMs: DEFAULT_INDEX_CHECKPOINT_INTERVAL_MS,
      direct: { alignBytes: DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES, buffers: DEFAULT_BINLOG_DIRECT_BUFFERS, bufferBytes: DEFAULT_BINLOG_DIRECT_BUFFER_BYTES },
      ...options,
    };
    const direct = this.#options.direct;
    // Turned off, the pool is never drawn on (its memory is made at the first take).
    this.#direct = new DirectAppendBuffers(direct === false ? { alignBytes: DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES, buffers: 1, bufferBytes: DEFAULT_ARCHIVE_DIRECT_ALIGN_BYTES } : direct);
    if (direct === false) this.#direct.enabled = false;
    if (resume !== undefined) {
      this.#acceptedFile = resume.file;
      this.#acceptedEnd = resume.position;
      this.#point = {
        file: resume.file,
        position: resume.position,
        boundaryFile: resume.file,
        boundaryPosition: resume.position,
        commitTimestampS: resume.commitTimestampS,
        gtid: resume.gtid,
      };
    }
  }

  /** Opens an archive's binlog folder, recovering the newest file's tail. */
  static async open(root: string, options: BinlogArchiveWriterOptions): Promise<BinlogArchiveWriter> {
    const layout = new ArchiveLayout(root);
    try {
      await mkdir(layout.binlogDir, { recursive: true });
      await mkdir(layout.stateDir, { recursive: true });
      await removePartialFiles(layout, options.logger);
      const resume = await recoverTail(layout, options.logger);
      // A process killed between creating (or renaming) a file and fsyncing its folder left an
      // entry that is not durable; the events in that file will be reported durable from here
      // on, so the folders are made durable first (and the folders mkdir may have made).
      await fsyncDir(layout.binlogDir);
      await fsyncDir(layout.stateDir);
      await fsyncDir(root);
      return new BinlogArchiveWriter(root, options, resume);
    } catch (err) {
      throw archiveWriteError(err, root);
    }
  }

  /** Emits after every fsync, with everything now durable. */
  get durable$(): Observable<DurablePoint> {
    return this.#durable.asObservable();
  }

  get durablePoint(): DurablePoint | undefined {
    return this.#point;
  }

  /** Bytes written with O_DIRECT so far (the rest went through the page cache). */
  get directBytes(): number {
    return this.#directBytes;
  }

  /** Bytes accepted but not yet durable: what the caller's flow control watches. */
  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  /**
   * Queues one event. Checks continuity first: within a file each event starts where the
   * previous one ended; a new file starts at offset 4 and is the successor of the last one.
   */
  append(record: BinlogRecord): void {
    assert(this.#pieces === undefined, 'a whole event while an event in pieces is open');
    this.#accept(record);
  }

  /**
   * Queues a piece of an event that arrives in pieces (the caller checks the whole event's
   * CRC32 as they come). Pieces are written past the durable point but count for nothing:
   * no fsync reports them until appendLastPiece() completes the event, and dropPieces()
   * cuts them off again. `piece.offset` is where the piece goes in the file.
   */
  appendPiece(piece: BinlogRecord): void {
    const previousFile = this.#acceptedFile;
    const previousEnd = this.#acceptedEnd;
    this.#accept({ ...piece, boundary: false, piece: true });
    this.#pieces ??= { file: piece.file, offset: piece.offset, previousFile, previousEnd };
  }

  /**
   * Queues the last piece of an event whose pieces all arrived and whose CRC32 and position
   * the caller has checked: the event counts (boundary, commit time, GTID) from the fsync that
   * covers this piece. `eventType` is the event's type (this piece does not hold its header).
   */
  appendLastPiece(piece: BinlogRecord, eventType: number): void {
    assert(this.#pieces !== undefined, 'a last piece without its first');
    this.#accept({ ...piece, eventType });
    this.#pieces = undefined;
  }

  /**
   * Drops the pieces of an event that failed its check: waits until they are written, then cuts
   * the file back to where the event began (or removes the file the event had begun). Nothing
   * of them was ever reported durable.
   */
  async dropPieces(): Promise<void> {
    const open = this.#pieces;
    if (open === undefined) return;
    await this.flush();
    this.#pieces = undefined;
    assert(this.#file === open.file && this.#handle !== undefined, 'the pieces were written to the open file');
    // Everything written is durable after flush(), so the file already has its own name.
    assert(this.#partial === undefined, 'no file is under its temporary name after a flush');
    if (open.offset === BINLOG_FIRST_EVENT_POSITION) {
      await this.#handle.close();
      this.#handle = undefined;
      this.#file = undefined;
      await unlink(this.layout.binlogFile(open.file));
      await fsyncDir(this.layout.binlogDir);
      this.#acceptedFile = open.previousFile;
      this.#acceptedEnd = open.previousEnd;
      this.#writtenEnd = 0;
      return;
    }
    await this.#handle.truncate(open.offset);
    await this.#handle.datasync();
    this.#acceptedEnd = open.offset;
    this.#writtenEnd = open.offset;
  }

  #accept(record: QueuedRecord): void {
    if (this.#failure !== undefined) throw this.#failure;
    assert(!this.#closed, 'append after close');
    if (record.file === this.#acceptedFile) {
      if (record.offset !== this.#acceptedEnd) {
        throw new HotspareError('BINLOG_CONTINUITY', `event at ${record.file}:${record.offset} does not follow the archive's end ${this.#acceptedEnd}`, {
          hint: 'the agent restarts the stream from the durable position; if this repeats, run `hotspare verify`',
        });
      }
    } else {
      if (record.offset !== BINLOG_FIRST_EVENT_POSITION) {
        throw new HotspareError('BINLOG_CONTINUITY', `event at ${record.file}:${record.offset} starts a file the archive has not begun`, {
          hint: 'the agent restarts the stream from the durable position',
        });
      }
      // A chain restart (a recorded gap) must begin a file the archive does not hold: a new
      // file never replaces an archived one (after RESET MASTER, say, the names start again).
      if (
        this.#acceptedFile !== undefined &&
        record.file !== nextBinlogName(this.#acceptedFile) &&
        (!chainRestartRecorded(this.layout, this.#acceptedFile, record.file) || existsSync(this.layout.binlogFile(record.file)))
      ) {
        throw new HotspareError('BINLOG_GAP', `the archive ends in ${this.#acceptedFile} but the primary continues in ${record.file}`, {
          hint: 'this archive cannot go on past files it does not hold (after RESET MASTER the names start again): point the replica at a new, empty archive folder; the old one keeps what it holds for promotion',
        });
      }
    }
    // A file's first event makes the writer create the file afresh, emptying whatever is there: a
    // file the archive already holds past its magic is never begun again. A resume point can
    // name one (a ROTATE in the newest file naming an archived file), and so can a peer.
    if (record.offset === BINLOG_FIRST_EVENT_POSITION && heldPastMagic(this.layout.binlogFile(record.file))) {
      throw new HotspareError('ARCHIVE_DAMAGED', `event at ${record.file}:${record.offset} would begin ${record.file} again, but the archive already holds it`, {
        hint: 'an archived binlog file is never replaced: run `hotspare verify` on the archive; the stream cannot go on into this archive',
      });
    }
    this.#acceptedFile = record.file;
    this.#acceptedEnd = record.offset + record.bytes.length;
    this.#queue.push(record);
    this.#pendingBytes += record.bytes.length;
    this.#kick();
  }

  /** Resolves when everything appended so far is durable (or rejects with the write error). */
  async flush(): Promise<void> {
    while (this.#flushing !== undefined) await this.#flushing;
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Flushes, closes the file and completes durable$. */
  async close(): Promise<void> {
    try {
      await this.flush();
    } finally {
      this.#closed = true;
      // An fsync round outlives a failed flush until it ends: it must not find its files closed.
      await this.#syncing;
      // After a failure some of these may still wait for an fsync that will never count.
      for (const handle of this.#retired.splice(0)) await handle.close();
      await this.#handle?.close();
      this.#handle = undefined;
      this.#durable.complete();
    }
  }

  #kick(): void {
    if (this.#flushing !== undefined) return;
    // Started from a microtask, not at once: the events of one socket read are appended in
    // one synchronous run, and they then go out in one write. No timer: an idle stream's
    // single event is written and fsynced right away.
    this.#flushing = Promise.resolve()
      .then(() => this.#drain())
      .catch(async (err: unknown) => {
        this.#failure ??= archiveWriteError(err, this.layout.root);
        // An fsync round under way (of the batches before the failed one) ends first: its
        // bytes are durable and it reports them, and only then is the durable end known. Cut
        // meanwhile, from the point before that round, the file lost bytes the round then
        // reported durable and put in the checkpoint.
        await this.#syncing;
        await this.#cutToDurable().catch((cutErr: unknown) => this.#options.logger.warn({ err: cutErr }, 'could not cut the archive file back to its durable end after a failed write'));
        this.#durable.error(this.#failure);
      })
      .finally(() => {
        this.#flushing = undefined;
        if (this.#queue.length > 0 && this.#failure === undefined) this.#kick();
      });
  }

  /**
   * After a failed write or fsync, cuts the open file back to what is durable. Linux marks the
   * pages of a failed write-back clean, so the page cache may go on showing bytes the disk does
   * not hold: the recovery of the next session would read them, count them, and append after
   * them, and the hole would show only once those pages were evicted.
   */
  async #cutToDurable(): Promise<void> {
    const point = this.#point;
    // Every file still open: the one before a switch may hold bytes its last fsync never
    // covered. A file still under its temporary name holds nothing that counts (the next
    // session removes it).
    for (const handle of [...this.#retired, ...(this.#handle === undefined ? [] : [this.#handle])]) {
      const file = this.#fileOf.get(handle);
      if (file === undefined || this.#partial?.handle === handle) continue;
      const order = point === undefined ? -1 : compareBinlogNames(point.file, file);
      if (order > 0) continue; // the durable point is in a later file: all of this one is durable
      let durableEnd = order === 0 && point !== undefined ? point.position : BINLOG_FIRST_EVENT_POSITION;
      // A file before the current one is whole (its rotate ended it): what an fsync round made
      // durable stays, though the round failed afterwards (its folder's fsync) and never
      // reported it. Cut, it left a hole no one recorded before a next file that kept its name.
      if (handle !== this.#handle) durableEnd = Math.max(durableEnd, this.#syncedEnd.get(handle) ?? 0);
      if (handle.end <= durableEnd) continue;
      await handle.truncate(durableEnd);
      await handle.datasync();
    }
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0) {
      const batch = this.#takeBatch();
      const first = batch[0];
      assert(first !== undefined, 'batch is not empty');
      if (first.file !== this.#file) await this.#switchTo(first.file, first.offset);
      const handle = this.#handle;
      assert(handle !== undefined, 'a file is open');
      const buffers = batch.map((r) => r.bytes);
      assert(handle.end === this.#writtenEnd, 'the file ends where the writer wrote last');
      const directBefore = handle.directBytes;
      await handle.append(buffers);
      this.#directBytes += handle.directBytes - directBefore;
      const written = summarize(batch, handle, this.#writtenEnd);
      this.#writtenEnd = written.end;
      this.#unsynced.push(written);
      // Group commit: the next write goes on while an fsync covers everything written so far.
      this.#startSync();
    }
    await this.#syncWritten();
  }

  /** Starts an fsync loop if none runs; it covers whatever was written before each fsync. */
  #startSync(): void {
    if (this.#syncing !== undefined) return;
    this.#syncing = (async () => {
      // After a failure no new round starts: what is written and not yet durable is cut back.
      while (this.#unsynced.length > 0 && this.#failure === undefined) {
        const covered = this.#unsynced.splice(0);
        // After a file switch a round covers the old file's last bytes and the new file's
        // first: both are fsynced at once, and nothing of the round counts before both are.
        // The fence is looked for beside the fsync, so it costs the round no time: a promotion
        // fenced while this session streams (the old primary's dump reconnected within it) ends
        // the session before another byte counts, and the failure cuts this round's bytes back.
        // Settled, not all: a fence that cannot be read must not end the round while its
        // fdatasyncs still run (the failure's cut-back and close would meet them).
        const [fence, ...synced] = await Promise.allSettled([this.#fence(), ...[...new Set(covered.map((b) => b.handle))].map((h) => h.datasync())]);
        const failed = synced.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
        if (fence.status === 'rejected') throw fence.reason;
        if (fence.value !== undefined) throw promotedArchiveError(this.layout.root, fence.value);
        for (const b of covered) this.#syncedEnd.set(b.handle, Math.max(this.#syncedEnd.get(b.handle) ?? 0, b.end));
        // Every byte of the earlier files is durable now (they were written before the new
        // file began, so none is left for a later round): the new file may take its name.
        const partial = this.#partial;
        if (partial !== undefined && !this.#unsynced.some((b) => b.handle !== partial.handle)) {
          await rename(partial.from, partial.to);
          this.#partial = undefined;
          this.#dirSyncPending = true;
        }
        if (this.#dirSyncPending) {
          // Taken before the fsync: a file made during it is covered by the next round.
          this.#dirSyncPending = false;
          await fsyncDir(this.layout.binlogDir);
        }
        assert(this.#partial === undefined || covered.every((b) => b.handle !== this.#partial?.handle), 'a file counts only under its own name');
        this.#pendingBytes -= covered.reduce((n, b) => n + b.bytes, 0);
        this.#advance(covered);
        await this.#closeRetired();
      }
    })()
      .catch((err: unknown) => {
        // A failed fsync means the bytes may not be on disk: nothing after it is acknowledged.
        this.#failure ??= archiveWriteError(err, this.layout.root);
      })
      .finally(() => {
        this.#syncing = undefined;
      });
  }

  /**
   * The archive's promotion fence, if a promotion wrote one since the session was claimed
   * (claimArchive refuses a fenced archive at the start). A stat first: the fence is rare.
   */
  async #fence(): Promise<PromotionFence | undefined> {
    // Absent (or not to be examined: the fsync beside it reports a volume that fails).
    if (!(await pathStats(this.layout.promotedFile))) return undefined;
    return readPromotionFence(this.layout.root);
  }

  /** Waits until every written byte is durable. */
  async #syncWritten(): Promise<void> {
    while (this.#syncing !== undefined || this.#unsynced.length > 0) {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#syncing === undefined) this.#startSync();
      await this.#syncing;
    }
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Takes queued records of one file, up to the batch limit (always at least one). */
  #takeBatch(): QueuedRecord[] {
    const first = this.#queue[0];
    assert(first !== undefined, 'queue is not empty');
    let bytes = 0;
    let count = 0;
    for (const record of this.#queue) {
      if (record.file !== first.file) break;
      if (count > 0 && bytes + record.bytes.length > this.#options.syncBatchBytesMax) break;
      bytes += record.bytes.length;
      count += 1;
    }
    return this.#queue.splice(0, count);
  }

  /**
   * Moves on to another file. The new file is written while the fsync of the old one's last
   * bytes runs, so a switch costs the stream no fsync of its own. On disk, though, a crash
   * must never leave a newer file beside an older one that lost its tail: recovery looks
   * only at the newest file, and the hole would stay. So while the old file is not yet
   * durable, the new one is written under its temporary name and renamed by the fsync round
   * that makes the old one durable (before that round's directory fsync, which covers the
   * rename; none of the new file's bytes counts before it).
   */
  async #switchTo(file: string, offset: number): Promise<void> {
    const previous = this.#handle;
    // One file at a time under a temporary name (a file is rarely shorter than one fsync).
    if (this.#partial !== undefined) await this.#syncWritten();
    if (previous !== undefined) {
      this.#retired.push(previous);
      this.#handle = undefined;
    }
    const oldNotDurable = this.#syncing !== undefined || this.#unsynced.length > 0;
    // While a round runs it may be fsyncing the old file; its end closes what it is done with.
    if (this.#syncing === undefined) await this.#closeRetired();
    const path = this.layout.binlogFile(file);
    if (offset === BINLOG_FIRST_EVENT_POSITION) {
      // A new file: the magic first. The fsync that covers its first events covers the magic
      // too, and the directory entry is made durable before that fsync reports anything (a
      // crash before leaves a file that recovery starts again, or none).
      const partialPath = this.layout.binlogPartialFile(file);
      const handle = await BinlogAppendFile.create(oldNotDurable ? partialPath : path, 0o640, this.#direct);
      try {
        await handle.append([BINLOG_MAGIC]);
      } catch (err) {
        await handle.close().catch(() => undefined);
        throw err;
      }
      if (oldNotDurable) {
        this.#partial = { handle, from: partialPath, to: path };
        this.#options.logger.debug({ file }, 'new binlog file written under its temporary name until the one before is durable');
      } else {
        this.#dirSyncPending = true;
      }
      this.#handle = handle;
    } else {
      // Only the first file of a session starts mid-file (append() refuses any other).
      this.#handle = await BinlogAppendFile.openAt(path, offset, this.#direct);
    }
    this.#fileOf.set(this.#handle, file);
    this.#file = file;
    this.#writtenEnd = offset;
  }

  /** Closes the earlier files that no written batch waits on. Called only while no fsync runs. */
  async #closeRetired(): Promise<void> {
    const done = this.#retired.filter((h) => !this.#unsynced.some((b) => b.handle === h));
    if (done.length === 0) return;
    this.#retired = this.#retired.filter((h) => !done.includes(h));
    for (const handle of done) await handle.close();
  }

  #advance(covered: WrittenBatch[]): void {
    const last = covered[covered.length - 1];
    assert(last !== undefined, 'batch is not empty');
    const previous = this.#point;
    // Pieces of an event not yet checked may be covered too: the point stops before them. A
    // round may span a file switch, so the point is in the file of the last complete event.
    let complete: { file: string; position: number } | undefined;
    let boundaryFile = previous?.boundaryFile ?? last.file;
    let boundaryPosition = previous?.boundaryPosition ?? BINLOG_FIRST_EVENT_POSITION;
    let commitTimestampS = previous?.commitTimestampS;
    let gtid = previous?.gtid;
    for (const batch of covered) {
      if (batch.completeEnd !== undefined) complete = { file: batch.file, position: batch.completeEnd };
      if (batch.boundaryPosition !== undefined) {
        boundaryFile = batch.file;
        boundaryPosition = batch.boundaryPosition;
        this.#boundaryEventOffset = batch.boundaryEventOffset;
      }
      if (batch.commitTimestampS !== undefined) commitTimestampS = batch.commitTimestampS;
      if (batch.gtid !== undefined) gtid = batch.gtid;
    }
    if (complete === undefined) return;
    const point: DurablePoint = { file: complete.file, position: complete.position, boundaryFile, boundaryPosition, commitTimestampS, gtid };
    assert(previous === undefined || compareBinlogNames(point.file, previous.file) > 0 || point.position > previous.position, 'the durable point only moves forward');
    this.#point = point;
    this.#durable.next(point);
    void this.#maybeCheckpoint(point);
  }

  async #maybeCheckpoint(point: DurablePoint): Promise<void> {
    const now = this.#options.clock.nowMs();
    if (now - this.#lastCheckpointMs < this.#options.checkpointIntervalMs) return;
    this.#lastCheckpointMs = now;
    const checkpoint: Checkpoint = {
      file: point.boundaryFile,
      boundaryPosition: point.boundaryPosition,
      ...(this.#boundaryEventOffset !== undefined ? { boundaryEventOffset: this.#boundaryEventOffset } : {}),
      commitTimestampS: point.commitTimestampS,
      gtid: point.gtid,
    };
    try {
      // Into the state folder the open made: an archive folder moved away meanwhile is not begun again.
      await writeFileDurable(this.layout.binlogCheckpointFile, JSON.stringify(checkpoint), { createDir: false });
    } catch (err) {
      // The checkpoint only saves work at the next start; losing one is harmless.
      this.#options.logger.warn({ err }, 'could not write the binlog checkpoint');
    }
  }
}

/** What the durable point needs from a batch of records of one file, without their bytes. */
function summarize(batch: readonly QueuedRecord[], handle: BinlogAppendFile, at: number): WrittenBatch {
  const first = batch[0];
  assert(first !== undefined, 'batch is not empty');
  const written: WrittenBatch = { file: first.file, handle, end: at, bytes: 0, completeEnd: undefined, boundaryPosition: undefined, boundaryEventOffset: undefined, commitTimestampS: undefined, gtid: undefined };
  for (const record of batch) {
    written.bytes += record.bytes.length;
    written.end += record.bytes.length;
    if (record.piece === true) continue;
    written.completeEnd = record.offset + record.bytes.length;
    if (!record.boundary) continue;
    written.boundaryPosition = record.offset + record.bytes.length;
    written.boundaryEventOffset = record.eventType === undefined ? record.offset : undefined;
    const type = record.eventType ?? record.bytes.readUInt8(4);
    if (isCommitCandidate(type)) {
      written.commitTimestampS = record.timestampS;
      if (record.gtid !== undefined) written.gtid = record.gtid;
    }
  }
  return written;
}

/** True when `path` is a file longer than a binlog's magic (one with only the magic may be begun again). */
function heldPastMagic(path: string): boolean {
  try {
    return statSync(path).size > BINLOG_FIRST_EVENT_POSITION;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * A file still under its temporary name was left by a crash before the file ahead of it was
 * durable: none of its bytes was ever reported durable, and the stream fetches them again.
 */
async function removePartialFiles(layout: ArchiveLayout, logger: Logger): Promise<void> {
  for (const name of await readdir(layout.binlogDir)) {
    if (!name.startsWith('.') || !name.endsWith(BINLOG_PARTIAL_SUFFIX)) continue;
    logger.info({ file: name }, 'removing a binlog file that a crash left before it was durable');
    await rm(join(layout.binlogDir, name), { force: true });
  }
}

/**
 * Finds where the archive's newest file can continue: scans it from the last checkpoint (or
 * from the start), verifying every event, and cuts it back to the end of the last complete
 * transaction. The cut bytes are fetched again from the primary.
 */
async function recoverTail(layout: ArchiveLayout, logger: Logger): Promise<ResumePoint | undefined> {
  const files = await listArchivedBinlogs(layout);
  const newest = files[files.length - 1];
  if (newest === undefined) return undefined;
  const path = layout.binlogFile(newest);
  const checkpoint = await readCheckpoint(layout);

  const tracker = new TransactionTracker();
  let fromOffset = BINLOG_FIRST_EVENT_POSITION;
  let boundary = BINLOG_FIRST_EVENT_POSITION;
  let commitTimestampS = checkpoint?.commitTimestampS;
  let gtid = checkpoint?.gtid;
  const { size: sizeBefore } = await stat(path);
  if (checkpoint !== undefined && checkpoint.file === newest && checkpoint.boundaryPosition <= sizeBefore) {
    boundary = checkpoint.boundaryPosition;
    // The boundary's own event is read again (it is durable: boundary stays where it is), so
    // a file that ends with its ROTATE is seen to end there.
    const eventAt = checkpoint.boundaryEventOffset;
    fromOffset = eventAt !== undefined && eventAt >= BINLOG_FIRST_EVENT_POSITION && eventAt < checkpoint.boundaryPosition ? eventAt : checkpoint.boundaryPosition;
  }
  let rotateTo: string | undefined;
  let scan;
  try {
    scan = await scanBinlogFile(path, {
      fromOffset,
      verifyChecksums: true,
      onEvent: ({ offset, header, bytes }) => {
        rotateTo = undefined;
        if (!tracker.observe(bytes, header)) return;
        // Never below the checkpoint's boundary: what it names is durable.
        boundary = Math.max(boundary, offset + header.sizeBytes);
        if (isCommitCandidate(header.type)) {
          commitTimestampS = header.timestampS;
          gtid = tracker.lastGtid ?? gtid;
        }
        if (header.type === EventType.ROTATE) rotateTo = plausibleNext(parseRotate(bytes).nextFile, files);
        // A file the server closed at its shutdown ends with STOP; it goes on in the next file
        // (resumed at the end of this one instead, a purge of this one, fully archived, read
        // as BINLOG_PURGED).
        else if (header.type === EventType.STOP) rotateTo = nextBinlogName(newest);
      },
    });
  } catch (err) {
    throw new HotspareError('ARCHIVE_READ', `cannot read ${path}`, { cause: err, hint: 'check the archive volume (mount, permissions, disk)' });
  }

  const handle = await open(path, 'r+');
  try {
    const { size } = await handle.stat();
    if (size < BINLOG_FIRST_EVENT_POSITION) {
      // A crash between creating the file and writing its magic: start the file again.
      await handle.truncate(0);
      await handle.write(BINLOG_MAGIC, 0, BINLOG_MAGIC.length, 0);
      await handle.datasync();
      return { file: newest, position: BINLOG_FIRST_EVENT_POSITION, commitTimestampS, gtid };
    }
    if (scan.stop.kind !== 'end') {
      logger.warn({ file: newest, at: scan.stop.offset, reason: scan.stop.reason }, 'archive tail is incomplete; cutting back to the last complete transaction');
    }
    if (boundary < size) {
      logger.info({ file: newest, from: size, to: boundary }, 'cutting a partial transaction from the archive tail');
      await handle.truncate(boundary);
      await handle.datasync();
    }
  } finally {
    await handle.close();
  }
  if (rotateTo !== undefined && boundary === scan.endOffset) {
    return { file: rotateTo, position: BINLOG_FIRST_EVENT_POSITION, commitTimestampS, gtid };
  }
  return { file: newest, position: boundary, commitTimestampS, gtid };
}

/**
 * The file a ROTATE names, when the archive can go on there: a binlog file name it does not hold
 * yet. Another (a name that is a path, or an archived file, which going on there would empty)
 * comes from a damaged or hostile stream: the archive then resumes at the newest file's end.
 */
function plausibleNext(nextFile: string, archived: readonly string[]): string | undefined {
  return BINLOG_FILE_NAME.test(nextFile) && !archived.includes(nextFile) ? nextFile : undefined;
}

async function readCheckpoint(layout: ArchiveLayout): Promise<Checkpoint | undefined> {
  try {
    return JSON.parse(await readFile(layout.binlogCheckpointFile, 'utf8')) as Checkpoint;
  } catch {
    return undefined;
  }
}

/**
 * Whether `path` can be examined, by fs.stat's callback form: every fsync round asks this of the
 * promotion fence, which is nearly never there, and through fs/promises each miss built an Error
 * with a stack trace. A miss cost 81-85 us of CPU that way and 54-56 us this way, what a hit costs
 * (20,000 of each); a receiver at ~1,000 commits a second spent about 15% of its main thread on it.
 */
function pathStats(path: string): Promise<boolean> {
  return new Promise((resolve) => statCallback(path, (err) => resolve(err === null)));
}
