import { createHash } from 'node:crypto';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';

/** One line per path: kind, mode, owner, and content (bytes hash) or link target; for tree equality. */
export async function describeTree(root: string, skip: (rel: string) => boolean = () => false): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const stack = [''];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const name of (await readdir(join(root, dir))).sort()) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (skip(rel)) continue;
      const abs = join(root, rel);
      const st = await lstat(abs);
      const mode = (st.mode & 0o7777).toString(8);
      const owner = `${st.uid}:${st.gid}`;
      if (st.isSymbolicLink()) out.set(rel, `link ${await readlink(abs)} ${owner}`);
      else if (st.isDirectory()) {
        out.set(rel, `dir ${mode} ${owner}`);
        stack.push(rel);
      } else if (st.isFile()) {
        const data = await readFile(abs);
        out.set(rel, `file ${mode} ${owner} ${data.length} ${createHash('sha256').update(data).digest('hex')} mtime ${Math.floor(st.mtimeMs)}`);
      } else out.set(rel, 'other');
    }
  }
  return out;
}

/** The differences between two described trees (empty when equal), capped for readable failures. */
export function treeDiff(a: Map<string, string>, b: Map<string, string>, max = 20): string[] {
  const diffs: string[] = [];
  for (const [p, v] of a) if (b.get(p) !== v) diffs.push(`${p}: source ${v} / restored ${b.get(p) ?? 'missing'}`);
  for (const [p, v] of b) if (!a.has(p)) diffs.push(`${p}: source missing / restored ${v}`);
  return diffs.slice(0, max);
}
