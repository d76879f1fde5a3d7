import { open, readFile, rm } from 'node:fs/promises';
import { HotspareError } from '../core/errors.js';
import { ArchiveLayout } from './archive-layout.js';
import { processAlive } from '../platform/process-alive.js';

/**
 * A single-writer lock on an archive folder: `state/writer.lock`, created exclusively, holding
 * the owner's pid. A lock whose process is gone (same host) is taken over; a live one is refused.
 */
export class ArchiveLock {
  private constructor(readonly path: string) {}

  static async acquire(root: string, owner: string): Promise<ArchiveLock> {
    const path = `${new ArchiveLayout(root).stateDir}/writer.lock`;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        const handle = await open(path, 'wx', 0o644);
        await handle.writeFile(JSON.stringify({ pid: process.pid, owner }));
        await handle.close();
        return new ArchiveLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = await readHolder(path);
        if (holder !== undefined && holder.pid !== process.pid && processAlive(holder.pid)) {
          throw new HotspareError('ARCHIVE_LOCKED', `archive ${root} is being written by ${holder.owner} (pid ${holder.pid})`, {
            hint: 'only one agent or receiver may write an archive; stop the other one first',
          });
        }
        await rm(path, { force: true });
      }
    }
    throw new HotspareError('ARCHIVE_LOCKED', `cannot lock archive ${root}`, { hint: `remove ${path} if no hotspare process uses the archive` });
  }

  async release(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

async function readHolder(path: string): Promise<{ pid: number; owner: string } | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as { pid: number; owner: string };
  } catch {
    return undefined;
  }
}
