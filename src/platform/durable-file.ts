import { mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

/**
 * Writes a file atomically and durably: temporary file, fsync, rename over the target, fsync
 * of the directory. A crash leaves either the old content or the new, never a mix; a failed
 * write removes its temporary file. `data` may stream (a base backup's parts).
 */
export async function writeFileDurable(
  path: string,
  data: string | Buffer | AsyncIterable<Buffer>,
  options: { mode?: number; tmpPath?: string } = {},
): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true });
  const tmp = options.tmpPath ?? join(dir, `.${basename(path)}.tmp-${process.pid}`);
  const handle = await open(tmp, 'w', options.mode ?? 0o644);
  try {
    if (typeof data === 'string' || Buffer.isBuffer(data)) await handle.writeFile(data);
    else for await (const chunk of data) await handle.write(chunk);
    await handle.sync();
  } catch (err) {
    await handle.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  await rename(tmp, path);
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
