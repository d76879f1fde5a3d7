import type { ArchiveFiles } from '../archive/archive-files.js';
import { describePrimary, samePrimary, type PrimaryIdentity } from '../archive/archive-identity.js';
import { PRIMARY_BREAK_PATH, readPrimaryBreak, recordPrimaryBreak, type PrimaryBreak } from '../archive/primary-break.js';
import type { PrimaryConnection } from '../config/load.js';
import { HotspareError } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';
import { MysqlProbe } from './mysql-probe.js';

export interface ContinuityInput {
  primary: PrimaryConnection;
  /** The primary this archive holds the binlog of (the agent's preflight, which claimed it). */
  identity: PrimaryIdentity;
  /** The replica's archive. */
  files: ArchiveFiles;
  /** The archive holds binlog (a new one, its base still to come, has no continuity to lose). */
  archiveHolds: boolean;
  /** Breaks the agent saw this run that this archive has not been told of (its replica was away). */
  unrecorded: readonly PrimaryBreak[];
  nowIso: string;
  /**
   * Called with a break seen now (for every other replica's archive), and again with
   * `recorded` once this archive holds it.
   */
  onBreak: (brk: PrimaryBreak, recorded: boolean) => void;
  /** Called when the primary is itself: a break seen after this is another episode. */
  onItself: () => void;
  logger: Logger;
}

/**
 * At a dump's start: is the primary still the one whose binlog the archive holds, writing a
 * binlog? If not, the archive records a PrimaryBreak and the dump is refused (BINLOG_DISABLED,
 * or ARCHIVE_FOREIGN: state error, retried). Once it is itself again, the break recorded in
 * the archive is returned: the caller restarts the archive's chain at a new base, since what
 * the primary wrote meanwhile is in no binlog this archive can hold, and nothing in the names
 * that go on shows it (the agent started at its identity once only, and a rehearsal's primary,
 * restarted under another log_bin basename and back, lost that period's writes silently).
 */
export async function checkPrimaryContinuity(input: ContinuityInput): Promise<PrimaryBreak | undefined> {
  const probe = await MysqlProbe.connect(input.primary);
  let now: Awaited<ReturnType<MysqlProbe['identityNow']>>;
  try {
    now = await probe.identityNow();
  } finally {
    await probe.close();
  }
  const refusal = !now.logBin
    ? new HotspareError('BINLOG_DISABLED', 'the primary runs without a binlog (log_bin is OFF): what it writes now reaches no archive', {
        hint: "restart it with log_bin (and binlog_format=ROW) as before; the archive then restarts its chain at a new base backup, since what was written meanwhile is in no binlog",
      })
    : !samePrimary(now.identity, input.identity)
      ? new HotspareError('ARCHIVE_FOREIGN', `the primary now runs as ${describePrimary(now.identity)}, not as ${describePrimary(input.identity)}, whose binlog this archive holds`, {
          hint: 'if it was restarted with another server_id, log_bin basename or (MariaDB) hostname (a container recreated: give it a fixed hostname), restore them (the archive then restarts its chain at a new base backup, since what was written meanwhile is in no binlog it holds); if it is another primary, point the replica at a new, empty archive',
        })
      : undefined;
  if (refusal !== undefined) {
    const brk: PrimaryBreak = { at: input.nowIso, reason: refusal.message };
    input.onBreak(brk, false);
    if (input.archiveHolds && (await recorded(input, brk))) input.onBreak(brk, true);
    throw refusal;
  }
  input.onItself();
  if (!input.archiveHolds) return undefined;
  for (const brk of input.unrecorded) {
    // Known to this run though the archive cannot keep it: its chain restarts all the same.
    if (!(await recorded(input, brk))) return brk;
  }
  return readPrimaryBreak(input.files);
}

/**
 * Records `brk` in the archive; false (logged) when a receiver from before the record cannot
 * keep it: the break then lives in this run's memory only.
 */
async function recorded(input: ContinuityInput, brk: PrimaryBreak): Promise<boolean> {
  if (await recordPrimaryBreak(input.files, brk)) return true;
  input.logger.warn({ code: 'PRIMARY_BREAK_UNRECORDED', reason: brk.reason }, `the receiver cannot keep ${PRIMARY_BREAK_PATH} (a version from before it): the primary's break is known to this run of the agent only; upgrade the receiver`);
  return false;
}
