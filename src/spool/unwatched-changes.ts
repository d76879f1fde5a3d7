import { parentOf, type SpoolTree } from './spool-tree.js';
import { unwatchedSince, type SpoolEntry, type SpoolOp } from './spool-format.js';

/**
 * A restore point inside a window in which nobody watched a source (the agent stopped, or the
 * standby away): the changes the first pass after it found happened at unknown moments in it.
 */
export interface UnwatchedWindow {
  /** The last observation before the outage (ms since the epoch). */
  fromMs: number;
  /** When the first pass after it recorded the last of those changes. */
  toMs: number;
  /** Files, folders and links created or changed whose mtime is at or before the point: taken as they were then. */
  placedBefore: number;
  /** ... whose mtime is after the point: left as before the window. */
  placedAfter: number;
  /**
   * Deletes, renames, and files renamed over another (another inode at a path, its mtime before
   * the point and its ctime after): they carry no time, so they are left undone (the paths as
   * before the window).
   */
  unplaced: number;
  /** The first of those, as words ("removed q/7", "renamed a to b"). */
  unplacedNamed: string[];
}

/**
 * Places the changes recorded after a restore point that may have happened before it. `tree`
 * is the source as of the last record at or before `untilMs`; `ahead` the records after it, in
 * journal order. Those found after an outage whose window holds the point (see SpoolOp's `u`)
 * are looked at: a file, folder or link whose mtime is at or before the point changed before it
 * (an append, a new queue file), and `tree` takes its entry as it was right after that record,
 * with the folders it needs; one with a later mtime changed after it. A file whose mtime was set
 * back (cp -p, tar) counts as changed at that mtime. Deletes and renames have no time of their
 * own, nor has a file renamed over another (a new inode at the path whose mtime is before the
 * point and ctime after it): they are left undone and counted. Undefined (tree unchanged) when no window holds the point.
 */
export function placeUnwatchedChanges(tree: SpoolTree, ahead: Iterable<SpoolOp>, untilMs: number, namedMax: number): { window: UnwatchedWindow; newestPlacedMs: number | undefined } | undefined {
  // The records folded in order (each one's blocks are relative to the tree before it), so
  // that an entry is taken whole, as it stood right after its own record.
  const work = tree.clone();
  /** Entries for `tree`, parents before children (a Map keeps first insertion order). */
  const placed = new Map<string, SpoolEntry>();
  let window: UnwatchedWindow | undefined;
  let newestPlacedMs: number | undefined;
  for (const op of ahead) {
    const since = unwatchedSince(op);
    // The window's records come together, first thing after the outage; the first record of
    // another kind (a `seen` closes the window) or of a later window ends them.
    if (since === undefined || since >= untilMs || op.t <= untilMs) break;
    window ??= { fromMs: since, toMs: op.t, placedBefore: 0, placedAfter: 0, unplaced: 0, unplacedNamed: [] };
    window.fromMs = Math.min(window.fromMs, since);
    window.toMs = Math.max(window.toMs, op.t);
    const before = op.op === 'file' || op.op === 'dir' || op.op === 'link' ? work.get(op.path) : undefined;
    work.apply(op);
    if (op.op === 'rm' || op.op === 'mv') {
      window.unplaced++;
      if (window.unplacedNamed.length < namedMax) window.unplacedNamed.push(op.op === 'rm' ? `removed ${op.path}` : `renamed ${op.from} to ${op.to}`);
      continue;
    }
    if (op.op === 'seen') continue;
    const changedMs = mtimeMs(op.e.mtimeNs);
    const now = work.get(op.path);
    if (changedMs === undefined || changedMs > untilMs || now === undefined) {
      window.placedAfter++;
      continue;
    }
    // Another file (inode) now at a path that held one, with an mtime before the point but a
    // ctime after it: renamed over it (a swap a→t, b→a, t→b; a queue file moved into place).
    // Its mtime is the content's, not when it came there, so it dates nothing: taken by it, a
    // swap made after the point was restored as made before it, and the line said no rename.
    if (op.op === 'file' && before !== undefined && before.ino !== op.e.ino && (mtimeMs(op.e.ctimeNs) ?? Infinity) > untilMs) {
      window.unplaced++;
      if (window.unplacedNamed.length < namedMax) window.unplacedNamed.push(`replaced ${op.path} by another file (renamed over it)`);
      continue;
    }
    window.placedBefore++;
    newestPlacedMs = Math.max(newestPlacedMs ?? 0, changedMs);
    // Folders made in the window too (a new queue folder): as they stood then, when the tree at
    // the point has none there. Outermost first.
    const parents: string[] = [];
    for (let p = op.path; p !== ''; ) {
      p = parentOf(p);
      if (tree.get(p)?.kind === 'dir' && !placed.has(p)) break;
      parents.unshift(p);
    }
    for (const p of parents) {
      const dir = work.get(p);
      if (dir?.kind === 'dir' && tree.get(p)?.kind !== 'dir' && !placed.has(p)) placed.set(p, dir);
    }
    placed.set(op.path, now);
  }
  if (window === undefined) return undefined;
  for (const [path, e] of placed) tree.place(path, e);
  return { window, newestPlacedMs };
}

/** A recorded mtime (ns, as text) in ms; undefined when it is not a number. */
function mtimeMs(ns: string): number | undefined {
  try {
    return Number(BigInt(ns) / 1_000_000n);
  } catch {
    return undefined;
  }
}
