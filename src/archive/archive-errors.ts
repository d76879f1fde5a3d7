import { isAbsolute, relative, resolve } from 'node:path';
import { HotspareError } from '../core/errors.js';

/** What a failed write to the archive volume means, by the system's error code. */
const BY_ERRNO: Readonly<Record<string, { code: string; what: string; hint: string }>> = {
  ENOSPC: {
    code: 'DISK_FULL',
    what: 'the archive volume is full',
    hint: 'free space on the archive volume or grow it; the replica retries and resumes exactly where its archive durably ends (nothing is skipped, nothing after that point was acknowledged)',
  },
  EDQUOT: {
    code: 'DISK_FULL',
    what: "the archive volume's quota is used up",
    hint: "raise the quota of the user writing the archive, or free space under it; the replica retries and resumes exactly where its archive durably ends",
  },
  EROFS: {
    code: 'ARCHIVE_READ_ONLY',
    what: 'the archive volume is read-only',
    hint: 'remount it read-write; a volume that turned read-only on its own had a disk error first (see the kernel log)',
  },
  EACCES: {
    code: 'ARCHIVE_PERMISSION',
    what: 'the archive refuses this user',
    hint: "give the user the agent (or receiver) runs as write access to the archive folder and everything in it",
  },
  EPERM: {
    code: 'ARCHIVE_PERMISSION',
    what: 'the archive refuses this operation',
    hint: "check the archive folder's owner, mode and attributes (chattr -i), and any security policy that applies to it",
  },
  EIO: {
    code: 'ARCHIVE_IO',
    what: 'the archive volume reported an I/O error',
    hint: 'check the disk and the kernel log; what was acknowledged before is durable, and the replica retries from there',
  },
};

/**
 * The operator's version of a failed write to the archive at `root`: a full volume, a
 * read-only or refusing one, or a failing disk get a code and a hint of their own (DISK_FULL,
 * ARCHIVE_READ_ONLY, ARCHIVE_PERMISSION, ARCHIVE_IO) instead of the bare system error.
 * HotspareErrors and anything else pass through unchanged.
 */
export function archiveWriteError(err: unknown, root: string): unknown {
  if (err instanceof HotspareError) return err;
  const errno = (err as NodeJS.ErrnoException | undefined)?.code;
  const meaning = errno === undefined ? undefined : BY_ERRNO[errno];
  if (meaning === undefined) return err;
  // The system's own message stays in the cause (logs print it after this one).
  const syscall = (err as NodeJS.ErrnoException).syscall;
  return new HotspareError(meaning.code, `${meaning.what}: ${root} (${errno}${syscall === undefined ? '' : ` in ${syscall}`})`, { cause: err, hint: meaning.hint });
}

/** System errors that say an archive file could not be read (not that it is absent). */
const READ_ERRNOS: ReadonlySet<string> = new Set(['EACCES', 'EPERM', 'EIO', 'ENOTDIR', 'EISDIR', 'ELOOP', 'ENAMETOOLONG']);

/**
 * A system error of a command that reads the archive at `root` (promote, status, verify) on a
 * file inside it, as ARCHIVE_READ with the file named: left bare, an unreadable metadata.json,
 * source.json or journal segment printed `error INTERNAL ... this is a bug in hotspare`.
 * Anything else passes through unchanged.
 */
export function archiveReadError(err: unknown, root: string): unknown {
  if (err instanceof HotspareError) return err;
  const e = err as NodeJS.ErrnoException | undefined;
  if (e?.code === undefined || !READ_ERRNOS.has(e.code) || typeof e.path !== 'string') return err;
  const inside = relative(resolve(root), resolve(e.path));
  if (inside.startsWith('..') || isAbsolute(inside)) return err;
  return new HotspareError('ARCHIVE_READ', `cannot read ${e.path} in the archive (${e.code}${e.syscall === undefined ? '' : ` in ${e.syscall}`})`, {
    cause: err,
    hint: 'check the archive volume (mount, disk) and that the user this command runs as may read every file in the archive',
  });
}
