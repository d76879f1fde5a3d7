import { join } from 'node:path';

/**
 * Paths inside an archive volume. `archive.json`, `binlog/`, `base/` and `files/` are the
 * contract (../shared/contract.md); `state/` is ours: resume checkpoints, locks, indexes.
 */
export class ArchiveLayout {
  constructor(readonly root: string) {}

  get identityFile(): string {
    return join(this.root, 'archive.json');
  }
  get binlogDir(): string {
    return join(this.root, 'binlog');
  }
  binlogFile(name: string): string {
    return join(this.binlogDir, name);
  }
  /**
   * A new binlog file while the one before it is not yet durable: the writer fills it under
   * this name and renames it once its predecessor is fsynced. Never a binlog file name (a
   * leading dot, no digits at the end), so every reader passes it by; the writer removes a
   * leftover one on open (nothing in it was ever reported durable).
   */
  binlogPartialFile(name: string): string {
    return join(this.binlogDir, `.${name}${BINLOG_PARTIAL_SUFFIX}`);
  }
  get baseDir(): string {
    return join(this.root, 'base');
  }
  get filesDir(): string {
    return join(this.root, 'files');
  }
  get stateDir(): string {
    return join(this.root, 'state');
  }
  /** The binlog writer's last known transaction boundary; a hint that saves a full tail scan. */
  get binlogCheckpointFile(): string {
    return join(this.stateDir, 'binlog-checkpoint.json');
  }
  /** Gaps in the binlog chain, recorded when the archive restarted at a new base (binlog-gaps.ts). */
  get gapsFile(): string {
    return join(this.stateDir, 'gaps.json');
  }
  /** What the archive last heard from the primary (time, head position): the loss window's end. */
  get heardFile(): string {
    return join(this.stateDir, 'last-heard.json');
  }
  /** Written by a promotion to the end: the archive's primary was failed over (promotion-fence.ts). */
  get promotedFile(): string {
    return join(this.stateDir, 'promoted.json');
  }
}

/** The ending of a binlog file still written under its temporary name (binlogPartialFile). */
export const BINLOG_PARTIAL_SUFFIX = '.partial';

/** Binlog file names as the server makes them: base name, dot, six or more digits. */
export const BINLOG_FILE_NAME = /^[A-Za-z0-9._-]{1,200}\.\d{6,}$/;

/** Orders binlog file names by their numeric suffix. */
export function compareBinlogNames(a: string, b: string): number {
  const sa = Number(a.slice(a.lastIndexOf('.') + 1));
  const sb = Number(b.slice(b.lastIndexOf('.') + 1));
  // Code-unit order for equal numbers: the same everywhere (localeCompare follows the locale,
  // and costs a collator call on the writer's path).
  if (sa !== sb) return sa - sb;
  return a < b ? -1 : a > b ? 1 : 0;
}

// Pure, so the framer (src/core) names the next file too; kept here for the archive's users.
export { nextBinlogName } from '../core/binlog-position.js';
