import { mkdir } from 'node:fs/promises';
import { claimArchive, type PrimaryIdentity } from '../../archive/archive-identity.js';
import { archiveWriteError } from '../../archive/archive-errors.js';
import { LocalArchiveFiles } from '../../archive/archive-files.js';
import { baseInProgress, listPartialBaseBackups } from '../../archive/base-catalog.js';
import { ArchiveLock } from '../../archive/archive-lock.js';
import { BinlogArchiveWriter } from '../../archive/binlog-archive-writer.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import type { ReplicaSession, ReplicaTarget } from '../replica-target.js';

export interface FileTargetOptions {
  name: string;
  path: string;
  logger: Logger;
  clock: Clock;
  syncBatchBytesMax: number;
}

/**
 * Removes the folders of base backups that never completed. Only a process holding the
 * archive's lock writes a base into it, so with the lock held and no base running in this
 * process (a session reopened while one runs may be looking at its folder), every partial folder
 * was left by one that died (SIGKILL, a crash, a power cut) and would otherwise stay, as large as
 * the base. Best effort: a folder that cannot be removed (another user's) is left with a warning,
 * never keeping the replica from streaming.
 */
async function removeStalePartialBases(files: LocalArchiveFiles, logger: Logger): Promise<void> {
  if (baseInProgress()) return;
  for (const partial of await listPartialBaseBackups(files).catch(() => [] as string[])) {
    try {
      await files.remove(`base/${partial}`);
      logger.warn({ folder: `base/${partial}` }, 'removed what a base backup that did not complete left in the archive');
    } catch (err) {
      logger.warn({ folder: `base/${partial}`, err }, 'could not remove what a base backup that did not complete left in the archive; it stays (it never counts as a base)');
    }
  }
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
    await mkdir(path, { recursive: true });
    await claimArchive(path, identity, new Date(clock.nowMs()).toISOString());
    await mkdir(`${path}/state`, { recursive: true });
    const lock = await ArchiveLock.acquire(path, `agent replica ${this.name}`);
    try {
      const files = new LocalArchiveFiles(path);
      await removeStalePartialBases(files, logger);
      const writer = await BinlogArchiveWriter.open(path, { logger, clock, syncBatchBytesMax: this.options.syncBatchBytesMax });
      return {
        resume: writer.resume,
        append: (record) => writer.append(record),
        get pendingBytes() {
          return writer.pendingBytes;
        },
        durable$: writer.durable$,
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
