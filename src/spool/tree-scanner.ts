import { isUtf8 } from 'node:buffer';
import type { BigIntStats } from 'node:fs';
import { lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import picomatch from 'picomatch';

/** What a scan saw at one path (lstat, never following links). */
export interface Found {
  kind: 'file' | 'dir' | 'link' | 'other';
  mode: number;
  mtimeNs: string;
  ctimeNs: string;
  size: number;
  ino: number;
  /** The file system's device: an inode number names a file only on its own device. */
  dev: number;
  /** The owner: restored with it when promote runs as root (a gateway's files are its user's). */
  uid: number;
  gid: number;
}

export interface ScanResult {
  found: Map<string, Found>;
  /** Paths that exist but could not be listed or examined: their recorded state is kept as is. */
  unreadable: Map<string, string>;
  /**
   * Entries whose name is not valid UTF-8 (Linux allows any bytes but '/' and NUL), as
   * `parent/name` with the name's bytes escaped (nameForLog): the journal records paths as JSON
   * text, which cannot hold them, so they are not shipped, and the caller says so rather than
   * let them go missing from the archive unnoticed.
   */
  badNames: string[];
}

/** A name's bytes as text for a log line: valid UTF-8 as is, any other byte as \xHH. */
export function nameForLog(name: Buffer): string {
  let out = '';
  for (let i = 0; i < name.length; ) {
    // The character of 1 to 4 bytes at i that decodes and encodes back to the same bytes, if any.
    let len = 0;
    for (let n = 1; n <= 4 && i + n <= name.length; n++) {
      const piece = name.subarray(i, i + n);
      if (Buffer.from(piece.toString('utf8'), 'utf8').equals(piece)) {
        len = n;
        break;
      }
    }
    if (len === 0) out += `\\x${(name[i] as number).toString(16).padStart(2, '0')}`;
    else out += name.toString('utf8', i, i + len);
    i += len === 0 ? 1 : len;
  }
  return out;
}

/** The name as text when it is valid UTF-8 (decoding gives back the same bytes), undefined otherwise. */
export function utf8Name(name: Buffer): string | undefined {
  // Checked in place (simdutf): every rescan asks this of every entry of the tree.
  return isUtf8(name) ? name.toString('utf8') : undefined;
}

/**
 * An entry of folder `parent` whose name is not valid UTF-8, as a log line names it
 * (`parent/name`, bad bytes escaped); undefined when an exclude that matches it as decoded
 * (U+FFFD for each bad byte, `*` say) leaves it out quietly. The agent's scan and a restore's
 * walk of its target both skip such entries and say so.
 */
export function reportableBadName(parent: string, raw: Buffer, excluded: (rel: string) => boolean): string | undefined {
  const under = (name: string): string => (parent === '' ? name : `${parent}/${name}`);
  return excluded(under(raw.toString('utf8'))) ? undefined : under(nameForLog(raw));
}

/**
 * A matcher for a source's exclude globs, on paths relative to the source root, read as rsync
 * reads its own (and .gitignore much the same): a glob with a slash in it, or one that starts
 * with one, is matched against the whole path from the source's root; one without is matched
 * against every path's last name at any depth (`*.tmp`, `cache`); a trailing slash names a
 * folder (a file of that name is left out too). What a glob matches is left out with all it
 * holds. Before, every glob was matched against the whole path only, and `cache/` or `/log`
 * matched nothing at all.
 */
export function excludeMatcher(exclude: readonly string[]): (rel: string) => boolean {
  if (exclude.length === 0) return () => false;
  const globs = exclude.flatMap((glob) => {
    const trimmed = glob.replace(/\/+$/, '');
    const bare = trimmed.replace(/^\/+/, '');
    // "/" alone: the root itself, which no exclude leaves out (picomatch refuses an empty glob).
    if (bare === '') return [];
    const base = trimmed.includes('/') ? bare : `**/${bare}`;
    return [base, `${base}/**`];
  });
  if (globs.length === 0) return () => false;
  const match = picomatch(globs, { dot: true });
  return (rel) => rel !== '' && match(rel);
}

export function describe(st: BigIntStats): Found {
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'other';
  return {
    kind,
    mode: Number(st.mode & 0o7777n),
    mtimeNs: st.mtimeNs.toString(),
    ctimeNs: st.ctimeNs.toString(),
    size: Number(st.size),
    ino: Number(st.ino),
    dev: Number(st.dev),
    uid: Number(st.uid),
    gid: Number(st.gid),
  };
}

/**
 * Walks the given roots of a source (relative paths; '' is the whole source) with lstat only.
 * A path that vanishes during the walk is simply absent; one that cannot be read is reported
 * in `unreadable` so that the caller keeps what it recorded for it instead of deleting it.
 * The calls block: this runs on the reader thread (file-reader-worker.ts), where a scan is
 * thousands of system calls one after the other instead of as many round trips through the
 * libuv pool.
 */
export function scanRootsSync(
  sourceRoot: string,
  roots: readonly string[],
  isExcluded: (rel: string) => boolean,
  /** Paths looked at alone (a changed file's parent directory): lstat, no walk. */
  shallow: readonly string[] = [],
): ScanResult {
  const found = new Map<string, Found>();
  const unreadable = new Map<string, string>();
  const badNames: string[] = [];
  const code = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);
  const gone = (c: string): boolean => c === 'ENOENT' || c === 'ENOTDIR';
  // Work: [path, walk it if it is a directory?]; a stack, so memory follows the tree's depth
  // times its width, not its size.
  const toStat: Array<[string, boolean]> = [];
  for (const root of shallow) if (!isExcluded(root)) toStat.push([root, false]);
  for (const root of roots) if (!isExcluded(root)) toStat.push([root, true]);
  for (let next = toStat.pop(); next !== undefined; next = toStat.pop()) {
    const [rel, walk] = next;
    let f: Found;
    try {
      // The source's own path may be a link to its folder (/etc/emg -> /opt/emg/etc): followed.
      // Everything under it is taken as it is, links as links.
      f = describe(rel === '' ? statSync(sourceRoot, { bigint: true }) : lstatSync(join(sourceRoot, rel), { bigint: true }));
    } catch (err) {
      if (!gone(code(err))) unreadable.set(rel, code(err));
      continue;
    }
    found.set(rel, f);
    if (f.kind !== 'dir' || !walk) continue;
    let names: Buffer[];
    try {
      // As bytes: read as text, a name that is not UTF-8 came back with U+FFFD in place of its
      // bad bytes, its lstat then found nothing, and the file (or the whole folder) was taken
      // for deleted, with no word of it.
      names = readdirSync(join(sourceRoot, rel), { encoding: 'buffer' });
    } catch (err) {
      // A directory removed while we walk is a deletion; anything else is unreadable.
      if (gone(code(err))) found.delete(rel);
      else unreadable.set(rel, code(err));
      continue;
    }
    for (const raw of names) {
      const n = utf8Name(raw);
      if (n === undefined) {
        const bad = reportableBadName(rel, raw, isExcluded);
        if (bad !== undefined) badNames.push(bad);
        continue;
      }
      const child = rel === '' ? n : `${rel}/${n}`;
      if (!isExcluded(child)) toStat.push([child, true]);
    }
  }
  return { found, unreadable, badNames };
}
