import { compareBinlogPositions, formatBinlogPosition, type BinlogPosition } from '../core/binlog-position.js';
import { HotspareError } from '../core/errors.js';
import type { ChainRestart, CommitPoint } from './archive-scan.js';

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
    if (commit.chainRestart !== undefined) {
      this.#chainRestart(commit.chainRestart, commit.timestampS);
      return;
    }
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

  /**
   * The archive's chain restarts here after a recorded gap or damage: a target before it or
   * inside it cannot be reached (the binlog across it is not archived, or cannot be trusted, and
   * promotion restores from the chain that starts here); past it, commits before it are no
   * longer candidates.
   */
  #chainRestart(restart: ChainRestart, resumedAtS: number): void {
    const refuse = (why: string): never => {
      const earlier =
        restart.kind === 'gap'
          ? 'an earlier point can only be restored by hand, from an older base and the binlog files before the gap'
          : 'a point before the damage is reached with --until-position at or before it (from an older base); one inside it needs the damaged files mended from another standby\'s archive';
      throw new HotspareError('POINT_UNREACHABLE', `the archive cannot reach ${describeTarget(this.target)}: ${why}`, {
        hint: `promotion restores from the chain that restarts at ${formatBinlogPosition(restart.resumeAt)} (base ${restart.base}) or later; ${earlier}`,
      });
    };
    if (this.settled) refuse(`it lies before ${restart.after}`);
    const t = this.target;
    if ((t.kind === 'time' && t.atMs < resumedAtS * 1000) || (t.kind === 'position' && compareBinlogPositions(t.at, restart.resumeAt) < 0)) {
      refuse(`it falls inside ${restart.after}, before the chain restarts`);
    }
    this.last = undefined;
  }

  /** Whether the archive reached the target (for a GTID: holds that transaction). */
  get reached(): boolean {
    return this.target.kind === 'gtid' ? this.#found : true;
  }
}

/**
 * Refuses a target that lies before the archive's chain begins, with no archived commit at or
 * before it: what the primary committed between that point and its first archived file is
 * unknown, so no base can be shown to hold exactly the state at the target (a base taken
 * later would silently include those commits).
 */
export function refuseBeforeArchiveStart(target: TargetSpec, last: CommitPoint | undefined, first: { name: string; firstEventS: number | undefined } | undefined): void {
  if (last !== undefined || first === undefined) return;
  const before =
    (target.kind === 'time' && first.firstEventS !== undefined && target.atMs < first.firstEventS * 1000) ||
    (target.kind === 'position' && compareBinlogPositions(target.at, { file: first.name, position: 4 }) < 0);
  if (!before) return;
  const begins = first.firstEventS === undefined ? first.name : `${first.name}, begun ${new Date(first.firstEventS * 1000).toISOString()}`;
  throw new HotspareError('POINT_UNREACHABLE', `the archive cannot reach ${describeTarget(target)}: it lies before the archive's first binlog file ${begins}`, {
    hint: 'run `hotspare status` for what the archive covers; an earlier point needs a base backup and binlog from before it',
  });
}
