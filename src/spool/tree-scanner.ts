import type { BigIntStats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
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

/** How many lstat calls run at once while walking a directory. */
const LSTAT_CONCURRENCY = 32;

/**
 * Walks the given roots of a source (relative paths; '' is the whole source) with lstat only.
 * A path that vanishes during the walk is simply absent; one that cannot be read is reported
 * in `unreadable` so that the caller keeps what it recorded for it instead of deleting it.
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
  const stack: string[] = [];
  for (const root of [...roots, ...shallow]) {
    if (isExcluded(root)) continue;
    try {
      const f = describe(await lstat(join(sourceRoot, root), { bigint: true }));
      found.set(root, f);
      if (f.kind === 'dir' && roots.includes(root)) stack.push(root);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') unreadable.set(root, code ?? String(err));
    }
  }
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    let names: string[];
    try {
      names = await readdir(join(sourceRoot, dir));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // A directory removed while we walk is a deletion; anything else is unreadable.
      if (code === 'ENOENT' || code === 'ENOTDIR') found.delete(dir);
      else unreadable.set(dir, code ?? String(err));
      continue;
    }
    const rels = names.map((n) => (dir === '' ? n : `${dir}/${n}`)).filter((rel) => !isExcluded(rel));
    for (let i = 0; i < rels.length; i += LSTAT_CONCURRENCY) {
      const chunk = rels.slice(i, i + LSTAT_CONCURRENCY);
      const stats = await Promise.allSettled(chunk.map((rel) => lstat(join(sourceRoot, rel), { bigint: true })));
      stats.forEach((result, j) => {
        const rel = chunk[j] as string;
        if (result.status === 'fulfilled') {
          const f = describe(result.value);
          found.set(rel, f);
          if (f.kind === 'dir') stack.push(rel);
        } else {
          const code = (result.reason as NodeJS.ErrnoException).code;
          if (code !== 'ENOENT') unreadable.set(rel, code ?? String(result.reason));
        }
      });
    }
  }
  return { found, unreadable };
}
