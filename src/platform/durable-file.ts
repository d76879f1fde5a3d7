import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';
import { writeAllAt } from './sliced-write.js';
import { StreamedFileWriter } from './streamed-file-writer.js';

/**
 * Writes a file atomically and durably: temporary file, fsync, rename over the target, fsync
 * of the directory. A crash leaves either the old content or the new, never a mix; a failed
 * write removes its temporary file. `data` may stream (a base backup's parts).
 */
export async function writeFileDurable(
  path: string,
  data: string | Buffer | AsyncIterable<Buffer>,
  options: { mode?: number; tmpPath?: string; createDir?: boolean } = {},
): Promise<void> {
  const dir = dirname(path);
  // (createDir false: a missing folder fails the write, ENOENT, rather than being made.)
  if (options.createDir !== false) await mkdir(dir, { recursive: true });
  const tmp = options.tmpPath ?? join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const handle = await open(tmp, 'w', options.mode ?? 0o644);
  const streamed = typeof data === 'string' || Buffer.isBuffer(data) ? undefined : new StreamedFileWriter(handle);
  try {
    if (typeof data === 'string') await handle.writeFile(data);
    else if (Buffer.isBuffer(data)) await writeAllAt(handle, data, 0);
    else for await (const chunk of data) await (streamed as StreamedFileWriter).write(chunk);
    // The streamed writer's finish() waits for its writes and write-backs, then fsyncs.
    await (streamed === undefined ? handle.sync() : streamed.finish());
  } catch (err) {
    // No write may still be under way when the file is closed and removed.
    await streamed?.settle();
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    // A rename refused (the path is a folder, say: a receiver's peer can ask for that) left the
    // whole file under its temporary name, in the way of nothing but a full disk.
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dir);
}

/** Makes a directory entry (a new or renamed file in it) durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Makes a whole folder tree durable: every regular file's data (fdatasync), `concurrency` at a
 * time, then every folder's entries (fsync), the tree's root last. Files written by other
 * processes (mbstream, mariabackup) are in the page cache only until this returns.
 */
export async function syncTree(root: string, concurrency: number): Promise<void> {
  const files: string[] = [];
  const dirs: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) files.push(path);
    }
    dirs.push(dir);
  };
  await walk(root);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (let path = files[next++]; path !== undefined; path = files[next++]) {
      const handle = await open(path, 'r');
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  for (const dir of dirs) await fsyncDir(dir);
}
