import { HotspareError } from '../core/errors.js';
import { blockCount, type FileEntry, type JournalLine, type SpoolEntry, type SpoolOp } from './spool-format.js';

/** True when `path` is `root` or inside it ('' is the source's root and contains everything). */
export function isUnder(path: string, root: string): boolean {
  // Without building `${root}/`: a pass asks this for every recorded path and each changed root,
  // and under churn those strings were a large share of what the agent allocated.
  if (root === '') return true;
  if (path.length <= root.length) return path === root;
  return path.charCodeAt(root.length) === 0x2f && path.startsWith(root);
}

/** The folder `path` lies in ('' for the source's root). */
export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** Parts of a relative path ('' has none). */
export function pathDepth(p: string): number {
  if (p === '') return 0;
  let parts = 1;
  for (let at = p.indexOf('/'); at >= 0; at = p.indexOf('/', at + 1)) parts++;
  return parts;
}

/** Sorts paths in place, shallower first, then by name; each path's depth is counted once, not at every comparison (a pass sorts every path of the tree). */
export function sortByDepth(paths: string[]): string[] {
  const depths = new Map<string, number>();
  for (const p of paths) depths.set(p, pathDepth(p));
  return paths.sort((a, b) => (depths.get(a) as number) - (depths.get(b) as number) || (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * The state of a spool source's tree as the archive records it: relative path → entry. The
 * syncer keeps one (what the replica durably has), restore builds one as of a point in time;
 * both fold the same journal operations, so they cannot disagree.
 */
export class SpoolTree {
  readonly entries = new Map<string, SpoolEntry>();

  constructor(readonly blockBytes: number) {}

  get(path: string): SpoolEntry | undefined {
    return this.entries.get(path);
  }

  /** Paths at or under `root`. */
  pathsUnder(root: string): string[] {
    const out: string[] = [];
    for (const p of this.entries.keys()) if (isUnder(p, root)) out.push(p);
    return out;
  }

  apply(op: SpoolOp): void {
    switch (op.op) {
      case 'file': {
        const before = this.entries.get(op.path);
        const count = blockCount(op.e.size, this.blockBytes);
        const blocks = before?.kind === 'file' ? before.blocks.slice(0, count) : [];
        for (const [index, ...ref] of op.set) blocks[index] = ref;
        if (blocks.length !== count || blocks.some((b) => b === undefined)) {
          throw new HotspareError('SPOOL_JOURNAL', `journal entry for ${op.path} leaves blocks undefined`, {
            hint: 'the spool journal is inconsistent; run `hotspare verify` and restart the agent to re-ship the source',
          });
        }
        // Only a directory replaced by a file has a subtree to drop.
        this.#removeTree(op.path, before?.kind !== 'dir');
        this.entries.set(op.path, { ...op.e, blocks } satisfies FileEntry);
        break;
      }
      case 'dir': {
        const before = this.entries.get(op.path);
        if (before !== undefined && before.kind !== 'dir') this.entries.delete(op.path);
        this.entries.set(op.path, op.e);
        break;
      }
      case 'link':
        this.#removeTree(op.path, this.entries.get(op.path)?.kind !== 'dir');
        this.entries.set(op.path, op.e);
        break;
      case 'rm':
        this.#removeTree(op.path, false);
        break;
      case 'mv': {
        const moving = this.pathsUnder(op.from).map((p) => [p, this.entries.get(p)] as const);
        this.#removeTree(op.to, false);
        for (const [p] of moving) this.entries.delete(p);
        for (const [p, e] of moving) if (e !== undefined) this.entries.set(op.to + p.slice(op.from.length), e);
        break;
      }
      case 'seen':
        // No change: a record of when the agent last looked (see SpoolOp).
        break;
    }
  }

  /** A copy whose entries can be changed apart from this tree's (entries themselves are never changed in place). */
  clone(): SpoolTree {
    const copy = new SpoolTree(this.blockBytes);
    for (const [p, e] of this.entries) copy.entries.set(p, e);
    return copy;
  }

  /** Puts `e` at `path` as a whole (not as a change to what is there): what was under a path that is no longer a folder goes. */
  place(path: string, e: SpoolEntry): void {
    this.#removeTree(path, e.kind === 'dir' || this.entries.get(path)?.kind !== 'dir');
    this.entries.set(path, e);
  }

  /** Removes `path` and, unless `selfOnly`, everything under it. */
  #removeTree(path: string, selfOnly: boolean): void {
    this.entries.delete(path);
    // The root ('') is removed alone, as before: its entry says nothing of the paths recorded under it.
    if (selfOnly || path === '') return;
    // Deleting the entry being visited is safe in a Map's iteration; no copy of every key per removal.
    for (const p of this.entries.keys()) if (p !== path && isUnder(p, path)) this.entries.delete(p);
  }

  /** The checkpoint lines that describe this whole tree. */
  checkpointLines(t: number, seq: number, head: { exclude?: readonly string[] | undefined; pack?: number | undefined } = {}): JournalLine[] {
    const lines: JournalLine[] = [
      { op: 'ckpt', t, seq, ...(head.exclude === undefined ? {} : { exclude: [...head.exclude] }), ...(head.pack === undefined ? {} : { pack: head.pack }) },
    ];
    for (const [path, e] of this.entries) lines.push({ op: 'ent', path, e });
    lines.push({ op: 'ckpt-end', n: this.entries.size });
    return lines;
  }
}

/** A journal segment read back: its checkpoint time, the tree it starts from, and its operations. */
export interface ParsedSegment {
  seq: number;
  checkpointMs: number;
  checkpoint: Array<[string, SpoolEntry]>;
  ops: SpoolOp[];
  /** The excludes in effect while the segment was written, when recorded. */
  exclude?: string[];
  /** The pack being written at the checkpoint, when recorded (see the ckpt line). */
  pack?: number;
}

/** Splits a segment's verified lines into its checkpoint and its operations; undefined when the checkpoint is incomplete. */
export function parseSegment(seq: number, lines: JournalLine[]): ParsedSegment | undefined {
  const head = checkpointHead(lines[0]);
  if (head === undefined) return undefined;
  const checkpoint: Array<[string, SpoolEntry]> = [];
  let i = 1;
  for (; i < lines.length; i++) {
    const line = lines[i];
    if (line === undefined) break;
    if (line.op === 'ent') checkpoint.push([line.path, line.e]);
    else if (line.op === 'ckpt-end') break;
    else return undefined;
  }
  const end = lines[i];
  if (end?.op !== 'ckpt-end' || end.n !== checkpoint.length) return undefined;
  const ops = lines.slice(i + 1).filter((l): l is SpoolOp => l.op !== 'ckpt' && l.op !== 'ent' && l.op !== 'ckpt-end');
  return { seq, ...head, checkpoint, ops };
}

/**
 * What a segment's first line records when it is a checkpoint's: its time, and its excludes and
 * pack where recorded (a field of another shape counts as not recorded). Read both from a whole
 * segment and from its first line alone.
 */
export function checkpointHead(line: JournalLine | undefined): { checkpointMs: number; exclude?: string[]; pack?: number } | undefined {
  if (line?.op !== 'ckpt' || typeof line.t !== 'number') return undefined;
  return {
    checkpointMs: line.t,
    ...(Array.isArray(line.exclude) && line.exclude.every((g) => typeof g === 'string') ? { exclude: line.exclude } : {}),
    ...(Number.isInteger(line.pack) ? { pack: line.pack } : {}),
  };
}

/** The tree at the start of a segment. */
export function treeFromCheckpoint(segment: ParsedSegment, blockBytes: number): SpoolTree {
  const tree = new SpoolTree(blockBytes);
  for (const [path, e] of segment.checkpoint) tree.entries.set(path, e);
  return tree;
}
