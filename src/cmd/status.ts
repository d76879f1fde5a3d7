import { parseArgs } from 'node:util';
import { blake3Unavailable } from '../spool/block-hash.js';
import type { Logger } from '../platform/logger.js';
import { describeDamage } from '../standby/archive-scan.js';
import { inspectArchive, type ArchiveReport } from '../standby/verify-archive.js';
import { UsageError } from './cli-failure.js';
import { jsonOutput } from './json-output.js';
import { archiveReadError } from '../archive/archive-errors.js';

/** `hotspare status --archive DIR [--json]`: what the archive holds (no checksum pass). */
export async function statusCommand(argv: string[], _logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { archive: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  if (values.archive === undefined) throw new UsageError('status needs --archive DIR');
  const archive = values.archive;
  const report = await inspectArchive(archive, { checksums: false }).catch((err: unknown) => {
    throw archiveReadError(err, archive);
  });
  process.stdout.write(values.json === true ? jsonOutput(report) : formatReport(report));
  return 0;
}

export function formatReport(r: ArchiveReport): string {
  const p = r.primary as { serverId?: number; hostname?: string; version?: string; flavor?: string; serverUuid?: string | null };
  const lines = [
    `archive ${r.archive}: primary server_id ${p.serverId} on ${p.hostname} (${p.flavor ?? '?'} ${p.version}${p.serverUuid ? `, server_uuid ${p.serverUuid}` : ''})`,
    `  base backups: ${r.bases.length === 0 ? 'none' : r.bases.length}`,
    ...r.bases.map((b) => b.method === 'unreadable' ? `    ${b.id}: UNREADABLE: ${b.problems.join('; ')}` : `    ${b.id} (${b.method}) at ${b.binlog.file}:${b.binlog.position}${b.gtid ? ` GTID ${b.gtid}` : ''}, ${b.bytes} bytes${b.restorable ? '' : b.beforeGap ? ' (before a recorded gap or passed-over damage: later points are restored from a newer base)' : ' (not restorable: binlog missing)'}${b.problems.length ? ` DAMAGED: ${b.problems.join('; ')}` : ''}`),
    `  binlog: ${r.binlog.files} file(s), ${r.binlog.bytes} bytes${r.binlog.first ? `, ${r.binlog.first.file}:${r.binlog.first.position} .. ${r.binlog.last?.file}:${r.binlog.last?.position}` : ''}`,
    `  latest restorable: ${r.latestRestorable ? `${r.latestRestorable.commitTime} (${r.latestRestorable.file}:${r.latestRestorable.position}${r.latestRestorable.gtid ? ` GTID ${r.latestRestorable.gtid}` : ''})` : 'none'}`,
    `  newest event: ${r.newestEventTime ?? 'none'}`,
    `  gaps/damage: ${gapsAndDamage(r)}`,
    ...(r.passedOverDamages.length > 1 ? [`  damage passed over: ${r.passedOverDamages.map(describeDamage).join('; ')}`] : []),
    ...(r.endDamage !== undefined && r.endDamage !== r.firstBad ? [`  damage ending the archive: ${describeDamage(r.endDamage)} (no base after it to restart from: a promotion to the end is refused; --until-position before it is reached)`] : []),
    ...(r.recordedGaps.length === 0
      ? []
      : [
          `  recorded gaps: ${r.recordedGaps.length} (binlog the archive does not hold: purged before it was archived, or written while the primary was not itself; promotion never replays across one)`,
          ...r.recordedGaps.map((g) => `    ${g.after.file}:${g.after.position} .. ${g.resumeAt.file}:${g.resumeAt.position}, chain restarted from base ${g.base} (recorded ${g.recordedAt}: ${g.reason})`),
        ]),
    ...(r.earlierBinlog.files === 0
      ? []
      : [
          `  binlog before the last chain restart (a recorded gap, or damage a newer base passes over): ${r.earlierBinlog.files} file(s), ${r.earlierBinlog.bytes} bytes${r.earlierBinlog.first ? `, ${r.earlierBinlog.first} .. ${r.earlierBinlog.last}` : ''} (kept: promote --until reaches points before the damage from an older base; points before a recorded gap, only by hand)`,
        ]),
    `  last heard from the primary: ${r.lastHeard === undefined ? 'not recorded' : `${r.lastHeard.at} at ${r.lastHeard.primary.file}:${r.lastHeard.primary.position}${r.lastHeard.caughtUp ? ', archive caught up' : ''}`}`,
    // An archive promoted from follows a primary that was failed over: said before anything an
    // operator could take for the live primary's state.
    ...(r.promoted === undefined
      ? []
      : [`  PROMOTED: at ${r.promoted.promotedAt} into ${r.promoted.target} (${r.promoted.stopAt.file}:${r.promoted.stopAt.position}${r.promoted.gtid ? ` GTID ${r.promoted.gtid}` : ''}); its primary's agent is refused (ARCHIVE_PROMOTED): the new primary streams to a new archive`]),
    `  spool sources: ${r.spool.length ? '' : 'none'}`,
    ...r.spool.map((s) => `    ${s.name} (${s.path}): last change ${s.lastChange ?? 'none recorded'}`),
  ];
  for (const c of r.spoolChecks ?? []) {
    const verified = c.unchecked === 0 ? `${c.blocks} blocks verified` : `${c.blocks - c.unchecked} blocks verified, ${c.unchecked} NOT CHECKED (named by BLAKE3, and ${blake3Unavailable().why})`;
    lines.push(`  spool ${c.source}: ${c.problems.length === 0 ? verified : `DAMAGED: ${c.problems.slice(0, 3).join('; ')}`}`);
  }
  if (r.partialTail) lines.push(`  incomplete transaction at the tail: ${r.partialTail.file}:${r.partialTail.from}..${r.partialTail.to} (not restorable)`);
  if (r.partialBases.length) lines.push(`  interrupted base backups (ignored): ${r.partialBases.join(', ')}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The summary line: the first damage, and the recorded gaps, which firstBad does not hold (a
 * recorded gap is no damage: the chain restarted at a newer base), so that it never says
 * "none" above a list of them.
 */
function gapsAndDamage(r: ArchiveReport): string {
  const gaps = r.recordedGaps.length;
  const recorded = `${gaps} recorded gap${gaps === 1 ? '' : 's'} (below)`;
  if (r.firstBad !== undefined) return gaps === 0 ? describeDamage(r.firstBad) : `${describeDamage(r.firstBad)}; ${recorded}`;
  return gaps === 0 ? 'none' : `${recorded}, no damage`;
}
