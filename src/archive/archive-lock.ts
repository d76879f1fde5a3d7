import { link as fsLink, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { HotspareError } from '../core/errors.js';
import { ArchiveLayout } from './archive-layout.js';
import { bootId, pidNamespace, processAlive, processStartTicks } from '../platform/process-alive.js';

/** What `state/writer.lock` holds: who writes the archive, and what tells that process from a later one with its pid. */
interface LockHolder {
  pid: number;
  owner: string;
  /** Absent in locks written before these were recorded: such a lock counts as this host's. */
  host?: string;
  bootId?: string;
  /** The pid namespace the pid is in (containers sharing a host's name and boot have their own). */
  pidNs?: string;
  startTicks?: string;
}

/** Attempts at taking the lock: each removes at most one stale lock. */
const LOCK_ATTEMPTS = 3;
/**
 * A lock that names nobody (empty or cut short) and is younger than this is being written by a
 * process that just created it (on a volume without hard links the lock is created first and
 * written after): it is held. Older, its writer died in between: stale. Its age is taken on the
 * volume's own clock (against the file this attempt just wrote), which a network volume's
 * server keeps.
 */
export const LOCK_WRITE_GRACE_MS = 10_000;
/** A lock moved aside while its writer may still be writing it is read again this often, this many times, before it is put back. */
const LOCK_REREAD_MS = 50;
const LOCK_REREADS = 10;

/** The file-system call the lock depends on the volume for (a test stands in a volume without hard links). */
export interface LockFs {
  link(existing: string, path: string): Promise<void>;
}
const nodeLockFs: LockFs = { link: fsLink };

/**
 * A single-writer lock on an archive folder: `state/writer.lock`, holding the owner's pid,
 * host, boot id, pid namespace and start time. It is written to a file of its own and linked
 * into place, so it is never seen half-written. A lock of this host and pid namespace whose
 * process is gone is taken over: its pid no longer runs, or the machine has rebooted since
 * (another boot id), or the pid now belongs to a later process (another start time; after a
 * crash and a reboot, a stale lock's pid often does). A lock of another host or pid namespace
 * (an archive on a shared volume, a container) is refused: whether its process runs cannot be
 * seen from here.
 */
export class ArchiveLock {
  private constructor(readonly path: string) {}

  static async acquire(root: string, owner: string, fs: LockFs = nodeLockFs): Promise<ArchiveLock> {
    const path = `${new ArchiveLayout(root).stateDir}/writer.lock`;
    const me: LockHolder = { pid: process.pid, owner, host: hostname(), bootId: bootId(), pidNs: pidNamespace(), startTicks: processStartTicks(process.pid) };
    const mine = `${path}.${process.pid}.tmp`;
    const text = JSON.stringify(me);
    await writeFile(mine, text, { mode: 0o644 });
    try {
      for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt += 1) {
        try {
          await putInPlace(fs, mine, path, text);
          return new ArchiveLock(path);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        }
        const seen = await readText(path);
        if (seen === undefined) continue;
        const holder = parseHolder(seen);
        if (holder !== undefined) refuseIfHeld(root, path, holder, me);
        else if ((await ageMs(path, mine)) < LOCK_WRITE_GRACE_MS) {
          throw new HotspareError('ARCHIVE_LOCKED', `archive ${root} is being locked by another process just now`, {
            hint: `only one agent or receiver may write an archive; if none does, try again in ${LOCK_WRITE_GRACE_MS / 1000} s`,
          });
        }
        await removeIfStill(fs, path, seen);
      }
    } finally {
      await rm(mine, { force: true });
    }
    throw new HotspareError('ARCHIVE_LOCKED', `cannot lock archive ${root}`, { hint: `remove ${path} if no hotspare process uses the archive` });
  }

  async release(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

/** Volumes without hard links (some FUSE and SMB mounts) answer link() with one of these. */
const NO_HARD_LINKS: ReadonlySet<string> = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS']);

/**
 * Puts a lock in place whole: links `from` (holding `text`) to `path`, or, on a volume without
 * hard links, creates `path` exclusively and writes `text` (read in between, it names nobody:
 * see LOCK_WRITE_GRACE_MS). Throws EEXIST when a lock is there.
 */
async function putInPlace(fs: LockFs, from: string, path: string, text: string): Promise<void> {
  try {
    await fs.link(from, path);
  } catch (err) {
    if (!NO_HARD_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
    await writeFile(path, text, { flag: 'wx', mode: 0o644 });
  }
}

/** Milliseconds from `path`'s last write to `now`'s (a file just written on the same volume); 0 when either is gone. */
async function ageMs(path: string, now: string): Promise<number> {
  const [st, nowSt] = await Promise.all([stat(path).catch(() => undefined), stat(now).catch(() => undefined)]);
  return st === undefined || nowSt === undefined ? 0 : nowSt.mtimeMs - st.mtimeMs;
}

/** Throws ARCHIVE_LOCKED when the lock's holder may still write the archive; returns when it is stale. */
function refuseIfHeld(root: string, path: string, holder: LockHolder, me: LockHolder): void {
  const elsewhere = (holder.host !== undefined && holder.host !== me.host) || (holder.pidNs !== undefined && me.pidNs !== undefined && holder.pidNs !== me.pidNs);
  if (elsewhere) {
    const where = holder.host !== me.host ? `on host ${holder.host}` : `in another pid namespace (${holder.pidNs}) of host ${holder.host}`;
    throw new HotspareError('ARCHIVE_LOCKED', `archive ${root} is being written by ${holder.owner} (pid ${holder.pid}) ${where}`, {
      hint: `only one agent or receiver may write an archive; if no hotspare process there writes it any more (a renamed host or a recreated container counts as another), remove ${path}`,
    });
  }
  if (holder.bootId !== undefined && me.bootId !== undefined && holder.bootId !== me.bootId) return;
  // Our own pid: a lock this process took before (a reopened archive), or an earlier process's.
  if (holder.pid === me.pid) return;
  if (!processAlive(holder.pid)) return;
  const started = processStartTicks(holder.pid);
  if (holder.startTicks !== undefined && started !== undefined && holder.startTicks !== started) return;
  throw new HotspareError('ARCHIVE_LOCKED', `archive ${root} is being written by ${holder.owner} (pid ${holder.pid})`, {
    hint: 'only one agent or receiver may write an archive; stop the other one first',
  });
}

/**
 * Removes a stale lock, unless another process replaced it meanwhile (two starting at once
 * that both judged the same stale lock): it is moved aside first, and put back when what was
 * moved is not what was judged.
 */
async function removeIfStill(fs: LockFs, path: string, seen: string): Promise<void> {
  const aside = `${path}.${process.pid}.stale`;
  try {
    await rename(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  let moved = await readText(aside);
  // A lock created just now may not be written yet (a volume without hard links): its writer
  // writes into what was moved, so what to put back is read again until it names someone.
  for (let i = 0; i < LOCK_REREADS && moved !== undefined && moved !== seen && parseHolder(moved) === undefined; i++) {
    await new Promise((r) => setTimeout(r, LOCK_REREAD_MS));
    moved = await readText(aside);
  }
  // Put back; when another lock took its place meanwhile (EEXIST), that one stands.
  if (moved !== undefined && moved !== seen) await putInPlace(fs, aside, path, moved).catch(() => undefined);
  await rm(aside, { force: true });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** The holder a lock names; undefined for a file that names none (damaged: it is stale). */
function parseHolder(text: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(text) as Partial<LockHolder> | null;
    if (typeof parsed?.pid !== 'number' || !Number.isInteger(parsed.pid) || parsed.pid <= 0) return undefined;
    const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
    return { pid: parsed.pid, owner: str(parsed.owner) ?? 'another hotspare process', host: str(parsed.host), bootId: str(parsed.bootId), pidNs: str(parsed.pidNs), startTicks: str(parsed.startTicks) };
  } catch {
    return undefined;
  }
}
