import { compareBinlogNames } from '../../archive/archive-layout.js';
import { HotspareError } from '../../core/errors.js';
import type { BinlogFileInfo } from '../mysql-probe.js';

/**
 * Whether the primary's binlog (`SHOW BINARY LOGS`, oldest first, the head last) is another
 * timeline than the archive's, which ends at `archiveEnd`: names that started again (RESET
 * MASTER, another server) leave the archive's end file missing with an older or equal name still
 * there (a purge removes the oldest files first), or present but shorter than the archive holds
 * of it (that also covers a head in an older file: it would be listed after the end file). A
 * base or a new chain of that timeline in this archive would be restored with the other
 * timeline's binlog of the same names. The error to refuse with, or undefined.
 */
export function timelineBreak(primaryFiles: readonly BinlogFileInfo[], archiveEnd: { file: string; position: number }): HotspareError | undefined {
  const oldest = primaryFiles[0]?.name;
  const same = primaryFiles.find((f) => f.name === archiveEnd.file);
  const hint = { hint: "this archive cannot go on under the same names: point the replica at a new, empty archive folder (the agent takes its first base there; an agent restarted before that refuses an empty archive where this one stood, ARCHIVE_MISSING, unless the folder's path is new: remove the stateDir's durable-points.json then); the old one keeps what it holds for promotion" };
  if (same === undefined && oldest !== undefined && compareBinlogNames(oldest, archiveEnd.file) <= 0) {
    return new HotspareError('BINLOG_GAP', `the primary's binlog names started again: the archive ends in ${archiveEnd.file}, which the primary does not have, and its oldest file is ${oldest} (RESET MASTER, or another server)`, hint);
  }
  // The size SHOW BINARY LOGS gives a file it cannot open is 0: not taken for a short file.
  if (same !== undefined && same.sizeBytes > 0 && same.sizeBytes < archiveEnd.position) {
    return new HotspareError('BINLOG_GAP', `the primary holds only ${same.sizeBytes} bytes of ${archiveEnd.file}, of which the archive holds ${archiveEnd.position} (a tail the primary lost in a crash, or another timeline): the archive has gone past the primary`, hint);
  }
  return undefined;
}
