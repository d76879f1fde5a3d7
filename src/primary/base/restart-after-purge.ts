import type { ArchiveFiles } from '../../archive/archive-files.js';
import { compareBinlogNames } from '../../archive/archive-layout.js';
import { listBaseBackups, type BaseBackupMetadata } from '../../archive/base-catalog.js';
import { recordGap, type RecordedGap } from '../../archive/binlog-gaps.js';
import type { PrimaryConnection } from '../../config/load.js';
import type { BaseMethod } from '../../config/schema.js';
import { formatBinlogPosition, type BinlogPosition } from '../../core/binlog-position.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { MysqlProbe } from '../mysql-probe.js';
import { takeBase } from './take-base.js';
import { timelineBreak } from './timeline-break.js';

export interface RestartAfterPurgeInput {
  files: ArchiveFiles;
  primary: PrimaryConnection;
  /** Where the archive's chain ends: the binlog the primary no longer has starts here. */
  resume: BinlogPosition;
  /** Why (the BINLOG_PURGED message). */
  reason: string;
  /** The log line's code when it is not a purge (the reason says what it is). */
  code?: string;
  /** How a new base is taken when none after the gap exists (config `base.method`). */
  method: BaseMethod;
  clock: Clock;
  /** Aborts the new base (the agent stopping). */
  signal?: AbortSignal;
  logger: Logger;
}

/**
 * The way out of BINLOG_PURGED: the archive restarts its binlog chain at a base backup taken
 * after the purged binlog, at that base's file, position 4 (whole files from the base on, as
 * for a new archive). It uses the newest base whose file is later than the archive's end and
 * still on the primary, or takes one now; records the gap durably (state/gaps.json) before a
 * byte of the new chain is written, so that the writer accepts the jump and status, verify and
 * promote see it; and returns where the dump starts. Loud at warn: data between the two points
 * is not in the archive, and no promotion can reach a point inside the gap.
 */
export async function restartChainAfterPurge(input: RestartAfterPurgeInput): Promise<BinlogPosition> {
  const { files, resume, logger } = input;
  const probe = await MysqlProbe.connect(input.primary);
  const primaryFiles = await probe.binlogFiles().finally(() => probe.close());
  const onPrimary = new Set(primaryFiles.map((f) => f.name));
  const primaryOldest = primaryFiles[0]?.name ?? '';
  // Not a purge but names that started again: a new chain in this archive would mix two
  // timelines under the same names (the writer refuses an archived name, after a base and a gap
  // were written for nothing, and a promotion could take the wrong one).
  const broken = timelineBreak(primaryFiles, resume);
  if (broken !== undefined) throw broken;
  const later = (await listBaseBackups(files)).filter((b) => compareBinlogNames(b.binlog.file, resume.file) > 0 && onPrimary.has(b.binlog.file));
  let base: BaseBackupMetadata | undefined = later[later.length - 1];
  if (base === undefined) {
    logger.warn(
      { code: input.code ?? 'BINLOG_PURGED', archiveEnd: resume, primaryOldest },
      input.code === undefined
        ? `binlog gap: the primary purged binlog the archive needs after ${formatBinlogPosition(resume)} (its oldest file is ${primaryOldest}); taking a new base backup to restart the archive's chain`
        : `binlog gap after ${formatBinlogPosition(resume)}: ${input.reason}; taking a new base backup to restart the archive's chain`,
    );
    base = await takeBase(input.method, { primary: input.primary, files, clock: input.clock, logger, ...(input.signal === undefined ? {} : { signal: input.signal }) });
  }
  const gap: RecordedGap = {
    after: resume,
    resumeAt: { file: base.binlog.file, position: 4 },
    base: base.id,
    primaryOldest,
    recordedAt: new Date(input.clock.nowMs()).toISOString(),
    reason: input.reason,
  };
  await recordGap(files, gap);
  logger.warn(
    { code: 'BINLOG_GAP_RECORDED', gap },
    `binlog gap recorded: the archive's chain restarts at ${formatBinlogPosition(gap.resumeAt)} from base ${base.id}; transactions between ${formatBinlogPosition(resume)} and it are not archived, and no promotion can stop inside the gap`,
  );
  return gap.resumeAt;
}
