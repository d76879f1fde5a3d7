import { randomBytes } from 'node:crypto';
import { appendFile, chmod, chown, mkdir, open, readdir, rename, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

export { prng } from './workload.js';

/**
 * Random file-system churn over a tree, lsyncd style: creates, appends, in-place rewrites,
 * truncations, renames, deletes, directory creation, moves and removal, symlinks, chmod, and
 * (as root) chown.
 */
export class Churn {
  #n = 0;
  readonly #asRoot = process.getuid?.() === 0;
  constructor(
    readonly root: string,
    private readonly random: () => number,
  ) {}

  #pick<T>(items: T[]): T | undefined {
    return items.length === 0 ? undefined : items[Math.floor(this.random() * items.length)];
  }

  async #list(): Promise<{ files: string[]; dirs: string[] }> {
    const files: string[] = [];
    const dirs: string[] = [''];
    const stack = [''];
    while (stack.length > 0) {
      const dir = stack.pop() as string;
      let entries;
      try {
        entries = await readdir(join(this.root, dir), { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        const rel = dir === '' ? e.name : `${dir}/${e.name}`;
        if (e.isDirectory()) {
          dirs.push(rel);
          stack.push(rel);
        } else if (e.isFile()) files.push(rel);
      }
    }
    return { files, dirs };
  }

  #size(): number {
    const r = this.random();
    return r < 0.6 ? Math.floor(this.random() * 2000) : r < 0.95 ? Math.floor(this.random() * 200_000) : Math.floor(this.random() * 1_500_000);
  }

  /** Does `count` random operations. */
  async run(count: number): Promise<void> {
    let listing = await this.#list();
    for (let i = 0; i < count; i++) {
      if (i % 20 === 0) listing = await this.#list();
      const { files, dirs } = listing;
      const r = this.random();
      const name = `n${this.#n++}`;
      try {
        if (r < 0.2 || files.length < 5) {
          const dir = this.#pick(dirs) ?? '';
          const rel = dir === '' ? name : `${dir}/${name}`;
          await writeFile(join(this.root, rel), randomBytes(this.#size()));
          files.push(rel);
        } else if (r < 0.38) {
          const f = this.#pick(files);
          if (f) await appendFile(join(this.root, f), randomBytes(Math.floor(this.random() * 100_000)));
        } else if (r < 0.52) {
          const f = this.#pick(files);
          if (f) {
            const size = (await stat(join(this.root, f))).size;
            const h = await open(join(this.root, f), 'r+');
            await h.write(randomBytes(1 + Math.floor(this.random() * 10_000)), 0, undefined, Math.floor(this.random() * (size + 1)));
            await h.close();
          }
        } else if (r < 0.58) {
          const f = this.#pick(files);
          if (f) await truncate(join(this.root, f), Math.floor(this.random() * ((await stat(join(this.root, f))).size + 1)));
        } else if (r < 0.68) {
          const f = this.#pick(files);
          const dir = this.#pick(dirs) ?? '';
          if (f) await rename(join(this.root, f), join(this.root, dir, name));
        } else if (r < 0.78) {
          const f = this.#pick(files);
          if (f) await rm(join(this.root, f), { force: true });
        } else if (r < 0.85) {
          const dir = this.#pick(dirs) ?? '';
          await mkdir(join(this.root, dir, name));
          dirs.push(dir === '' ? name : `${dir}/${name}`);
        } else if (r < 0.9) {
          const from = this.#pick(dirs.filter((d) => d !== ''));
          const to = this.#pick(dirs) ?? '';
          if (from && !(to === from || to.startsWith(`${from}/`))) await rename(join(this.root, from), join(this.root, to, name));
          listing = await this.#list();
        } else if (r < 0.92) {
          const d = this.#pick(dirs.filter((x) => x !== ''));
          if (d) await rm(join(this.root, d), { recursive: true, force: true });
          listing = await this.#list();
        } else if (r < 0.96) {
          const dir = this.#pick(dirs) ?? '';
          await symlink(this.random() < 0.5 ? (this.#pick(files) ?? 'nowhere') : '../dangling', join(this.root, dir, name));
        } else {
          const f = this.#pick(files);
          // As root, half of these give the file to another owner (restore must give it back).
          if (f && this.#asRoot && this.random() < 0.5) await chown(join(this.root, f), 1000 + Math.floor(this.random() * 5), 1000 + Math.floor(this.random() * 5));
          else if (f) await chmod(join(this.root, f), this.random() < 0.5 ? 0o600 : 0o755);
        }
      } catch (err) {
        // Another op (e.g. a directory move) took the path away: that is churn too.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EEXIST' && code !== 'ENOTEMPTY' && code !== 'EINVAL') throw err;
        listing = await this.#list();
      }
    }
  }
}
