import { lchown, lstat, lutimes, mkdir, open, readdir, rename, rm, stat, symlink, unlink, utimes } from 'node:fs/promises';
import { constants } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { HotspareError } from '../core/errors.js';
import { blockHashOf, blockHasher, blockMatches, type BlockHashName } from '../spool/block-hash.js';
import type { Logger } from '../platform/logger.js';
import { blockLength, blockPieces, historyCompleteFromMs, newerSourceFormat, packPath, placeWords, sourceMetaPath, type BlockPiece, type BlockRef, type SourceMeta, type SpoolEntry } from '../spool/spool-format.js';
import { addRead, listSegments, readSegment, readSegmentHead, spanLoss, type JournalScan, type SegmentHead, type SegmentRead } from '../spool/journal-scan.js';
import { parentOf, pathDepth, sortByDepth, SpoolTree, treeFromCheckpoint } from '../spool/spool-tree.js';
import { placeUnwatchedChanges, type UnwatchedWindow } from '../spool/unwatched-changes.js';
import { DEFAULT_SPOOL_UNPLACED_NAMED } from '../config/defaults.js';
import { excludeMatcher, reportableBadName, utf8Name } from '../spool/tree-scanner.js';
import { PackBlockReader } from './pack-block-reader.js';
import { childLogger } from '../platform/logger.js';

export interface SpoolRestoreOptions {
  archiveDir: string;
  /** Restore as of this instant (ms since the epoch); the newest durable state when absent. */
  untilMs?: number | undefined;
  /**
   * What promote's plan found for each source, before the replay: a source with a pin is
   * restored to exactly that record, one the plan left out is left as it is for the plan's
   * reason, and one the plan did not see (new since) is left as it is too. A receiver still
   * running may record changes meanwhile whose transactions the replay does not include.
   */
  plan?: ReadonlyMap<string, PlannedSource> | undefined;
  /** Restore each source under DIR/<source name>/ instead of its original path. */
  filesRoot?: string | undefined;
  /** Only these sources (all when absent). */
  sources?: readonly string[] | undefined;
  /**
   * Where a source's journal is damaged before the point, restore it to its last intact state
   * and say so (`lostAfter`), as promote does with a damaged binlog when no point was asked for;
   * otherwise such a source is not restored (SPOOL_JOURNAL_DAMAGED). Always so without untilMs.
   */
  stopBeforeDamage?: boolean;
  logger: Logger;
}

/** A restore point fixed as a record of the journal: the first `ops` operations of segment `seq`. */
export interface SpoolPin {
  seq: number;
  ops: number;
}

/** A source as promote's plan found it: its pin, or why it is left as it is. */
export type PlannedSource = { pin: SpoolPin } | { skipped: string; skipCode: string };

export interface SpoolRestoreResult {
  name: string;
  /** Where the source was restored. */
  path: string;
  /** Time of the last change the restored tree includes (ms since the epoch). */
  pointMs: number;
  files: number;
  dirs: number;
  links: number;
  bytes: number;
  /**
   * Paths the target held that the restored tree does not (each removed, a folder with all in
   * it): to its original path, that is what the application wrote on the standby.
   */
  removed: number;
  /** The journal is damaged after pointMs: changes after it, up to the point asked for, are lost. */
  lostAfter?: string;
  /**
   * The point lies in a window in which nobody watched the source (the agent stopped, or the
   * standby away): what changed in it was placed by mtime, deletes and renames not at all
   * (SPOOL_POINT_UNCERTAIN, and `uncertainWhy` in words).
   */
  uncertain?: UnwatchedWindow;
  uncertainWhy?: string;
  /** Why the source was left as it is on the target, and the error's code (SOURCE_SKIP_CODES); undefined when restored. */
  skipped?: string;
  skipCode?: string;
  /** Skipped after its restore had begun: the target's folder may hold part of it. */
  partly?: boolean;
}

const UNWATCHED_HINT = 'check the files named; a point before the window\'s start or after its end restores a state the archive knows exactly';

/** SPOOL_POINT_UNCERTAIN in words: the window, what was placed how, and what could not be. */
export function unwatchedWindowWords(w: UnwatchedWindow, untilMs: number): string {
  const iso = (ms: number): string => new Date(ms).toISOString();
  const placed = `${w.placedBefore + w.placedAfter} created or changed files, folders and links placed by their mtime (${w.placedBefore} at or before it, ${w.placedAfter} after)`;
  const more = w.unplaced > w.unplacedNamed.length ? `, and ${w.unplaced - w.unplacedNamed.length} more` : '';
  const unplaced = w.unplaced === 0 ? 'no delete or rename to place' : `${w.unplaced} deletes and renames could not be placed (they have no time) and are left undone, as before ${iso(w.fromMs)}: ${w.unplacedNamed.join(', ')}${more}`;
  return `files changed while the standby (or agent) was away from ${iso(w.fromMs)} to ${iso(w.toMs)}; their state at ${iso(untilMs)} is not known: ${placed}; ${unplaced}`;
}

/** The spool sources recorded in an archive that can be read, with their descriptions. */
export async function listSpoolSources(archiveDir: string): Promise<SourceMeta[]> {
  return (await readSpoolSources(archiveDir)).sources;
}

/** The spool sources of an archive, and those whose source.json cannot be used (SPOOL_META), each with why. */
export async function readSpoolSources(archiveDir: string): Promise<{ sources: SourceMeta[]; unusable: Array<{ name: string; error: HotspareError }> }> {
  const files = new LocalArchiveFiles(archiveDir);
  const sources: SourceMeta[] = [];
  const unusable: Array<{ name: string; error: HotspareError }> = [];
  for (const name of await files.list('files')) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) continue;
    const text = await files.readFile(sourceMetaPath(name));
    if (text === undefined) continue;
    try {
      sources.push(parseSourceMeta(text, name));
    } catch (err) {
      if (!(err instanceof HotspareError)) throw err;
      unusable.push({ name, error: err });
    }
  }
  return { sources, unusable };
}

/**
 * A source that cannot be restored, for a reason of its own (no complete tree at the point, a
 * damaged or hostile journal or source.json, a target folder that is a link, damaged or missing
 * pack data, a full or forbidden target volume): it is reported, and the database and the other
 * sources are promoted all the same (the standby is needed now; the files can be dealt with).
 * Only SPOOL_BEFORE_HISTORY and SPOOL_NO_HISTORY (EXPECTED_SKIP_CODES) are expected; the others
 * fail the command once the promotion is done.
 */
export const SOURCE_SKIP_CODES: ReadonlySet<string> = new Set(['SPOOL_BEFORE_HISTORY', 'SPOOL_NO_HISTORY', 'SPOOL_JOURNAL', 'SPOOL_JOURNAL_DAMAGED', 'SPOOL_META', 'SPOOL_RESTORE_PATH', 'SPOOL_DATA_DAMAGED', 'SPOOL_DATA_MISSING', 'SPOOL_RESTORE_IO', 'BLOCK_HASH_UNAVAILABLE']);
/** No complete tree at the point (a source added late, a first pass that never ended, an agent stopped before its first journal): expected. */
export const EXPECTED_SKIP_CODES: ReadonlySet<string> = new Set(['SPOOL_BEFORE_HISTORY', 'SPOOL_NO_HISTORY']);
export const isSourceSkip = (err: unknown): err is HotspareError => err instanceof HotspareError && SOURCE_SKIP_CODES.has(err.code);

/**
 * source.json, checked: the name it gives is the folder's (it becomes a folder under
 * --files-root, so a crafted "../x" must not climb out), and the fields restore uses are there.
 */
function parseSourceMeta(text: Buffer, folder: string): SourceMeta {
  let meta: Partial<SourceMeta>;
  try {
    meta = JSON.parse(text.toString('utf8')) as Partial<SourceMeta>;
  } catch (err) {
    throw new HotspareError('SPOOL_META', `files/${folder}/source.json is not valid JSON`, { cause: err, hint: 'the archive is damaged; restart the agent to rewrite it, or remove the source from the archive' });
  }
  const newer = newerSourceFormat(meta.format);
  const problem =
    newer ??
    (meta.name !== folder ? `names the source ${JSON.stringify(meta.name)}, not ${JSON.stringify(folder)}`
    : typeof meta.path !== 'string' || !meta.path.startsWith('/') ? 'has no absolute path'
    : !Array.isArray(meta.exclude) || !Array.isArray(meta.hooks) ? 'lacks its exclude or hooks list'
    : !Number.isInteger(meta.blockBytes) || (meta.blockBytes ?? 0) <= 0 ? 'has no block size'
    : undefined);
  if (problem !== undefined) {
    const hint = newer !== undefined ? 'upgrade hotspare on this host to the version the agent runs' : 'the archive is damaged or was written by another tool; restart the agent to rewrite it';
    throw new HotspareError('SPOOL_META', `files/${folder}/source.json ${problem}`, { hint });
  }
  return meta as SourceMeta;
}

/**
 * A recorded path is relative, with no empty, `.` or `..` component and no NUL, and every
 * entry's parent is a directory of the tree: nothing in a journal (damaged, or written by a
 * hostile primary) can place a file outside the restore root, or under a link.
 */
function checkTreePaths(tree: SpoolTree, source: string): void {
  for (const [path, e] of tree.entries) {
    if (path === '') {
      if (e.kind === 'dir') continue;
    } else if (!path.startsWith('/') && !path.includes('\0') && path.split('/').every((c) => c !== '' && c !== '.' && c !== '..')) {
      const parent = parentOf(path);
      if (parent === '' || tree.get(parent)?.kind === 'dir') continue;
      throw new HotspareError('SPOOL_JOURNAL', `spool source ${source} records ${JSON.stringify(path)} under ${JSON.stringify(parent)}, which is not a directory of the tree`, {
        hint: 'the journal is inconsistent; nothing was restored from it: run `hotspare verify`, or restore an earlier point',
      });
    }
    throw new HotspareError('SPOOL_JOURNAL', `spool source ${source} records the path ${JSON.stringify(path)}, which is not a plain relative path`, {
      hint: 'the journal is damaged or hostile; nothing was restored from it: run `hotspare verify`',
    });
  }
}

/**
 * A source's tree as of `untilMs`: the newest checkpoint at or before it, plus the operations
 * recorded up to it. Throws SPOOL_HISTORY_TRUNCATED when the retention already dropped that
 * moment, and SPOOL_JOURNAL_DAMAGED when records the point depends on are damaged or missing,
 * unless `stopBeforeDamage` (always without untilMs): then the tree is the last intact state
 * before the damage, and `lostAfter` says what was lost after `pointMs`. `pin` says which
 * record that was; given back (a point fixed earlier), the tree is rebuilt to that record.
 */
export async function spoolTreeAt(
  archiveDir: string,
  meta: SourceMeta,
  untilMs: number | undefined,
  logger: Logger,
  options: { stopBeforeDamage?: boolean; pin?: SpoolPin | undefined } = {},
): Promise<{ tree: SpoolTree; pointMs: number; pin: SpoolPin; exclude: readonly string[]; lostAfter?: string; uncertain?: UnwatchedWindow }> {
  const files = new LocalArchiveFiles(archiveDir);
  // A journal may hold a retention's worth of operations (gigabytes on a busy spool): only the
  // segments' first lines are read to choose one, then that segment and the one after it.
  const scan: JournalScan = { seqs: await listSegments(files, meta.name), segments: [], unreadable: [], vanished: [] };
  const read = async (seq: number): Promise<SegmentRead | undefined> => {
    const known = scan.segments.find((s) => s.seq === seq);
    if (known !== undefined || scan.unreadable.includes(seq) || scan.vanished.includes(seq)) return known;
    const got = await readSegment(files, meta.name, seq, logger);
    addRead(scan, seq, got);
    return typeof got === 'string' ? undefined : got;
  };
  const until = untilMs ?? Infinity;
  let segment = options.pin === undefined ? undefined : await pinnedSegment(options.pin, meta.name, scan, read);
  const pinned = segment !== undefined;
  let heads: SegmentHead[] = [];
  if (segment === undefined) {
    for (const seq of scan.seqs) {
      const head = await readSegmentHead(files, meta.name, seq);
      if (head === 'vanished') scan.vanished.push(seq);
      else if (head !== 'unreadable') heads.push(head);
    }
    while (segment === undefined) {
      const chosen = heads.filter((h) => h.checkpointMs <= until).at(-1);
      checkHistoryAt(scan, heads, chosen, until, meta);
      segment = await read((chosen as SegmentHead).seq);
      // Damaged past its first line: as if that did not verify either.
      heads = heads.filter((h) => h !== chosen);
    }
  }
  const tree = treeFromCheckpoint(segment, meta.blockBytes);
  let pointMs = segment.checkpointMs;
  let applied = 0;
  for (const op of segment.ops) {
    if (pinned ? applied === options.pin?.ops : op.t > until) break;
    tree.apply(op);
    // A `seen` record changes nothing: the point's time stays that of the last change.
    if (op.op !== 'seen') pointMs = op.t;
    applied++;
  }
  // Every record up to the point was read when one after it was, or when nothing of the
  // segment's span is lost; otherwise what changed between pointMs and the point is unknown.
  let loss: string | undefined;
  if (applied === segment.ops.length) {
    if (scan.seqs.includes(segment.seq + 1)) await read(segment.seq + 1);
    loss = spanLoss(scan, segment);
  }
  if (loss !== undefined && untilMs !== undefined && options.stopBeforeDamage !== true) {
    const from = segment.seq;
    const next = heads.find((h) => h.seq > from);
    const later = next === undefined ? '' : `, or at or after ${new Date(next.checkpointMs).toISOString()}`;
    throw new HotspareError('SPOOL_JOURNAL_DAMAGED', `spool source ${meta.name} cannot be restored as of ${new Date(untilMs).toISOString()}: ${loss}, so its changes after ${new Date(pointMs).toISOString()} are unknown`, {
      hint: `run \`hotspare verify\` on the archive; a point before ${new Date(pointMs).toISOString()}${later} can be restored`,
    });
  }
  // A point inside a window nobody watched (the agent stopped, the standby away): the records
  // after it may hold changes made before it, stamped when the first pass after the outage found
  // them. They are the next ones, in this segment or (a segment begun as the agent started, with
  // other excludes) the next; the records up to the pin stay what the plan counted.
  let uncertain: UnwatchedWindow | undefined;
  if (untilMs !== undefined && loss === undefined) {
    const next = applied === segment.ops.length ? scan.segments.find((s) => s.seq === segment.seq + 1) : undefined;
    const ahead = [...segment.ops.slice(applied), ...(next?.ops ?? [])];
    const placed = placeUnwatchedChanges(tree, ahead, untilMs, DEFAULT_SPOOL_UNPLACED_NAMED);
    if (placed !== undefined) {
      uncertain = placed.window;
      if (placed.newestPlacedMs !== undefined) pointMs = Math.max(pointMs, placed.newestPlacedMs);
    }
  }
  checkTreePaths(tree, meta.name);
  const pin = { seq: segment.seq, ops: applied };
  // What the source left out then, not today: recorded with the segment (older archives: source.json's).
  const exclude = segment.exclude ?? meta.exclude;
  const result = { tree, pointMs, pin, exclude, ...(uncertain === undefined ? {} : { uncertain }) };
  return loss === undefined ? result : { ...result, lostAfter: `${loss}: restored as of its last intact record; its later changes are lost` };
}

/** The segment a plan pinned, as read now; throws when it no longer holds the record pinned. */
async function pinnedSegment(pin: SpoolPin, source: string, scan: JournalScan, read: (seq: number) => Promise<SegmentRead | undefined>): Promise<SegmentRead> {
  const hint = { hint: `the source is left as it is on the target: run \`hotspare verify\` on the archive; then restore ${source} with \`hotspare promote --files-only\` (promote's SPOOL_NOT_RESTORED names the command)` };
  if (!scan.seqs.includes(pin.seq)) throw new HotspareError('SPOOL_JOURNAL', `journal segment ${pin.seq} of spool source ${source}, which the promotion's plan chose, was removed since (retention)`, hint);
  const segment = await read(pin.seq);
  if (segment === undefined || segment.ops.length < pin.ops) {
    throw new HotspareError('SPOOL_JOURNAL_DAMAGED', `journal segment ${pin.seq} of spool source ${source} no longer holds the ${pin.ops} records the promotion's plan counted: it was damaged since`, hint);
  }
  return segment;
}

/**
 * Throws unless `chosen` (the newest segment whose checkpoint is at or before `until`, of those
 * whose first line verifies: `heads`) starts a complete tree that reaches `until`.
 */
function checkHistoryAt(scan: JournalScan, heads: readonly SegmentHead[], chosen: SegmentHead | undefined, until: number, meta: SourceMeta): void {
  const first = heads[0];
  if (first === undefined) {
    const damaged = scan.seqs.filter((seq) => !scan.vanished.includes(seq));
    if (damaged.length > 0) {
      throw new HotspareError('SPOOL_JOURNAL_DAMAGED', `spool source ${meta.name} has no usable journal segment: ${damaged.length} are damaged`, { hint: 'run `hotspare verify` on the archive; restore these files from another copy' });
    }
    throw new HotspareError('SPOOL_NO_HISTORY', `spool source ${meta.name} has no journal in the archive`, { hint: 'check that the agent ships this source (`hotspare status`)' });
  }
  if (chosen === undefined && scan.seqs.some((seq) => seq < first.seq && !scan.vanished.includes(seq))) {
    throw new HotspareError('SPOOL_JOURNAL_DAMAGED', `spool source ${meta.name} cannot be restored as of ${new Date(until).toISOString()}: its journal segments before ${first.seq} are damaged`, {
      hint: `run \`hotspare verify\` on the archive; a point at or after ${new Date(first.checkpointMs).toISOString()} can be restored`,
    });
  }
  if (chosen === undefined && first.seq !== 1) {
    throw new HotspareError('SPOOL_HISTORY_TRUNCATED', `spool source ${meta.name} keeps history only from ${new Date(first.checkpointMs).toISOString()}, after the requested point`, {
      hint: 'choose a later point, or raise spool[].retentionSeconds for the future',
    });
  }
  // Before the source's first recorded state, or within its first pass: the archive holds none
  // or part of the tree, and restoring that would delete from the target what it lacks.
  const completeFromMs = historyCompleteFromMs(meta);
  if (chosen === undefined || completeFromMs === undefined || until < completeFromMs) {
    const since = completeFromMs === undefined ? 'no full pass of it has completed yet' : `its history is complete from ${new Date(completeFromMs).toISOString()}`;
    throw new HotspareError('SPOOL_BEFORE_HISTORY', `spool source ${meta.name} has no complete tree at the restore point: ${since}`, {
      hint: 'the source is left as it is on the target; choose a later point to restore it too',
    });
  }
}

/**
 * Restores every spool source in the archive as of `untilMs` (or its newest durable state):
 * under filesRoot/<name>/ when given, else at the source's original path. The target ends up
 * equal to the recorded tree (paths the source excludes are left alone there); each file is
 * written under a temporary name, fsynced and renamed into place, so a crash mid-restore
 * never leaves a half-written file under a real name.
 */
export async function restoreSpool(options: SpoolRestoreOptions): Promise<SpoolRestoreResult[]> {
  const wanted = (name: string): boolean => options.sources === undefined || options.sources.includes(name);
  const { sources, unusable } = await readSpoolSources(options.archiveDir);
  const results: SpoolRestoreResult[] = [];
  const skip = (name: string, dest: string, err: HotspareError, log: Logger, partly = false): void => {
    const fields = { code: err.code, path: dest, hint: err.hint };
    const what = partly ? `${err.message}; not restored (${dest} may be partly restored)` : `${err.message}; not restored`;
    if (EXPECTED_SKIP_CODES.has(err.code)) log.warn(fields, what);
    else log.error(fields, what);
    results.push({ name, path: dest, pointMs: 0, files: 0, dirs: 0, links: 0, bytes: 0, removed: 0, skipped: what, skipCode: err.code, ...(partly ? { partly: true } : {}) });
  };
  for (const { name, error } of unusable.filter((u) => wanted(u.name))) {
    skip(name, options.filesRoot === undefined ? '(unknown: its source.json is unusable)' : join(options.filesRoot, name), error, childLogger(options.logger, { component: 'spool-restore', source: name }));
  }
  // Parents before nested sources, so a nested source is written after its parent.
  for (const meta of sources.filter((m) => wanted(m.name)).sort((a, b) => a.path.length - b.path.length)) {
    const log = childLogger(options.logger, { component: 'spool-restore', source: meta.name });
    const dest = options.filesRoot === undefined ? meta.path : join(options.filesRoot, meta.name);
    let writing = false;
    try {
      const planned = options.plan?.get(meta.name);
      if (options.plan !== undefined && planned === undefined) {
        throw new HotspareError('SPOOL_BEFORE_HISTORY', `spool source ${meta.name} appeared in the archive after the promotion was planned`, { hint: 'the source is left as it is on the target' });
      }
      if (planned !== undefined && 'skipped' in planned) throw new HotspareError(planned.skipCode, planned.skipped, { hint: 'the source is left as it is on the target, as the plan said' });
      const { tree, pointMs, exclude, lostAfter, uncertain } = await spoolTreeAt(options.archiveDir, meta, options.untilMs, log, { stopBeforeDamage: options.stopBeforeDamage === true, pin: planned?.pin });
      // A pack missing or cut short is found before the target changes; a block whose bytes
      // are damaged only while it is read, at the cost of reading the data once.
      checkBlockIds(tree, meta.name);
      await checkPackExtents(tree, options.archiveDir, meta);
      writing = true;
      const counts = await materialize(tree, exclude, dest, options.filesRoot !== undefined, options.archiveDir, meta, log).catch((err: unknown) => {
        throw restoreIoError(err, meta.name, dest, options.archiveDir);
      });
      const uncertainWhy = uncertain === undefined || options.untilMs === undefined ? undefined : unwatchedWindowWords(uncertain, options.untilMs);
      const result = { name: meta.name, path: dest, pointMs, ...counts, ...(lostAfter === undefined ? {} : { lostAfter }), ...(uncertainWhy === undefined ? {} : { uncertain, uncertainWhy }) };
      if (uncertainWhy !== undefined) log.warn({ code: 'SPOOL_POINT_UNCERTAIN', hint: UNWATCHED_HINT, window: uncertain }, `spool source ${meta.name}: ${uncertainWhy}`);
      if (lostAfter === undefined) log.info({ ...result, point: new Date(pointMs).toISOString() }, 'spool source restored');
      else log.error({ ...result, code: 'SPOOL_JOURNAL_DAMAGED', point: new Date(pointMs).toISOString() }, 'spool source restored only to the last intact point of its journal');
      results.push(result);
    } catch (err) {
      if (!isSourceSkip(err)) throw err;
      skip(meta.name, dest, err, log, writing);
    }
  }
  return results;
}

/**
 * Throws SPOOL_JOURNAL when a block id of the tree has no known form, and BLOCK_HASH_UNAVAILABLE
 * when this host cannot compute the function an id names (BLAKE3 without its module): every
 * block is checked against its id while restored, so the plan finds this before anything changes.
 */
export function checkBlockIds(tree: SpoolTree, source: string): void {
  const functions = new Set<BlockHashName>();
  for (const [rel, e] of tree.entries) {
    if (e.kind !== 'file') continue;
    for (const [id] of e.blocks) {
      const name = blockHashOf(id);
      if (name === undefined) throw new HotspareError('SPOOL_JOURNAL', `the journal of spool source ${source} gives ${rel} a block id of no known form (${String(JSON.stringify(id)).slice(0, 40)})`, { hint: 'the archive is damaged or was written by another tool: run `hotspare verify`' });
      functions.add(name);
    }
  }
  for (const name of functions) blockHasher(name);
}

/** Throws SPOOL_DATA_MISSING when a pack the tree needs is missing or ends before the data it needs, SPOOL_JOURNAL when a block's place makes no sense. */
async function checkPackExtents(tree: SpoolTree, archiveDir: string, meta: SourceMeta): Promise<void> {
  const needed = new Map<number, { end: number; path: string }>();
  for (const [rel, e] of tree.entries) {
    if (e.kind !== 'file') continue;
    e.blocks.forEach((ref, i) => {
      const pieces = blockPieces(ref, blockLength(e.size, i, meta.blockBytes));
      if (pieces === undefined) {
        throw new HotspareError('SPOOL_JOURNAL', `the journal of spool source ${meta.name} gives block ${i} of ${rel} a place of no known form (${String(JSON.stringify(ref.slice(1))).slice(0, 80)}); nothing of the source was changed`, {
          hint: 'the archive is damaged or was written by another tool: run `hotspare verify`',
        });
      }
      for (const [pack, offset, length] of pieces) {
        const end = offset + length;
        if ((needed.get(pack)?.end ?? -1) < end) needed.set(pack, { end, path: rel });
      }
    });
  }
  for (const [pack, { end, path }] of needed) {
    const found = await stat(join(archiveDir, packPath(meta.name, pack))).then(
      (st) => st.size,
      (err: NodeJS.ErrnoException) => err,
    );
    if (typeof found === 'number' && found >= end) continue;
    const what = typeof found === 'number' ? `ends at ${found} bytes, before the data of ${path} (to ${end})` : found.code === 'ENOENT' ? 'is missing' : `cannot be read (${found.code ?? found.message})`;
    throw new HotspareError('SPOOL_DATA_MISSING', `pack ${pack} of spool source ${meta.name} ${what}; nothing of the source was changed`, {
      hint: 'the archive is damaged: run `hotspare verify`; promote to an earlier point, or let the agent re-ship the source',
    });
  }
}

/**
 * A stored mtime (nanoseconds) as the seconds utimes takes, to the microsecond. Near today's
 * times a double holds about 0.24 µs and libuv truncates it to nanoseconds, so `µs / 1e6` came
 * back a microsecond short about half the time (a millisecond short when the time lay on one:
 * 992 of 2000 such times, measured); half a microsecond more lands inside the intended one.
 */
export const utimesSeconds = (ns: string): number => (Number(BigInt(ns) / 1000n) + 0.5) / 1e6;

/** Makes dest equal to `tree`, leaving alone what `exclude` (the source's at the point) leaves out. */
async function materialize(tree: SpoolTree, exclude: readonly string[], dest: string, inRoot: boolean, archiveDir: string, meta: SourceMeta, log: Logger): Promise<Omit<SpoolRestoreResult, 'name' | 'path' | 'pointMs'>> {
  const matches = excludeMatcher(exclude);
  // Left alone on the target: what the source left out and the tree does not hold (while
  // excludes change, the tree may hold paths either list leaves out).
  const excluded = (rel: string): boolean => matches(rel) && tree.get(rel) === undefined;
  // Owners as recorded, when promote may give files away (root): a gateway running as its own
  // user must find its queue and counter files its own. Otherwise files are the restoring user's.
  const restoreOwners = process.getuid?.() === 0;
  /** The entry's recorded owner, when it is to be given back. */
  const ownerOf = (e: SpoolEntry): { uid: number; gid: number } | undefined =>
    restoreOwners && e.uid !== undefined && e.gid !== undefined ? { uid: e.uid, gid: e.gid } : undefined;
  /**
   * Folders under dest seen to be real directories (not links) before anything is taken from or
   * put in them. Under --files-root the source's folder itself is this restore's own: a link
   * found there (planted, or left from something else) would take the deletions below and every
   * write elsewhere. In place, the source's own path may be a link on this host as on the primary
   * (a spool on a volume of its own): that one is the operator's layout, and the restore goes
   * through it.
   */
  const realDirs = new Set<string>(inRoot ? [] : ['']);
  /** Throws SPOOL_RESTORE_PATH unless dest/`rel` is a real directory; `what` is what would have gone through it. */
  const requireRealDir = async (rel: string, what: string): Promise<void> => {
    if (realDirs.has(rel)) return;
    const st = await lstat(join(dest, rel)).catch(() => undefined);
    if (st?.isDirectory() !== true) {
      // An excluded path the target holds as a link, say: writing there would follow it.
      throw new HotspareError('SPOOL_RESTORE_PATH', `${join(dest, rel)} is not a directory (a link or a file), so ${what} is not restored through it`, {
        hint: 'move it aside on the target, then restore the files with `hotspare promote --files-only` (promote\'s SPOOL_NOT_RESTORED names the command)',
      });
    }
    realDirs.add(rel);
  };
  await mkdir(dest, { recursive: true });
  await requireRealDir('', 'the source');
  // 1. Remove what the target has and the recorded tree does not (or has as another kind).
  const existing = await walk(dest, excluded, (rel) => {
    log.warn({ code: 'SPOOL_NAME_NOT_UTF8', path: rel, hint: 'the archive cannot hold such a name: move it aside if the restored tree should not have it' }, `left ${join(dest, rel)} as it is on the target: its name is not valid UTF-8, so no spool archive records it`);
  });
  let removed = 0;
  for (const [rel, kind] of [...existing].sort((a, b) => pathDepth(a[0]) - pathDepth(b[0]))) {
    const want = tree.get(rel);
    if (want !== undefined && want.kind === kind) continue;
    if (rel === '') continue;
    // Inside a folder already removed: counted with it.
    if (!(await lstat(join(dest, rel)).then(() => true, () => false))) continue;
    await rm(join(dest, rel), { recursive: true, force: true });
    removed += 1;
    log.debug({ path: rel }, 'removed from the restore target: not in the restored tree');
  }
  const paths = sortByDepth([...tree.entries.keys()]);
  const packs = new PackBlockReader(archiveDir, meta.name);
  const counts = { files: 0, dirs: 0, links: 0, bytes: 0, removed };
  /** A block of zeros is not written: the new file reads zeros there anyway (see below). */
  const zeros = Buffer.alloc(meta.blockBytes);
  try {
    for (const rel of paths) {
      const e = tree.get(rel);
      const abs = join(dest, rel);
      if (e === undefined || rel === '') continue;
      await requireRealDir(parentOf(rel), rel);
      if (e.kind === 'dir') {
        await mkdir(abs, { recursive: true });
        // mkdir accepts a link to a folder already there (at a path the source excludes, which
        // step 1 leaves alone): its mode and times would be set through it, on whatever it names.
        await requireRealDir(rel, `the folder ${rel}`);
        counts.dirs++;
      } else if (e.kind === 'link') {
        await unlink(abs).catch(() => undefined);
        await symlink(e.target, abs);
        const owner = ownerOf(e);
        if (owner !== undefined) await lchown(abs, owner.uid, owner.gid);
        await lutimes(abs, utimesSeconds(e.mtimeNs), utimesSeconds(e.mtimeNs));
        counts.links++;
      } else {
        const tmp = join(dest, parentOf(rel), `.hotspare-restore-${process.pid}`);
        // O_EXCL: a link planted under the temporary name is not followed.
        await unlink(tmp).catch(() => undefined);
        const out = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        let written = false;
        try {
          for (let i = 0; i < e.blocks.length; i++) {
            const ref = e.blocks[i] as BlockRef;
            const length = blockLength(e.size, i, meta.blockBytes);
            // checkPackExtents has seen every block's place make sense, and every pack there.
            const pieces = blockPieces(ref, length) as BlockPiece[];
            const got = await packs.read(pieces);
            if (got.kind !== 'read') {
              throw new HotspareError('SPOOL_DATA_MISSING', `pack ${got.pack} of spool source ${meta.name} ${got.kind === 'missing' ? 'is missing' : 'ends'} before the data of ${rel}`, {
                hint: 'the archive is damaged; run `hotspare verify`, restore an earlier point, or let the agent re-ship the source',
              });
            }
            const buf = got.bytes;
            // A restored file is never silently wrong: each block is checked against its hash.
            if (!blockMatches(buf, ref[0])) {
              throw new HotspareError('SPOOL_DATA_DAMAGED', `block ${i} of ${rel} in spool source ${meta.name} does not match its checksum (${placeWords(pieces)})`, {
                hint: 'the archive is damaged: run `hotspare verify`; promote to an earlier point, or restore that file from another copy',
              });
            }
            // Left as a hole: the file is new (O_EXCL) and the truncate below sets its size, so
            // it reads the same zeros. Written, a sparse file (a monitoring system's
            // preallocated data, a VM image) came back whole on disk, 100 MiB of blocks for a
            // 100 MiB file of which 4 KiB were used, and could fill the target volume.
            if (!buf.equals(zeros.subarray(0, length))) await out.write(buf, 0, length, i * meta.blockBytes);
          }
          await out.truncate(e.size);
          // The owner before the mode: a chown clears set-user-ID and set-group-ID bits.
          const owner = ownerOf(e);
          if (owner !== undefined) await out.chown(owner.uid, owner.gid);
          await out.chmod(e.mode);
          await out.sync();
          written = true;
        } finally {
          await out.close();
          // A failed file leaves no temporary file where the application may pick it up.
          if (!written) await unlink(tmp).catch(() => undefined);
        }
        await rename(tmp, abs);
        await utimes(abs, utimesSeconds(e.mtimeNs), utimesSeconds(e.mtimeNs));
        counts.files++;
        counts.bytes += e.size;
      }
    }
  } finally {
    await packs.close();
  }
  // Directories last and deepest first: writing into them changed their times.
  for (const rel of paths.filter((p) => tree.get(p)?.kind === 'dir').reverse()) {
    const e = tree.get(rel);
    if (e?.kind !== 'dir') continue;
    // Through one descriptor of the folder itself (never a link put there meanwhile), made
    // durable last: set first, a mode without read or search (0311, 0000) let nobody but root
    // open it again to fsync it.
    const dir = await open(join(dest, rel), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
    try {
      const owner = ownerOf(e);
      if (owner !== undefined) await dir.chown(owner.uid, owner.gid);
      await dir.chmod(e.mode);
      await dir.utimes(utimesSeconds(e.mtimeNs), utimesSeconds(e.mtimeNs));
      await dir.sync();
    } finally {
      await dir.close();
    }
  }
  return counts;
}

/**
 * Kinds of what is at a target (not following links), skipping excluded paths, and those whose
 * name is not valid UTF-8 (`badName` is told of each): no recorded tree holds such a name (the
 * agent does not ship it, SPOOL_NAME_NOT_UTF8), and read as text its lstat found nothing and
 * failed the whole restore.
 */
async function walk(root: string, excluded: (rel: string) => boolean, badName: (rel: string) => void): Promise<Map<string, 'file' | 'dir' | 'link'>> {
  const out = new Map<string, 'file' | 'dir' | 'link'>([['', 'dir']]);
  const stack = [''];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const raw of await readdir(join(root, dir), { encoding: 'buffer' })) {
      const name = utf8Name(raw);
      if (name === undefined) {
        const bad = reportableBadName(dir, raw, excluded);
        if (bad !== undefined) badName(bad);
        continue;
      }
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (excluded(rel)) continue;
      const st = await lstat(join(root, rel));
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      out.set(rel, kind);
      if (kind === 'dir') stack.push(rel);
    }
  }
  return out;
}

/** A restore's file-system failure (full volume, permissions, a pack gone) as an error with a code and a hint. */
function restoreIoError(err: unknown, source: string, dest: string, archiveDir: string): unknown {
  if (err instanceof HotspareError) return err;
  const e = err as NodeJS.ErrnoException;
  // A refusal of the archive (a pack it reads), not of the target it writes. (A symlink()'s
  // `path` is the link's text, not a file: only `dest`, the link made, was touched.)
  const touched = e.syscall === 'symlink' ? undefined : e.path;
  const inArchive = typeof touched === 'string' && !relative(resolve(archiveDir), resolve(touched)).startsWith('..');
  const why =
    e.code === 'ENOSPC' ? 'the target volume is full'
    : (e.code === 'EACCES' || e.code === 'EPERM') && inArchive ? `the archive refuses the user promote runs as (${e.path}): make it readable`
    : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied (run promote as a user that may write there)'
    : undefined;
  return new HotspareError('SPOOL_RESTORE_IO', `restoring spool source ${source} into ${dest}: ${e.message ?? String(err)}`, {
    cause: err,
    hint: `${why === undefined ? '' : `${why}; `}the database is promoted all the same: fix the cause, then restore ${source} with \`hotspare promote --files-only\` (promote's SPOOL_NOT_RESTORED names the command)`,
  });
}
