import { open, readFile, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { HotspareError } from '../core/errors.js';
import { ArchiveLayout } from './archive-layout.js';
import { bootId, processAlive, processStartTicks } from '../platform/process-alive.js';

/** What `state/writer.lock` holds: who writes the archive, and what tells that process from a later one with its pid. */
interface LockHolder {
  pid: number;
  owner: string;
  /** Absent in locks written before the host was recorded: those count as this host's. */
  host?: string;
  bootId?: string;
  startTicks?: string;
}

/**
 * A single-writer lock on an archive folder: `state/writer.lock`, created exclusively, holding
 * the owner's pid, host, boot id and start time. A lock of this host whose process is gone is
 * taken over: its pid no longer runs, or the machine has rebooted since (another boot id), or
 * the pid now belongs to a later process (another start time; after a crash and a reboot, a
 * stale lock's pid often does). A lock of another host (an archive on a shared volume) is
 * refused: whether its process runs cannot be seen from here.
 */
export class ArchiveLock {
  private constructor(readonly path: string) {}

  static async acquire(root: string, owner: string): Promise<ArchiveLock> {
    const path = `${new ArchiveLayout(root).stateDir}/writer.lock`;
    for (let attempt = 0; attempt < 2; attempt += 1) {
      try {
        const handle = await open(path, 'wx', 0o644);
        const me: LockHolder = { pid: process.pid, owner, host: hostname(), bootId: bootId(), startTicks: processStartTicks(process.pid) };
        await handle.writeFile(JSON.stringify(me));
        await handle.close();
        return new ArchiveLock(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const holder = await readHolder(path);
        if (holder !== undefined && holder.pid !== process.pid) refuseIfHeld(root, path, holder);
        await rm(path, { force: true });
      }
    }
    throw new HotspareError('ARCHIVE_LOCKED', `cannot lock archive ${root}`, { hint: `remove ${path} if no hotspare process uses the archive` });
  }

  async release(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

/** Throws ARCHIVE_LOCKED when the lock's holder may still write the archive; returns when it is stale. */
function refuseIfHeld(root: string, path: string, holder: LockHolder): void {
  if (holder.host !== undefined && holder.host !== hostname()) {
    throw new HotspareError('ARCHIVE_LOCKED', `archive ${root} is being written by ${holder.owner} (pid ${holder.pid}) on host ${holder.host}`, {
      hint: `only one agent or receiver may write an archive; if no hotspare process on ${holder.host} writes it any more, remove ${path}`,
    });
  }
  const current = bootId();
  if (holder.bootId !== undefined && current !== undefined && holder.bootId !== current) return;
  if (!processAlive(holder.pid)) return;
  const started = processStartTicks(holder.pid);
  if (holder.startTicks !== undefined && started !== undefined && holder.startTicks !== started) return;
  throw new HotspareError('ARCHIVE_LOCKED', `archive ${root} is being written by ${holder.owner} (pid ${holder.pid})`, {
    hint: 'only one agent or receiver may write an archive; stop the other one first',
  });
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<LockHolder> | null;
    if (typeof parsed?.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    return { pid: parsed.pid, owner: text(parsed.owner) ?? 'another hotspare process', host: text(parsed.host), bootId: text(parsed.bootId), startTicks: text(parsed.startTicks) };
  } catch {
    return undefined;
  }
}
