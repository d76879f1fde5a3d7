import { compareBinlogPositions, formatBinlogPosition, type BinlogPosition } from '../core/binlog-position.js';
import type { CommitPoint } from './archive-scan.js';

/** Where a promotion should stop: the end of the archive, or a point in time, GTID or position. */
export type TargetSpec =
  | { kind: 'end' }
  | { kind: 'time'; atMs: number }
  | { kind: 'gtid'; gtid: string }
  | { kind: 'position'; at: BinlogPosition };

export function describeTarget(target: TargetSpec): string {
  switch (target.kind) {
    case 'end':
      return 'the end of the archive';
    case 'time':
      return `time ${new Date(target.atMs).toISOString()}`;
    case 'gtid':
      return `GTID ${target.gtid}`;
    case 'position':
      return `position ${formatBinlogPosition(target.at)}`;
  }
}

/**
 * Follows the archive's commits in log order and finds, for a target, the last transaction
 * committed at or before it (`last`) and the first one after it (`next`). Replay stops right
 * after `last`; a base backup is usable only if it does not already contain `next`.
 * O(1) memory: the archive may hold millions of transactions.
 */
export class StopPointResolver {
  last: CommitPoint | undefined;
  next: CommitPoint | undefined;
  #found = false;

  constructor(readonly target: TargetSpec) {}

  /** True once the target is settled (the commit after it has been seen, or the GTID found). */
  get settled(): boolean {
    return this.next !== undefined || this.#found;
  }

  observe(commit: CommitPoint): void {
    if (this.next !== undefined) return;
    if (this.#found) {
      this.next = commit;
      return;
    }
    const t = this.target;
    const after =
      (t.kind === 'time' && commit.timestampS * 1000 > t.atMs) ||
      (t.kind === 'position' && compareBinlogPositions(commit, t.at) > 0);
    if (after) {
      this.next = commit;
      return;
    }
    this.last = commit;
    if (t.kind === 'gtid' && commit.gtid === t.gtid) this.#found = true;
  }

  /** Whether the archive reached the target (for a GTID: holds that transaction). */
  get reached(): boolean {
    return this.target.kind === 'gtid' ? this.#found : true;
  }
}
