import { mkdir, stat } from 'node:fs/promises';
import { asyncScheduler, exhaustMap, filter, from, interval, merge, mergeMap, take, throwError, type Observable, type SchedulerLike } from 'rxjs';
import { DEFAULT_ARCHIVE_ROOT_CHECK_INTERVAL_MS } from '../../config/defaults.js';
import { claimArchive, readArchiveIdentity, type PrimaryIdentity } from '../../archive/archive-identity.js';
import { archiveWriteError } from '../../archive/archive-errors.js';
import { LocalArchiveFiles } from '../../archive/archive-files.js';
import { removeDeadPartialBases } from '../../archive/base-catalog.js';
import { ArchiveLock } from '../../archive/archive-lock.js';
import { BinlogArchiveWriter } from '../../archive/binlog-archive-writer.js';
import { HotspareError } from '../../core/errors.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { ReplicaSession, ReplicaTarget } from '../replica-target.js';

export interface FileTargetOptions {
  name: string;
  path: string;
  logger: Logger;
  clock: Clock;
  syncBatchBytesMax: number;
  /** See TargetDependencies.missingArchive. */
  missingArchive?: (() => HotspareError | undefined) | undefined;
  /** DEFAULT_ARCHIVE_ROOT_CHECK_INTERVAL_MS unless set. */
  rootCheckIntervalMs?: number;
  scheduler?: SchedulerLike;
}

/**
 * Errors once the folder at `path` is no longer the one opened (`root`): gone, or another in its
 * place. With `missing`'s error when it has one (the same ARCHIVE_MISSING the next open refuses
 * with), else a plain ARCHIVE_MISSING. Emits nothing otherwise.
 */
function rootGone$(path: string, root: { dev: number; ino: number }, missing: FileTargetOptions['missingArchive'], intervalMs: number, scheduler: SchedulerLike = asyncScheduler): Observable<never> {
  return interval(intervalMs, scheduler).pipe(
    exhaustMap(() => from(stat(path).then((now) => now.dev === root.dev && now.ino === root.ino, () => false))),
    filter((same) => !same),
    take(1),
    mergeMap(() =>
      throwError(
        () =>
          missing?.() ??
          new HotspareError('ARCHIVE_MISSING', `the archive folder ${path} is gone or another is in its place, while the agent wrote it: moved, removed, or its volume unmounted`, {
            hint: 'mount the volume or move the archive back (streaming goes on where it stood)',
          }),
      ),
    ),
  );
}

/** An archive volume mounted on the agent's host: events go straight into the archive folder. */
export class FileTarget implements ReplicaTarget {
  readonly type = 'file';
  readonly name: string;

  constructor(readonly options: FileTargetOptions) {
    this.name = options.name;
  }

  async open(identity: PrimaryIdentity): Promise<ReplicaSession> {
    try {
      return await this.#open(identity);
    } catch (err) {
      throw archiveWriteError(err, this.options.path);
    }
  }

  async #open(identity: PrimaryIdentity): Promise<ReplicaSession> {
    const { path, logger, clock } = this.options;
    // Checked before anything is created: an archive moved away (whose old path mkdir would
    // make again, in the way of moving it back) or a volume not mounted (its mount point).
    if ((await readArchiveIdentity(path)) === undefined) {
      const missing = this.options.missingArchive?.();
      if (missing !== undefined) throw missing;
    }
    await mkdir(path, { recursive: true });
    // Another primary's archive is refused before its lock is touched; the identity of a new
    // archive is written only under the lock (two agents of different primaries that found
    // the folder empty at once would both have written theirs, the last rename winning).
    if ((await readArchiveIdentity(path)) !== undefined) await claimArchive(path, identity, new Date(clock.nowMs()).toISOString());
    await mkdir(`${path}/state`, { recursive: true });
    const lock = await ArchiveLock.acquire(path, `agent replica ${this.name}`);
    try {
      await claimArchive(path, identity, new Date(clock.nowMs()).toISOString());
      const files = new LocalArchiveFiles(path, { rootMustExist: true });
      await removeDeadPartialBases(files, logger);
      const writer = await BinlogArchiveWriter.open(path, { logger, clock, syncBatchBytesMax: this.options.syncBatchBytesMax });
      const root = await stat(path);
      return {
        resume: writer.resume,
        append: (record) => writer.append(record),
        get pendingBytes() {
          return writer.pendingBytes;
        },
        // The archive folder moved away or replaced ends the session (ARCHIVE_MISSING): the
        // next open finds what is at the path now.
        durable$: merge(writer.durable$, rootGone$(path, root, this.options.missingArchive, this.options.rootCheckIntervalMs ?? DEFAULT_ARCHIVE_ROOT_CHECK_INTERVAL_MS, this.options.scheduler)),
        files,
        close: async () => {
          try {
            await writer.close();
          } finally {
            await lock.release();
          }
        },
      };
    } catch (err) {
      await lock.release();
      throw err;
    }
  }
}
