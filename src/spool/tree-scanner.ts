import type { BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs';
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
}

export interface ScanResult {
  found: Map<string, Found>;
  /** Paths that exist but could not be listed or examined: their recorded state is kept as is. */
  unreadable: Map<string, string>;
}

/** A matcher for a source's exclude globs, on paths relative to the source root. */
export function excludeMatcher(exclude: readonly string[]): (rel: string) => boolean {
  if (exclude.length === 0) return () => false;
  const match = picomatch([...exclude], { dot: true });
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
  };
}

/** How many lstat/readdir calls run at once while walking a tree. */
const SCAN_CONCURRENCY = 32;

// Callback fs: a scan is thousands of tiny calls, and fs/promises costs more per call.
const lstatBig = (path: string): Promise<BigIntStats> =>
  new Promise((resolve, reject) => lstat(path, { bigint: true }, (err, st) => (err === null ? resolve(st) : reject(err))));
const listDir = (path: string): Promise<string[]> => new Promise((resolve, reject) => readdir(path, (err, names) => (err === null ? resolve(names) : reject(err))));

/**
 * Walks the given roots of a source (relative paths; '' is the whole source) with lstat only.
 * A path that vanishes during the walk is simply absent; one that cannot be read is reported
 * in `unreadable` so that the caller keeps what it recorded for it instead of deleting it.
 * Up to SCAN_CONCURRENCY calls are under way at once, across directories.
 */
export async function scanRoots(
  sourceRoot: string,
  roots: readonly string[],
  isExcluded: (rel: string) => boolean,
  /** Paths looked at alone (a changed file's parent directory): lstat, no walk. */
  shallow: readonly string[] = [],
): Promise<ScanResult> {
  const found = new Map<string, Found>();
  const unreadable = new Map<string, string>();
  // Work: [path, walk it if it is a directory?] to lstat, and directories to list.
  const toStat: Array<[string, boolean]> = [];
  const toList: string[] = [];
  for (const root of roots) if (!isExcluded(root)) toStat.push([root, true]);
  for (const root of shallow) if (!isExcluded(root)) toStat.push([root, false]);
  let running = 0;
  let failure: { err: unknown } | undefined;
  await new Promise<void>((resolve) => {
    const pump = (): void => {
      while (running < SCAN_CONCURRENCY && failure === undefined) {
        const dir = toList.pop();
        if (dir !== undefined) {
          running++;
          listDir(join(sourceRoot, dir)).then(
            (names) => {
              for (const n of names) {
                const rel = dir === '' ? n : `${dir}/${n}`;
                if (!isExcluded(rel)) toStat.push([rel, true]);
              }
              done();
            },
            (err: NodeJS.ErrnoException) => {
              // A directory removed while we walk is a deletion; anything else is unreadable.
              if (err.code === 'ENOENT' || err.code === 'ENOTDIR') found.delete(dir);
              else unreadable.set(dir, err.code ?? String(err));
              done();
            },
          );
          continue;
        }
        const next = toStat.pop();
        if (next === undefined) break;
        const [rel, walk] = next;
        running++;
        lstatBig(join(sourceRoot, rel)).then(
          (st) => {
            const f = describe(st);
            found.set(rel, f);
            if (f.kind === 'dir' && walk) toList.push(rel);
            done();
          },
          (err: NodeJS.ErrnoException) => {
            if (err.code !== 'ENOENT' && err.code !== 'ENOTDIR') unreadable.set(rel, err.code ?? String(err));
            done();
          },
        );
      }
      if (running === 0) resolve();
    };
    const done = (): void => {
      running--;
      try {
        pump();
      } catch (err) {
        failure ??= { err };
        if (running === 0) resolve();
      }
    };
    pump();
  });
  if (failure !== undefined) throw failure.err;
  return { found, unreadable };
}
