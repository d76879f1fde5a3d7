import { readdir, readlink, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChokidarOptions, FSWatcher } from 'chokidar';
import type { ArchiveFiles } from '../archive/archive-files.js';
import { DEFAULT_SPOOL_COMPACT_READ_BYTES } from '../config/defaults.js';
import type { SpoolSource } from '../config/schema.js';
import { errorMessage, HotspareError } from '../core/errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { sameReaderConfig, type FileReader } from './file-reader.js';
import { sharedReaders, type ReaderPool } from './reader-pool.js';
import { blake3LoadFailure, blake3Unavailable, defaultBlockHash, type BlockHashName } from './block-hash.js';
import { shipFile } from './file-shipper.js';
import { relocateSparsePacks } from './pack-compactor.js';
import { PackWriter } from './pack-writer.js';
import { encodeLineText, encodeSourceMeta, historyCompleteFromMs, newerSourceFormat, SPOOL_FORMAT_VERSION, sourceMetaPath, UNWATCHED_SINCE_FIELD, type BlockRef, type SourceMeta, type SpoolOp } from './spool-format.js';
import { SpoolJournal } from './spool-journal.js';
import { watchSource } from './spool-watcher.js';
import { DEFAULT_SPOOL_TUNING, readerConfigOf, type SpoolTuning } from './spool-tuning.js';
import { TaskWindow } from './task-window.js';
import { backoffDelayMs } from '../core/backoff.js';
import { isUnder, parentOf, sortByDepth, type SpoolTree } from './spool-tree.js';
import { excludeMatcher, nameForLog, utf8Name, type Found, type ScanResult } from './tree-scanner.js';
import { childLogger } from '../platform/logger.js';

/** What the lag endpoint reads about one source (or, summed, one replica). */
export interface SpoolFilesSnapshot {
  pendingChanges: number;
  pendingBytes: number;
  oldestPendingMs: number;
  bytesShippedTotal: number;
  /** Sources whose folder is not there (or not a folder) at the last look: nothing of them is archived meanwhile. */
  missingSources: Array<{ name: string; path: string }>;
}

export interface SpoolSyncerOptions {
  source: SpoolSource;
  files: ArchiveFiles;
  logger: Logger;
  clock: Clock;
  tuning?: Partial<SpoolTuning>;
  /** Called with every durably shipped byte count (data and journal), for replica-wide totals. */
  onShipped?: (bytes: number) => void;
  /**
   * Changes may have waited since then (the replica was away, or nothing shipped yet): the
   * first full pass's age, in the lag figures, counts from it rather than from this start.
   */
  pendingSinceMs?: number;
  /**
   * A syncer of this process watched the source into this archive until then, and none since
   * (the standby went away). Absent: none did in this process (the agent starts), and the
   * journal's newest record says when the source was last looked at. Either way the changes the
   * first full pass finds happened at unknown moments since, and are recorded so (SpoolOp's `u`).
   */
  awaySinceMs?: number;
  /**
   * Test seam: runs when a file to ship is open and its size taken, before its bytes are read,
   * so a test can remove or replace it at exactly that moment.
   */
  beforeRead?: (path: string) => Promise<void> | void;
  /** Where the syncer's reader comes from and goes back to when it stops (default: the process's, `sharedReaders`). */
  readers?: ReaderPool;
  /** Starts the watcher (chokidar's `watch`); a test wraps it to stop the syncer while one starts. */
  watchTree?: (root: string, options: ChokidarOptions) => FSWatcher;
}

/**
 * Streams one spool source into one archive. A watcher marks changed paths (latency); a
 * periodic full rescan finds whatever it missed (correctness). Each pass compares what it
 * sees with what the archive durably holds (the tree recovered from the journal), ships the
 * difference (new bytes, changed blocks, renames, deletes, modes, times), and commits it with
 * a durable journal write (a long pass, every DEFAULT_SPOOL_PASS_COMMIT_* on the way). A restarted syncer recovers that tree and ships only what changed
 * meanwhile. Archive failures reopen the journal after a backoff and rescan everything.
 */
export class SpoolSyncer {
  readonly tuning: SpoolTuning;
  readonly #log: Logger;
  readonly #excluded: (rel: string) => boolean;
  /** Files the source names append-only (`appendOnly`, globs read as `exclude`'s). */
  readonly #appendOnly: (rel: string) => boolean;
  /**
   * Files that changed under every attempt of their last read: how many passes in a row, whether
   * they are pausing (until their timer ends the pause, not by the clock: a timer may fire a few
   * milliseconds before the clock says it is due), and since when their change waits (pending in
   * the lag figures until it ships, so a file that never settles shows as lag rather than vanishing),
   * and which inode paused: another file at the path (a log rotated, a file replaced) is read at once.
   */
  readonly #unstable = new Map<string, { passes: number; pausing: boolean; sinceMs: number; ino: number }>();
  /** The source.json this session wrote (its completeFromMs set once the first full pass is in). */
  #meta: SourceMeta | undefined;
  #journal: SpoolJournal | undefined;
  #tree: SpoolTree | undefined;
  #pack: PackWriter | undefined;
  #reader: FileReader | undefined;
  readonly #readers: ReaderPool;
  /**
   * The first full pass's scan, asked for at start() so that it runs while the archive is
   * opened (the reader thread's start and the walk were most of the time before the first read:
   * 45 of 70 ms for 3,154 files). Only the pass that directly follows the first open takes it.
   */
  #firstScan: { askedAtMs: number; result: Promise<ScanResult | undefined> } | undefined;
  #known = new Map<string, BlockRef>();
  /** Entries #known held when last rebuilt from the tree (its live blocks then). */
  #knownLive = 0;
  #watcher: FSWatcher | undefined;
  #dirty = new Map<string, number>();
  #fullDueAtMs = 0;
  #fullRequestedAtMs: number | undefined;
  #stopped = false;
  #wake: (() => void) | undefined;
  #backoffWake: (() => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #loop: Promise<void> | undefined;
  #fullWaiters: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  /**
   * The pass under way: its changes and bytes, and since when they waited (undefined for a
   * full pass that has found no change yet: a tree that takes long to walk is not lag).
   */
  #inPass: { changes: number; bytes: number; sinceMs: number | undefined; requestedAtMs: number } | undefined;
  /**
   * What the next full pass finds changed dates from here: the replica was away since then
   * (options.pendingSinceMs). Nothing counts as waiting unless the pass finds a change: a walk
   * over an unchanged tree (each start, each reconnect) is not lag.
   */
  #candidateSinceMs: number | undefined;
  /**
   * Changes have waited since then for certain: a pass that failed (after finding changes, or
   * before it could look). Cleared by the next full pass that commits, so a source whose
   * passes keep failing ages past the lag budget instead of starting again at each failure.
   */
  #waitingSinceMs: number | undefined;
  #warned = new Set<string>();
  #rootMissing = false;
  #shippedTotal = 0;
  /** The journal records the old and new excludes together until a full pass is committed (#recordExcludes). */
  #excludeSettling = false;
  /** What the last pass could not read (unreadable, or changing while read). */
  #lastPassUnread: string[] = [];
  /** The excludes the journal recorded before the config's (set while they settle). */
  #excludedBefore: readonly string[] = [];
  /**
   * Nobody watched the source from then until the first full pass that commits (see
   * SpoolOp's `u`): every operation recorded meanwhile carries it. Set at the first open.
   */
  #unwatchedSinceMs: number | undefined;
  #openedOnce = false;

  constructor(private readonly options: SpoolSyncerOptions) {
    const blockBytes = options.source.blockBytes;
    this.tuning = { ...DEFAULT_SPOOL_TUNING, ...(blockBytes === undefined ? {} : { blockBytes }), ...options.tuning };
    this.#log = childLogger(options.logger, { component: 'spool', source: options.source.name });
    this.#excluded = excludeMatcher(options.source.exclude);
    this.#appendOnly = excludeMatcher(options.source.appendOnly);
    this.#fullRequestedAtMs = options.clock.nowMs();
    this.#candidateSinceMs = options.pendingSinceMs;
    this.#readers = options.readers ?? sharedReaders;
  }

  get source(): SpoolSource {
    return this.options.source;
  }

  snapshot(): SpoolFilesSnapshot {
    const now = this.options.clock.nowMs();
    let oldest = Math.min(this.#inPass?.sinceMs ?? Infinity, this.#waitingSinceMs ?? Infinity);
    for (const at of this.#dirty.values()) oldest = Math.min(oldest, at);
    let unstable = 0;
    for (const [path, { sinceMs }] of this.#unstable) {
      oldest = Math.min(oldest, sinceMs);
      if (!this.#dirty.has(path)) unstable++;
    }
    return {
      pendingChanges: this.#dirty.size + unstable + (this.#inPass?.changes ?? 0),
      pendingBytes: this.#inPass?.bytes ?? 0,
      oldestPendingMs: oldest === Infinity ? 0 : Math.max(0, now - oldest),
      bytesShippedTotal: this.#shippedTotal,
      missingSources: this.#rootMissing ? [{ name: this.options.source.name, path: this.options.source.path }] : [],
    };
  }

  start(): void {
    if (this.#loop !== undefined) return;
    const { source } = this.options;
    // The thread and the walk start now; #open keeps this reader unless the archive's source
    // names its blocks otherwise (a source made with another blockBytes or hash).
    const reader = this.#readerFor(this.tuning.blockBytes, defaultBlockHash());
    this.#firstScan = { askedAtMs: this.options.clock.nowMs(), result: reader.scan(source.path, [''], source.exclude, []).catch(() => undefined) };
    this.#loop = this.#run();
  }

  /** Stops watching and scanning; resolves once the pass under way (if any) is committed or abandoned. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#kick();
    this.#backoffWake?.();
    await this.#loop;
    // A pass that stopped early leaves no write behind it.
    await this.#pack?.close();
    // After the loop: the watcher a pass under way was making is closed too.
    await this.#closeWatcher();
    // Kept for the next syncer of the source (the next session's), its thread running until idle.
    if (this.#reader !== undefined) this.#readers.release(this.#reader);
    this.#reader = undefined;
    for (const w of this.#fullWaiters.splice(0)) w.reject(new HotspareError('SPOOL_STOPPED', 'the spool syncer stopped', { hint: 'restart the agent' }));
  }

  /**
   * Asks for a full pass now and resolves when one that started after this call has committed.
   * That pass reads again files that changed under every read of theirs, pausing or not.
   */
  syncNow(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#fullWaiters.push({ resolve, reject });
      this.#fullRequestedAtMs ??= this.options.clock.nowMs();
      this.#kick();
    });
  }

  #kick(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #mark(rel: string): void {
    // Already waiting: nothing new to wake the loop for (a busy file raises events by the hundred).
    if (this.#dirty.has(rel)) return;
    // A pausing file's events still mark it: the pass that follows looks at its path (an lstat)
    // and reads it only if another file stands there now (a log rotated); dropped, the new log
    // waited out the old one's pause, up to a minute.
    this.#dirty.set(rel, this.options.clock.nowMs());
    this.#kick();
  }

  async #run(): Promise<void> {
    let delayMs = this.tuning.retryDelayMsMin;
    while (!this.#stopped) {
      try {
        if (this.#journal === undefined) await this.#open();
        await this.#waitForWork();
        if (this.#stopped) break;
        await this.#pass();
        delayMs = this.tuning.retryDelayMsMin;
      } catch (err) {
        // The failed pass's reads still under way (a pass fails at its next file, not after its
        // reads) end here, before the pack writer is closed and another opened: kept going on the
        // reader this syncer keeps, they wrote their blocks through the old writer, into the pack
        // number the new one takes, over blocks the next pass made durable. The thread starts
        // again at the next job.
        if (this.#reader?.busy === true) await this.#reader.close();
        // Stopping fails what is under way (the session's requests): nothing to report or retry.
        if (this.#stopped) break;
        this.#log.error({ code: err instanceof HotspareError ? err.code : 'SPOOL_ARCHIVE', err: err instanceof HotspareError ? undefined : err, retryInMs: delayMs }, `spool sync failed: ${errorMessage(err)}`);
        // A walk from before the backoff would be stale by the next pass.
        this.#firstScan = undefined;
        this.#journal = undefined;
        this.#inPass = undefined;
        this.#fullRequestedAtMs ??= this.options.clock.nowMs();
        this.#waitingSinceMs ??= this.options.clock.nowMs();
        // Only stop() cuts the backoff short; file events wait for the archive to recover.
        await new Promise<void>((resolve) => {
          this.#backoffWake = resolve;
          this.#timer = setTimeout(resolve, delayMs);
        });
        this.#backoffWake = undefined;
        delayMs = Math.min(delayMs * 2, this.tuning.retryDelayMsMax);
      }
    }
    clearTimeout(this.#timer);
  }

  /** Recovers what the archive durably holds for this source and records the source's description. */
  async #open(): Promise<void> {
    const { files, source, clock } = this.options;
    /** What this host names blocks by: BLAKE3 where its module loads. */
    const usable = defaultBlockHash();
    const meta: SourceMeta & { blockHash: BlockHashName } = {
      format: SPOOL_FORMAT_VERSION,
      name: source.name,
      path: source.path,
      exclude: [...source.exclude],
      blockBytes: this.tuning.blockBytes,
      blockHash: usable,
      retentionSeconds: source.retentionSeconds,
      hooks: source.hooks.map((h) => ({ run: h.run, timeoutSeconds: h.timeoutSeconds })),
    };
    const existing = await files.readFile(sourceMetaPath(source.name));
    /** The excludes of the agent that wrote the archive's source.json (before this one's config). */
    let previousExclude: string[] | undefined;
    if (existing !== undefined) {
      const old = JSON.parse(existing.toString('utf8')) as SourceMeta;
      const newer = newerSourceFormat(old.format);
      if (newer !== undefined) {
        // Its journal and packs may hold what this version would misread or number over.
        throw new HotspareError('SPOOL_FORMAT_NEWER', `the archive's spool source ${source.name} ${newer}; nothing is written to it`, {
          hint: 'run the same or a newer hotspare version as the one that wrote the archive',
        });
      }
      if (Array.isArray(old.exclude)) previousExclude = old.exclude;
      if (old.blockBytes !== meta.blockBytes) {
        // Every version of every file is recorded in the archive's block size: it stays.
        if (this.options.source.blockBytes !== undefined && this.options.source.blockBytes !== old.blockBytes) {
          this.#log.info({ blockBytes: old.blockBytes }, `spool source ${source.name}: the archive keeps its ${old.blockBytes}-byte blocks; blockBytes ${this.options.source.blockBytes} applies to a new archive`);
        }
        meta.blockBytes = old.blockBytes;
      }
      // A source keeps the hash its blocks were named by: a changed file is compared block by
      // block with what the archive holds, and ids of another function would all differ (the
      // whole file shipped again). Archives from before recorded none: SHA-256.
      meta.blockHash = old.blockHash === 'blake3' ? 'blake3' : 'sha256';
      // An archive from before format 2 was complete from its start (its first pass long done).
      const completeFromMs = historyCompleteFromMs(old);
      if (completeFromMs !== undefined) meta.completeFromMs = completeFromMs;
    }
    this.tuning.blockBytes = meta.blockBytes;
    if (usable === 'sha256') {
      const { why, fix } = blake3Unavailable();
      if (existing === undefined) {
        this.#log.warn({ code: 'BLOCK_HASH_UNAVAILABLE', err: blake3LoadFailure(), hint: fix }, `${why}: the new source's blocks are named by SHA-256, about 4x slower to hash, and stay so`);
      } else if (meta.blockHash === 'blake3') {
        // Ids say which function made them, so the history may go on with SHA-256's: changed
        // files are shipped whole once, and nothing is lost.
        this.#log.warn({ code: 'BLOCK_HASH_UNAVAILABLE', hint: fix }, `the source names its blocks by BLAKE3, and ${why}: new blocks are named by SHA-256 from now on (changed files are shipped whole once; the source stays with SHA-256)`);
        meta.blockHash = 'sha256';
      }
    }
    // A pass follows: the thread loads (if it is not running yet) while the journal is read.
    this.#readerFor(meta.blockBytes, meta.blockHash).warm();
    this.#meta = meta;
    const { journal, tree, fresh } = await SpoolJournal.open(files, source.name, meta.blockBytes, clock.nowMs(), this.#log, meta.exclude);
    if (fresh && meta.completeFromMs !== undefined) {
      // The journal starts again from nothing (none of its segments could be read): until the
      // next full pass is committed the archive holds part of the tree, as at the first.
      delete meta.completeFromMs;
      this.#log.error('no spool journal segment of the source could be read: its history starts again with the next full pass');
    }
    // The last session's writes (a pass that failed or stopped) end before packs are listed.
    await this.#pack?.close();
    // Above every pack a checkpoint names, also one never written (a session that wrote no
    // block): a pack number used again would lie below a kept checkpoint's `pack`.
    this.#pack = await PackWriter.open(files, source.name, this.tuning.writeBatchBytes, this.tuning.packBytesMax, this.tuning.writeBatches, journal.packFloor);
    await this.#recordExcludes(journal, tree, previousExclude, this.#pack.seq);
    // After the journal records a change of excludes: killed in between, the next start would
    // read the new ones from source.json as if the journal's segments had been written with them.
    const text = encodeSourceMeta(meta);
    if (existing?.toString('utf8') !== text) await files.putFile(sourceMetaPath(source.name), Buffer.from(text));
    if (!this.#openedOnce) {
      this.#openedOnce = true;
      // The time stamps the next pass gives are not when its changes happened: they happened
      // since the source was last watched. A journal begun now (none, or none readable) has no
      // earlier state for them to be placed against.
      if (!fresh) {
        const { awaySinceMs } = this.options;
        this.#unwatchedSinceMs = awaySinceMs === undefined ? journal.lastObservedMs : Math.min(awaySinceMs, journal.unclosedWindowFromMs ?? Infinity);
      }
    }
    this.#tree = tree;
    this.#rebuildKnown();
    this.#journal = journal;
    this.#log.info({ path: source.path, entries: tree.entries.size }, 'spool source opened');
  }

  /** The reader for blocks of this size and hash: the current one if it reads them, else a new one in its place. */
  #readerFor(blockBytes: number, blockHash: BlockHashName): FileReader {
    const current = this.#reader;
    const config = readerConfigOf(this.tuning, blockBytes, blockHash);
    if (current !== undefined && sameReaderConfig(current.config, config)) return current;
    if (current !== undefined) this.#readers.release(current);
    this.#reader = this.#readers.acquire(config, this.tuning.readerIdleMs, this.#log);
    return this.#reader;
  }

  /**
   * Records in the journal which paths the source leaves out, so that a restore to a point
   * leaves alone on the target what was left out then (not what is left out today: a path
   * excluded then and included now would be deleted from the target as absent from the
   * tree). When the config's excludes differ from those the journal records, a new segment
   * starts that records both (a path either leaves out: the tree is on its way from the one to
   * the other), and the next committed full pass starts one that records the new ones alone.
   */
  async #recordExcludes(journal: SpoolJournal, tree: SpoolTree, previousExclude: string[] | undefined, pack: number): Promise<void> {
    const wanted = this.options.source.exclude;
    // Segments from before excludes were recorded had the previous source.json's.
    const recorded = journal.exclude ?? previousExclude;
    this.#excludeSettling = recorded !== undefined && !sameSet(recorded, wanted);
    if (!this.#excludeSettling || recorded === undefined) {
      journal.exclude ??= [...wanted];
      return;
    }
    this.#excludedBefore = recorded;
    const both = [...new Set([...recorded, ...wanted])];
    // Already recording both (a restart, or a reopen, before a full pass settled them): no new checkpoint.
    if (sameSet(recorded, both)) return;
    journal.stamp(this.options.clock.nowMs());
    this.#addShipped(await journal.rotate(tree, { exclude: both, pack }));
    this.#log.info({ from: recorded, to: wanted }, 'spool excludes changed: recorded in a new journal segment; the next full pass settles them');
  }

  /** After a committed full pass: the tree now follows the config's excludes alone (see #recordExcludes). */
  async #settleExcludes(): Promise<void> {
    const journal = this.#journal;
    const tree = this.#tree;
    const pack = this.#pack;
    if (!this.#excludeSettling || journal === undefined || tree === undefined || pack === undefined) return;
    // Not while a path the old excludes left out could not be read: it is not in the tree yet,
    // and a restore with the new excludes alone would delete it from the target. (Unread paths
    // elsewhere, such as a file always being rewritten, do not hold it back.)
    const wasExcluded = excludeMatcher(this.#excludedBefore);
    if (this.#lastPassUnread.some((p) => wasExcluded(p))) return;
    this.#excludeSettling = false;
    // Excludes only added: the segment already records the new ones alone.
    if (sameSet(journal.exclude ?? [], this.options.source.exclude)) return;
    // The pass committed, so every block the tree refers to is durable.
    this.#addShipped(await journal.rotate(tree, { exclude: this.options.source.exclude, pack: pack.seq }));
    // As after every rotation: from now on blocks are reused only from the tree this checkpoint
    // holds (or written since), the rule retention relies on (see SpoolJournal.rotate).
    this.#rebuildKnown();
  }

  #rebuildKnown(): void {
    this.#known = new Map();
    for (const e of this.#tree?.entries.values() ?? []) if (e.kind === 'file') for (const b of e.blocks) this.#known.set(b[0], b);
    this.#knownLive = this.#known.size;
  }

  /**
   * Blocks written since the last rebuild stay in #known after the files holding them are
   * deleted or rewritten: under churn nearly all of them. Rebuilt from the tree once those added
   * since exceed both the live ones and tuning.knownDeadMax, so its memory follows the tree, not
   * the time since the last checkpoint. The tree's blocks all come from the segment's checkpoint
   * or were written since, so reuse stays within what retention keeps (see SpoolJournal.rotate).
   */
  #pruneKnown(): void {
    if (this.#known.size - this.#knownLive > Math.max(this.#knownLive, this.tuning.knownDeadMax)) this.#rebuildKnown();
  }

  /** Entries in the block index (what the archive may reference instead of writing again). */
  get knownBlocks(): number {
    return this.#known.size;
  }

  async #waitForWork(): Promise<void> {
    const { clock } = this.options;
    for (;;) {
      if (this.#stopped) return;
      const now = clock.nowMs();
      if (this.#fullRequestedAtMs !== undefined || now >= this.#fullDueAtMs) return;
      let oldest = Infinity;
      for (const at of this.#dirty.values()) oldest = Math.min(oldest, at);
      if (oldest + this.tuning.debounceMs <= now) return;
      const untilMs = Math.min(this.#fullDueAtMs, oldest + this.tuning.debounceMs) - now;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        clearTimeout(this.#timer);
        this.#timer = setTimeout(resolve, Math.max(1, untilMs));
      });
    }
  }

  #ensureWatcher(): void {
    if (!this.tuning.watch || this.#watcher !== undefined || this.#stopped) return;
    const watcher = watchSource(
      this.options.source.path,
      {
        excluded: (rel) => this.#excluded(rel),
        changed: (rel) => this.#mark(rel),
        waiting: (rel) => this.#dirty.has(rel),
        failed: (err) => {
          this.#log.warn({ err }, 'spool watcher error; a full rescan follows');
          this.#fullRequestedAtMs ??= this.options.clock.nowMs();
          this.#kick();
        },
        // The pass goes on without waiting for the watcher's own first scan of the tree (a tree
        // of many files takes it a while, and a watcher closed before that scan ends never says
        // 'ready'); a change it missed meanwhile is found by one more full pass once it is ready.
        ready: () => {
          if (this.#stopped || this.#watcher !== watcher) return;
          this.#fullRequestedAtMs ??= this.options.clock.nowMs();
          this.#kick();
        },
      },
      this.options.watchTree,
    );
    this.#watcher = watcher;
  }

  async #pass(): Promise<void> {
    const { clock, source } = this.options;
    const journal = this.#journal as SpoolJournal;
    const tree = this.#tree as SpoolTree;
    const pack = this.#pack as PackWriter;
    const startMs = clock.nowMs();
    const full = this.#fullRequestedAtMs !== undefined || startMs >= this.#fullDueAtMs;
    const firstScan = this.#firstScan !== undefined && startMs - this.#firstScan.askedAtMs <= this.tuning.firstScanMaxAgeMs ? this.#firstScan.result : undefined;
    this.#firstScan = undefined;
    // Only waiters that asked before this pass began are served by it.
    const served = full ? [...this.#fullWaiters] : [];
    let roots: string[];
    let shallow: string[] = [];
    // Known changes date the pass (marks, a failed pass's); a requested or periodic full pass
    // dates only once it finds changes, from when it was asked for (or the replica went away).
    let sinceMs: number | undefined = this.#waitingSinceMs;
    const requestedAtMs = full ? Math.min(this.#candidateSinceMs ?? Infinity, this.#fullRequestedAtMs ?? startMs) : startMs;
    if (full) {
      roots = [''];
      for (const at of this.#dirty.values()) sinceMs = Math.min(sinceMs ?? Infinity, at);
      this.#dirty.clear();
      this.#fullRequestedAtMs = undefined;
      this.#fullDueAtMs = startMs + this.tuning.rescanIntervalMs;
    } else {
      const marked = [...this.#dirty.entries()];
      this.#dirty.clear();
      for (const [, at] of marked) sinceMs = Math.min(sinceMs ?? Infinity, at);
      // A root inside another is redundant; a changed path's parent changes too (its mtime),
      // but only the parent's own entry matters, so it is looked at alone, not walked.
      roots = [];
      for (const p of sortByDepth(marked.map(([p]) => p))) if (!roots.some((r) => isUnder(p, r))) roots.push(p);
      const parents = new Set(roots.filter((p) => p !== '').map(parentOf));
      shallow = [...parents].filter((p) => !roots.some((r) => isUnder(p, r)));
    }
    this.#inPass = { changes: roots.length, bytes: 0, sinceMs, requestedAtMs };
    try {
      const rootStat = await stat(source.path).catch((err: NodeJS.ErrnoException) => err);
      // An empty folder in place of the one archived (another inode): a volume not mounted at the
      // source's path leaves its mount point, an empty folder of the file system below. Walked, it
      // would record every archived file deleted, and a promotion to the end would restore an
      // empty folder. Held as missing until the folder holds something (or is the one archived).
      const recordedRoot = tree.get('');
      const replacedByEmpty =
        !(rootStat instanceof Error) && rootStat.isDirectory() && recordedRoot !== undefined && recordedRoot.ino !== rootStat.ino && tree.entries.size > 1 && (await readdir(source.path).catch(() => [''])).length === 0;
      if (rootStat instanceof Error || !rootStat.isDirectory() || replacedByEmpty) {
        if (!this.#rootMissing) {
          const why = rootStat instanceof Error ? (rootStat.code ?? rootStat.message) : replacedByEmpty ? 'an empty folder in place of the archived one: a volume not mounted there?' : 'not a directory';
          this.#log.error({ code: 'SPOOL_SOURCE_MISSING', path: source.path, hint: 'create the directory or fix `spool[].path` in the config; nothing is deleted from the archive meanwhile' }, `spool source ${source.path} is unavailable (${why}); the archive keeps its last state`);
        }
        this.#rootMissing = true;
        // Nothing is shipped from a source that is not there, and nothing waits: the archive
        // keeps its last state (an error says so).
        this.#waitingSinceMs = undefined;
        this.#candidateSinceMs = undefined;
        await this.#closeWatcher();
        // No watcher tells when it is back: look again soon, not at the next rescan (a minute).
        this.#fullDueAtMs = Math.min(this.#fullDueAtMs, startMs + this.tuning.missingCheckIntervalMs);
        this.#finishFull(served);
        return;
      }
      if (this.#rootMissing) this.#log.info({ path: source.path }, 'spool source is available again');
      this.#rootMissing = false;
      this.#ensureWatcher();
      await this.#shipRoots(roots, shallow, full, journal, tree, pack, served.length > 0, full ? firstScan : undefined, rootStat);
      // A pass cut short by stop() committed nothing: its waiters hear SPOOL_STOPPED from stop().
      if (!this.#stopped && full) {
        await this.#recordComplete();
        await this.#settleExcludes();
      }
      if (!this.#stopped && full) {
        this.#candidateSinceMs = undefined;
        this.#waitingSinceMs = undefined;
      }
      if (!this.#stopped) this.#finishFull(served);
      if (!this.#stopped && full) this.#log.debug({ entries: tree.entries.size, ms: clock.nowMs() - startMs }, 'full spool pass done');
    } catch (err) {
      // What this pass found (or was asked to look for) is still waiting.
      const failed = this.#inPass;
      this.#waitingSinceMs = Math.min(this.#waitingSinceMs ?? Infinity, failed?.sinceMs ?? Infinity, failed?.requestedAtMs ?? startMs);
      throw err;
    } finally {
      this.#inPass = undefined;
    }
  }

  /**
   * After the source's first full pass (all of it committed), records from when its history is
   * complete: a restore to an earlier point would hold only part of the tree.
   */
  async #recordComplete(): Promise<void> {
    const meta = this.#meta;
    if (meta === undefined || meta.completeFromMs !== undefined) return;
    // Not before the pass's own operations (their times never go back, and may run ahead of the clock).
    meta.completeFromMs = Math.max(this.options.clock.nowMs(), this.#journal?.lastMs ?? 0);
    await this.options.files.putFile(sourceMetaPath(meta.name), Buffer.from(encodeSourceMeta(meta)));
    this.#log.info({ completeFrom: new Date(meta.completeFromMs).toISOString() }, 'first full pass of the spool source committed: its history is complete from here');
  }

  #finishFull(served: Array<{ resolve: () => void }>): void {
    this.#fullWaiters = this.#fullWaiters.filter((w) => !served.includes(w));
    for (const w of served) w.resolve();
  }

  async #closeWatcher(): Promise<void> {
    const w = this.#watcher;
    this.#watcher = undefined;
    await w?.close();
  }

  /**
   * `asked`: a pass syncNow() waits for, which reads files that changed under every read of
   * theirs before their pause ends. `firstScan`: the walk start() asked for, which a full pass
   * takes instead of walking again (undefined if it failed), if it walked the folder the pass
   * found at the source's path (`root`, the pass's stat of it: the same inode of the same device).
   */
  async #shipRoots(roots: string[], shallow: string[], full: boolean, journal: SpoolJournal, tree: SpoolTree, pack: PackWriter, asked: boolean, firstScan: Promise<ScanResult | undefined> | undefined, root: { dev: number; ino: number }): Promise<void> {
    const { clock, source } = this.options;
    const reader = this.#reader as FileReader;
    const early = await firstScan;
    // A walk of a source missing then (a volume mounted, or a folder moved back, since), or of
    // another folder in its place (an empty mount point), found none of its files: taken, it
    // had every archived file recorded deleted. The device too: a volume's root has the inode
    // number of every other volume's of its kind (2 on ext4, 256 for each btrfs subvolume).
    const walked = early?.found.get('');
    const sameRoot = walked?.kind === 'dir' && walked.ino === root.ino && walked.dev === root.dev;
    const { found, unreadable, badNames } = early !== undefined && sameRoot ? early : await reader.scan(source.path, roots, source.exclude, shallow);
    // A folder the agent cannot list (another user's 0700) or a path past the system's length
    // limit (ENAMETOOLONG, deeper than PATH_MAX from the source's path) kept what the archive
    // had and said nothing: a new one came back from a restore empty, or not at all.
    for (const [path, code] of unreadable) {
      this.#warnOnce(path, 'SPOOL_UNREADABLE', `cannot list or examine ${join(source.path, path)} (${code}); nothing in it is shipped, and the archive keeps what it recorded there`, code === 'ENAMETOOLONG' ? 'the path is longer than the system allows a path to be opened by: shorten it, or exclude it' : 'make it readable by the agent\'s user, or exclude it');
    }
    for (const name of badNames) {
      this.#warnOnce(name, 'SPOOL_NAME_NOT_UTF8', `skipped ${join(source.path, name)}: its name is not valid UTF-8, which the archive's journal cannot record (a folder: everything in it too)`, 'rename it to UTF-8 (convmv), or exclude it; until then a restore does not bring it back');
    }
    const underUnreadable = (p: string): boolean => {
      for (const u of unreadable.keys()) if (isUnder(p, u)) return true;
      return false;
    };
    const recordedNow = (): string[] => (full ? [...tree.entries.keys()] : [...roots.flatMap((r) => tree.pathsUnder(r)), ...shallow.filter((p) => tree.entries.has(p))]);
    const recorded = recordedNow();
    const vanishedByIno = new Map<number, string>();
    for (const p of recorded) {
      const e = tree.get(p);
      if (e !== undefined && !found.has(p) && !underUnreadable(p)) vanishedByIno.set(e.ino, p);
    }
    // Encoded as they happen, while the reader works, rather than all at the pass's end.
    const lines: string[] = [];
    const unwatchedSinceMs = this.#unwatchedSinceMs;
    const emit = (op: SpoolOp): void => {
      tree.apply(op);
      lines.push(encodeLineText(unwatchedSinceMs === undefined || unwatchedSinceMs >= op.t ? op : { ...op, [UNWATCHED_SINCE_FIELD]: unwatchedSinceMs }));
    };
    const paths = sortByDepth([...found.keys()]);
    if (this.#inPass !== undefined) {
      let bytes = 0;
      let changes = 0;
      for (const p of paths) {
        const f = found.get(p) as Found;
        const cur = tree.get(p);
        // A pausing file this pass does not read is counted as pausing, not as the pass's too.
        if (f.kind === 'file' && !asked && this.#pausing(p, f)) continue;
        if (f.kind === 'file' && (cur?.kind !== 'file' || cur.racy === true || !sameFile(cur, f))) {
          bytes += f.size;
          changes++;
        }
      }
      this.#inPass.bytes = bytes;
      this.#inPass.changes = Math.max(changes, 1);
      // Changes found by a full pass waited at least since it was asked for (or since the
      // replica went away, or since a rescan began: what the watcher missed).
      if (changes > 0) this.#inPass.sinceMs = Math.min(this.#inPass.sinceMs ?? Infinity, this.#inPass.requestedAtMs);
    }
    const racy: string[] = [];
    let dataBefore = pack.flushedBytes;
    /** Bytes of files whose operations are emitted but not yet committed. */
    let uncommittedBytes = 0;
    // Part of the pass made durable: the operations emitted so far, after the data they name
    // (every block an operation refers to was handed to the pack before the operation was
    // emitted, so the flush covers it). Reads under way go on meanwhile.
    const commitSoFar = async (): Promise<void> => {
      const batch = lines.splice(0);
      uncommittedBytes = 0;
      await pack.flush();
      const journalBytes = await journal.append(batch);
      this.#addShipped(pack.flushedBytes - dataBefore + journalBytes);
      dataBefore = pack.flushedBytes;
    };
    const reads = new TaskWindow(this.tuning.readConcurrency);
    for (const path of paths) {
      if (this.#stopped) break;
      if (uncommittedBytes >= this.tuning.passCommitBytes || lines.length >= this.tuning.passCommitOps) await commitSoFar();
      const f = found.get(path) as Found;
      if (f.kind === 'other') {
        this.#warnOnce(path, 'SPOOL_SKIPPED', `skipped ${join(source.path, path)}: not a regular file, directory or symlink (FIFO, socket or device)`);
        found.delete(path);
        continue;
      }
      let cur = tree.get(path);
      if (cur === undefined || cur.ino !== f.ino || cur.kind !== f.kind) {
        const from = vanishedByIno.get(f.ino);
        if (from !== undefined && tree.get(from)?.kind === f.kind && !isUnder(path, from) && path !== '') {
          vanishedByIno.delete(f.ino);
          emit({ op: 'mv', t: journal.stamp(clock.nowMs()), from, to: path });
          cur = tree.get(path);
        }
      }
      if (f.kind === 'dir') {
        if (cur?.kind !== 'dir' || cur.mode !== f.mode || cur.mtimeNs !== f.mtimeNs || cur.ino !== f.ino || !sameOwner(cur, f)) {
          emit({ op: 'dir', t: journal.stamp(clock.nowMs()), path, e: { kind: 'dir', mode: f.mode, mtimeNs: f.mtimeNs, ino: f.ino, uid: f.uid, gid: f.gid } });
        }
        continue;
      }
      if (f.kind === 'link') {
        let raw: Buffer;
        try {
          raw = await readlink(join(source.path, path), { encoding: 'buffer' });
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') found.delete(path);
          else unreadable.set(path, (err as NodeJS.ErrnoException).code ?? 'EIO');
          continue;
        }
        // Read as text, a target that is not UTF-8 came back with U+FFFD in place of its bad
        // bytes, and the restored link pointed elsewhere. The journal cannot hold it: the link
        // is left out, as a name that is not UTF-8 is, and named.
        const target = utf8Name(raw);
        if (target === undefined) {
          this.#warnOnce(path, 'SPOOL_NAME_NOT_UTF8', `skipped the link ${join(source.path, path)}: its target (${nameForLog(raw)}) is not valid UTF-8, which the archive's journal cannot record`, 'point it at a UTF-8 name, or exclude it; until then a restore does not bring it back');
          found.delete(path);
          continue;
        }
        if (cur?.kind !== 'link' || cur.target !== target || cur.mtimeNs !== f.mtimeNs || cur.ino !== f.ino || !sameOwner(cur, f)) {
          emit({ op: 'link', t: journal.stamp(clock.nowMs()), path, e: { kind: 'link', target, mtimeNs: f.mtimeNs, ino: f.ino, uid: f.uid, gid: f.gid } });
        }
        continue;
      }
      if (cur?.kind === 'file' && cur.racy !== true && sameFile(cur, f)) continue;
      if (cur?.kind === 'file' && cur.racy !== true && cur.uid === undefined && sameStat(cur, f)) {
        // Recorded before owners were kept, and unchanged since: the owner is added without
        // reading the file again (an upgrade would otherwise read the whole tree once).
        const { blocks: _blocks, racy: _racy, ...e } = cur;
        emit({ op: 'file', t: journal.stamp(clock.nowMs()), path, e: { ...e, uid: f.uid, gid: f.gid }, set: [] });
        continue;
      }
      const before = cur?.kind === 'file' ? cur : undefined;
      if (!asked && this.#pausing(path, f)) {
        // Changed under every attempt of its last read, and not due again yet (its timer marks
        // it then): the archive keeps its previous version, and nothing is recorded deleted.
        unreadable.set(path, 'unstable');
        continue;
      }
      // Several files are queued to the reader at once, so it always has the next one in hand
      // (a tree of small files is bound by per-file latency, not bandwidth). Each file's
      // operation touches only its own path (a leaf; its parents were handled first, by
      // depth), so the order they finish in is free.
      await reads.run(async () => {
        const result = await shipFile(
          join(source.path, path),
          before,
          {
            blockBytes: this.tuning.blockBytes,
            reader,
            directBytes: this.tuning.directWriteBytes,
            piecesMax: this.tuning.blockPiecesMax,
            pack,
            known: this.#known,
            beforeRead: this.options.beforeRead === undefined ? undefined : () => this.options.beforeRead?.(path),
            appendOnly: this.#appendOnly(path),
          },
          f,
        );
        if (result.kind === 'shipped' || result.kind === 'gone') {
          if (result.rereads > 0) this.#log.debug({ code: 'SPOOL_FILE_REREAD', path, rereads: result.rereads }, `${join(source.path, path)} changed, moved or was replaced while being read; read again`);
        }
        if (result.kind === 'shipped' && result.grewTo !== undefined) {
          this.#log.debug({ code: 'SPOOL_FILE_GREW', path, shipped: result.found.size, size: result.grewTo }, `${join(source.path, path)} (append-only) grew while being read: its first ${result.found.size} bytes are archived, the rest with the next pass`);
        }
        if (this.#inPass !== undefined) this.#inPass.bytes = Math.max(0, this.#inPass.bytes - f.size);
        if (result.kind !== 'unstable') this.#unstable.delete(path);
        switch (result.kind) {
          case 'gone':
            this.#log.info({ code: 'SPOOL_FILE_GONE', path }, `${join(source.path, path)} was removed while being read; the archive records it as absent`);
            found.delete(path);
            return;
          case 'not-a-file':
            // Replaced by something else between the scan and the read: look again soon.
            found.delete(path);
            this.#mark(path);
            return;
          case 'unstable': {
            // Read again after a pause that doubles with each such pass: every watcher event of
            // a busy file would otherwise read it `readAttempts` times over, without end.
            const was = this.#unstable.get(path);
            // Another file at the path (rotated in) starts its own count; the path's change waits since the first.
            const passes = (was?.ino === f.ino ? was.passes : 0) + 1;
            const retryMs = backoffDelayMs(passes, { delayMsMin: this.tuning.unstableRetryMsMin, delayMsMax: this.tuning.unstableRetryMsMax, jitterRatio: 0 }, Math.random);
            const pause = { passes, pausing: true, sinceMs: was?.sinceMs ?? this.#inPass?.sinceMs ?? clock.nowMs(), ino: f.ino };
            this.#unstable.set(path, pause);
            // The first time, and then about once per longest pause, not at every pass.
            if (passes === 1 || retryMs >= this.tuning.unstableRetryMsMax) {
              this.#log.warn(
                {
                  code: 'SPOOL_FILE_UNSTABLE',
                  path,
                  attempts: this.tuning.readAttempts,
                  passes,
                  retryMs,
                  hint: this.#appendOnly(path) ? 'named in `appendOnly`, yet its bytes changed in place (or it shrank, or was replaced) under every read: check that its writer only appends, or exclude it' : 'a file only ever appended to (a log, feed data) ships while busy once the source names it in `appendOnly`',
                },
                `file kept changing while being read; the archive keeps its previous version and it is read again in ${Math.round(retryMs / 1000)} s`,
              );
            }
            unreadable.set(path, 'unstable');
            setTimeout(() => {
              pause.pausing = false;
              if (!this.#stopped) this.#mark(path);
            }, retryMs).unref();
            return;
          }
          case 'unreadable':
            this.#warnOnce(path, 'SPOOL_UNREADABLE', `cannot read ${join(source.path, path)} (${result.code}); the archive keeps its previous version`);
            unreadable.set(path, result.code);
            return;
          case 'shipped': {
            const g = result.found;
            // The newer of mtime and ctime: a file whose mtime was set back (rsync, cp -p, tar)
            // and then rewritten in place keeps an old mtime, but its ctime is the write's.
            const changedNs = BigInt(g.mtimeNs) > BigInt(g.ctimeNs) ? BigInt(g.mtimeNs) : BigInt(g.ctimeNs);
            // A file written to while read (taken on a second read) is racy whatever its times:
            // they were recent at the stat the second read began with, however long that read took.
            const isRacy = result.changedWhileRead === true || Number(BigInt(Math.floor(clock.nowMs())) * 1_000_000n - changedNs) / 1e6 < this.tuning.racyWindowMs;
            if (isRacy) racy.push(path);
            const e = { kind: 'file' as const, mode: g.mode, mtimeNs: g.mtimeNs, ctimeNs: g.ctimeNs, size: g.size, ino: g.ino, uid: g.uid, gid: g.gid, ...(isRacy ? { racy: true } : {}) };
            const unchanged = before !== undefined && result.set.length === 0 && sameFile(before, g) && before.mode === g.mode;
            if (unchanged) {
              if (isRacy) before.racy = true;
              else delete before.racy;
            } else {
              emit({ op: 'file', t: journal.stamp(clock.nowMs()), path, e, set: result.set });
              uncommittedBytes += g.size;
            }
          }
        }
      });
    }
    await reads.drain();
    if (this.#stopped) return;
    // A file that changed under every read and is gone since, or is no file any more (a link or
    // a folder in its place, recorded as such), no longer waits where this pass looked.
    for (const p of this.#unstable.keys()) if (found.get(p)?.kind !== 'file' && (full || roots.some((r) => isUnder(p, r)))) this.#unstable.delete(p);
    // What the archive has under the scanned roots but the disk no longer does is deleted.
    const gone = sortByDepth(recordedNow());
    for (const p of gone) {
      if (!tree.entries.has(p) || found.has(p) || underUnreadable(p)) continue;
      emit({ op: 'rm', t: journal.stamp(clock.nowMs()), path: p });
    }
    await commitSoFar();
    if (full && (this.#unwatchedSinceMs !== undefined || clock.nowMs() - journal.lastMs >= this.tuning.seenRecordMs)) {
      // The whole tree was looked at and is recorded: what follows is watched again (the
      // outage's window, if any, ends here), and a later start knows when it was last looked at.
      this.#addShipped(await journal.append([encodeLineText({ op: 'seen', t: journal.stamp(clock.nowMs()) })]));
      this.#unwatchedSinceMs = undefined;
    }
    this.#lastPassUnread = [...unreadable.keys()];
    if (journal.rotationDue(clock.nowMs(), this.tuning.segmentBytesMax, source.retentionSeconds * 1000)) {
      // The new checkpoint refers to copies of the live blocks of mostly-dead packs, so those
      // packs leave with the segments older than it; the copies are durable before it is.
      const copiedBefore = pack.flushedBytes;
      await relocateSparsePacks(tree, this.options.files, source.name, pack, this.#known, {
        liveRatioMin: this.tuning.packLiveRatioMin,
        bytesMax: this.tuning.compactBytesMax,
        readBytes: DEFAULT_SPOOL_COMPACT_READ_BYTES,
      }, this.#log);
      await pack.flush();
      this.#addShipped(pack.flushedBytes - copiedBefore);
      this.#addShipped(await journal.rotate(tree, { pack: pack.seq }));
      await journal.prune(clock.nowMs(), source.retentionSeconds * 1000, pack.seq, this.#log);
      this.#rebuildKnown();
    } else this.#pruneKnown();
    if (racy.length > 0) {
      // Files read within the racy window are looked at again once it has passed.
      setTimeout(() => {
        if (!this.#stopped) for (const p of racy) this.#mark(p);
      }, this.tuning.racyWindowMs).unref();
    }
  }

  /** The file at `path` (as found) is the one that paused, and its pause has not ended. */
  #pausing(path: string, f: Found): boolean {
    const unstable = this.#unstable.get(path);
    return unstable?.pausing === true && unstable.ino === f.ino;
  }

  #addShipped(bytes: number): void {
    this.#shippedTotal += bytes;
    this.options.onShipped?.(bytes);
  }

  #warnOnce(path: string, code: string, message: string, hint?: string): void {
    if (this.#warned.has(`${code}:${path}`)) return;
    this.#warned.add(`${code}:${path}`);
    this.#log.warn({ code, path, ...(hint === undefined ? {} : { hint }) }, message);
  }
}

/** The file as recorded: content, metadata and owner (nothing to read or record again). */
function sameFile(cur: { size: number; mtimeNs: string; ctimeNs: string; ino: number; mode: number; uid?: number; gid?: number }, f: Found): boolean {
  return sameStat(cur, f) && sameOwner(cur, f);
}

/** Size, times, inode and mode: the file's content and metadata apart from its owner. */
function sameStat(cur: { size: number; mtimeNs: string; ctimeNs: string; ino: number; mode: number }, f: Found): boolean {
  return cur.size === f.size && cur.mtimeNs === f.mtimeNs && cur.ctimeNs === f.ctimeNs && cur.ino === f.ino && cur.mode === f.mode;
}

/** An entry recorded before owners were kept differs once, and is recorded again with its owner. */
function sameOwner(cur: { uid?: number; gid?: number }, f: Found): boolean {
  return cur.uid === f.uid && cur.gid === f.gid;
}

/** Whether two lists hold the same strings (order and repeats aside). */
function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}
