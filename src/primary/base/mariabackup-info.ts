import type { BinlogPosition } from '../../core/binlog-position.js';

/**
 * Parses mariabackup's `xtrabackup_info` (lines of `key = value`) into a record. Pure: the
 * physical base backup reads the file from its `--extra-lsndir` and keeps every key in the
 * base's metadata.
 */
export function parseXtrabackupInfo(text: string): Record<string, string> {
  const info: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf(' = ');
    if (at <= 0) continue;
    const key = line.slice(0, at).trim();
    if (key !== '') info[key] = line.slice(at + 3).trim();
  }
  return info;
}

/**
 * The binlog coordinates and GTID mariabackup recorded at BACKUP STAGE BLOCK_COMMIT (no commit
 * could happen, so they are the copy's), from `binlog_pos`, e.g.
 * `filename 'mysql-bin.000002', position '342', GTID of the last change '0-1-7'`.
 * Undefined when the key is absent or unreadable (binlog off on the primary).
 */
export function binlogPositionOfInfo(info: Record<string, string>): { binlog: BinlogPosition; gtid: string } | undefined {
  const text = info['binlog_pos'];
  if (text === undefined) return undefined;
  const match = /^filename '([^']+)', position '(\d+)'(?:, GTID of the last change '([^']*)')?/.exec(text);
  if (match === null) return undefined;
  return { binlog: { file: match[1] ?? '', position: Number(match[2]) }, gtid: match[3] ?? '' };
}
