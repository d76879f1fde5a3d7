import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseBinlogPosition } from '../core/binlog-position.js';
import type { Logger } from '../platform/logger.js';
import { parseMysqlUrl } from '../standby/mysql-url.js';
import { HotspareError } from '../core/errors.js';
import { promote, type PromotionReport } from '../standby/promote.js';
import { restoreFilesOnly, type FilesOnlyReport } from '../standby/restore-files-only.js';
import { describeDamage } from '../standby/archive-scan.js';
import { EXPECTED_SKIP_CODES, type SpoolRestoreResult } from '../standby/spool-restore.js';
import { hookCommandLine } from '../standby/promotion-hooks.js';
import type { TargetSpec } from '../standby/stop-point.js';
import { UsageError } from './cli-failure.js';
import { parseTimeOption } from './time-option.js';
import { shellWord } from '../core/shell-word.js';
import { PROMOTED_PATH } from '../archive/promotion-fence.js';
import { archiveReadError } from '../archive/archive-errors.js';

/**
 * `hotspare promote --archive DIR --target MYSQL_URL [--until ...] [--files-root DIR] [--no-hooks] [--fence] [--dry-run] [--json] [--replace]
 * [--target-datadir DIR --target-start CMD] [--extractor hotspare|mbstream]` (the last three for a physical base);
 * `hotspare promote --files-only --archive DIR [--until ...] [--source NAME ...] [--files-root DIR] [--dry-run] [--json]`: the spool
 * files alone, as of the point a promotion takes them.
 */
export async function promoteCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      archive: { type: 'string' },
      target: { type: 'string' },
      until: { type: 'string' },
      'until-gtid': { type: 'string' },
      'until-position': { type: 'string' },
      'files-root': { type: 'string' },
      'dry-run': { type: 'boolean' },
      json: { type: 'boolean' },
      replace: { type: 'boolean' },
      'target-datadir': { type: 'string' },
      'target-start': { type: 'string' },
      extractor: { type: 'string' },
      'files-only': { type: 'boolean' },
      source: { type: 'string', multiple: true },
      'no-hooks': { type: 'boolean' },
      fence: { type: 'boolean' },
    },
    strict: true,
  });
  if (values['files-only'] === true) {
    if (values.archive === undefined) throw new UsageError('promote --files-only needs --archive DIR');
    const databaseOptions = (['target', 'replace', 'target-datadir', 'target-start', 'extractor'] as const).filter((o) => values[o] !== undefined);
    if (databaseOptions.length > 0) throw new UsageError(`--files-only restores no database: leave out ${databaseOptions.map((o) => `--${o}`).join(', ')}`);
    // In place, a source's folder is made the archive's point again: what an application wrote
    // there since is removed. So it is done only to the sources named.
    if (values['files-root'] === undefined && values.source === undefined) {
      throw new UsageError("--files-only without --files-root restores in place, replacing each source's folder (files written there since are removed): name the sources to replace with --source NAME, or restore elsewhere with --files-root DIR");
    }
    const archive = values.archive;
    return filesOnlyCommand(archive, parseTargetSpec(values), values['files-root'], values.source, values['dry-run'] === true, values.json === true, logger).catch((err: unknown) => {
      throw archiveReadError(err, archive);
    });
  }
  if (values.source !== undefined) throw new UsageError('--source belongs to --files-only');
  if (values.archive === undefined || values.target === undefined) throw new UsageError('promote needs --archive DIR and --target MYSQL_URL (or --files-only for the spool files alone)');
  const target = parseTargetSpec(values);
  const extractor = values.extractor;
  if (extractor !== undefined && extractor !== 'hotspare' && extractor !== 'mbstream') throw new UsageError(`--extractor: expected hotspare or mbstream, got ${JSON.stringify(extractor)}`);
  const url = parseMysqlUrl(values.target);
  const archiveRoot = values.archive;
  const report = await promote({
    archiveRoot: values.archive,
    target,
    credentials: url,
    targetDescription: url.describe,
    targetUrl: url.redacted,
    replace: values.replace === true,
    dryRun: values['dry-run'] === true,
    filesRoot: values['files-root'],
    targetDatadir: values['target-datadir'],
    targetStart: values['target-start'],
    extractor,
    skipHooks: values['no-hooks'] === true,
    fence: values.fence === true,
    logger,
  }).catch((err: unknown) => {
    throw archiveReadError(err, archiveRoot);
  });
  process.stdout.write(values.json === true ? `${JSON.stringify({ dryRun: values['dry-run'] === true, ...report }, null, 2)}\n` : formatReport(report, values['dry-run'] === true, target.kind === 'end'));
  const notRestored = unexpectedlySkipped(report.filesRestored);
  if (notRestored.length > 0) {
    // The database is promoted and writable; a spool source could not be restored (its own damage).
    throw new HotspareError('SPOOL_NOT_RESTORED', `the server is promoted, but ${notRestored.length} spool source(s) were not restored: ${notRestored.map((f) => `${f.name}: ${f.skipped ?? ''}`).join('; ')}`, {
      hint: `run \`hotspare verify\` on the archive; fix the cause and restore them with \`${filesOnlyCommandLine(values.archive, target, values['files-root'], notRestored.map((f) => f.name))}\`${values['files-root'] === undefined ? ' (in place: it replaces those folders, removing what was written there since; run it before applications write there, or restore with --files-root and merge)' : ''}${target.kind === 'end' ? ' (to the archive\'s end as it is then)' : ''}, or from another copy`,
    });
  }
  const failed = report.hooks.filter((h) => h.exitCode !== 0);
  if (failed.length > 0) {
    // The database and files are promoted; an application fix-up did not run cleanly.
    throw new HotspareError('HOOK_FAILED', `the server is promoted, but ${failed.length} post-promotion hook(s) failed: ${failed.map((h) => `${h.source}: ${h.run}`).join('; ')}`, {
      hint: `see the log for their output; fix the cause and run them by hand as they ran: ${values.json === true ? 'hooks[].env in the report holds the HOTSPARE_* environment of each' : 'the report\'s "run again:" line under each failed hook has its HOTSPARE_* environment'}`,
    });
  }
  return 0;
}

/**
 * The `promote --files-only` command that restores `sources` as this promotion would have: its
 * archive and destination (absolute, so it runs from anywhere), and its point (a time as the
 * instant it was read as, so another shell's time zone does not move it).
 */
export function filesOnlyCommandLine(archive: string, target: TargetSpec, filesRoot: string | undefined, sources: readonly string[]): string {
  const words = ['hotspare', 'promote', '--files-only', '--archive', resolve(archive)];
  if (target.kind === 'time') words.push('--until', new Date(target.atMs).toISOString());
  else if (target.kind === 'gtid') words.push('--until-gtid', target.gtid);
  else if (target.kind === 'position') words.push('--until-position', `${target.at.file}:${target.at.position}`);
  if (filesRoot !== undefined) words.push('--files-root', resolve(filesRoot));
  for (const source of sources) words.push('--source', source);
  return words.map(shellWord).join(' ');
}

async function filesOnlyCommand(archiveRoot: string, target: TargetSpec, filesRoot: string | undefined, sources: string[] | undefined, dryRun: boolean, json: boolean, logger: Logger): Promise<number> {
  const report = await restoreFilesOnly({ archiveRoot, target, filesRoot, sources, dryRun, logger });
  process.stdout.write(json ? `${JSON.stringify({ dryRun, ...report }, null, 2)}\n` : formatFilesOnlyReport(report, dryRun));
  const notRestored = unexpectedlySkipped(report.filesRestored);
  if (notRestored.length > 0) {
    throw new HotspareError('SPOOL_NOT_RESTORED', `${notRestored.length} spool source(s) were not restored: ${notRestored.map((f) => `${f.name}: ${f.skipped ?? ''}`).join('; ')}`, {
      hint: 'run `hotspare verify` on the archive; fix the cause (see each source\'s reason) and run promote --files-only again, or restore those files from another copy',
    });
  }
  // Its one job: a run that restored nothing (no source, or none with history at the point) says so.
  if (!dryRun && !report.filesRestored.some((f) => f.skipCode === undefined)) {
    throw new HotspareError('SPOOL_NOT_RESTORED', report.filesRestored.length === 0 ? 'the archive holds no spool source to restore' : `no spool source was restored: ${report.filesRestored.map((f) => `${f.name}: ${f.skipped ?? ''}`).join('; ')}`, {
      hint: 'run `hotspare status` for the sources and the times their history covers; choose a point inside it',
    });
  }
  return 0;
}

export function formatFilesOnlyReport(report: FilesOnlyReport, dryRun: boolean): string {
  const lines = [
    dryRun ? 'spool files restore plan (dry run: nothing was changed; no database is touched)' : 'spool files restored (no database touched, no hook run)',
    `  archive:          ${report.archive} (primary ${report.primary})`,
    `  target point:     ${report.targetPoint}`,
    `  files as of:      ${report.files.asOf}`,
  ];
  const t = report.lastTransaction;
  if (t !== undefined) lines.push(`  database point:   ${t.file}:${t.position}${t.gtid ? ` GTID ${t.gtid}` : ''}, committed ${t.commitTime} (a promotion to this point applies up to it)`);
  for (const s of report.files.sources) {
    if (dryRun) lines.push(s.skipped === undefined ? `  would restore:    ${s.name} to ${s.restoreTo}` : `  would NOT restore: ${s.name}: ${s.skipped}`);
    if (dryRun && s.uncertainWhy !== undefined) lines.push(`  WARNING:          SPOOL_POINT_UNCERTAIN: files of ${s.name}: ${s.uncertainWhy}`);
  }
  lines.push(...restoredFileLines(report.filesRestored));
  const hooks = report.files.sources.reduce((n, s) => n + s.hooks, 0);
  if (hooks > 0) lines.push(`  hooks:            not run (--files-only): ${report.files.sources.flatMap((s) => s.hookCommands.map((c) => `${s.name}: ${c}`)).join('; ')}`);
  return `${lines.join('\n')}\n`;
}

/** The spool sources a restore left as they are for a reason of their own (not for want of history at the point). */
function unexpectedlySkipped(results: readonly SpoolRestoreResult[]): SpoolRestoreResult[] {
  return results.filter((f) => f.skipCode !== undefined && !EXPECTED_SKIP_CODES.has(f.skipCode));
}

/** The report's lines for what the spool restore did, one per source (and a warning for a journal cut short by damage). */
function restoredFileLines(results: readonly SpoolRestoreResult[]): string[] {
  const lines: string[] = [];
  for (const f of results) {
    if (f.skipped !== undefined) lines.push(`  files NOT restored: ${f.name} (${f.partly === true ? 'may be partly restored' : 'left as it is'} at ${f.path}): ${f.skipped}`);
    else lines.push(`  files restored:   ${f.name} to ${f.path} as of ${new Date(f.pointMs).toISOString()} (${f.files} files, ${f.dirs} dirs, ${f.links} links, ${f.bytes} bytes${f.removed > 0 ? `; removed ${f.removed} path${f.removed === 1 ? '' : 's'} the tree at that point does not hold` : ''})`);
    if (f.lostAfter !== undefined) lines.push(`  WARNING:          files of ${f.name} restored only as of ${new Date(f.pointMs).toISOString()}: ${f.lostAfter}`);
    if (f.uncertainWhy !== undefined) lines.push(`  WARNING:          SPOOL_POINT_UNCERTAIN: files of ${f.name}: ${f.uncertainWhy}`);
  }
  return lines;
}

export function parseTargetSpec(values: { until?: string | undefined; 'until-gtid'?: string | undefined; 'until-position'?: string | undefined }): TargetSpec {
  const given = [values.until, values['until-gtid'], values['until-position']].filter((v) => v !== undefined);
  if (given.length > 1) throw new UsageError('give at most one of --until, --until-gtid, --until-position');
  if (values.until !== undefined) return { kind: 'time', atMs: parseTimeOption('--until', values.until) };
  if (values['until-gtid'] !== undefined) {
    if (!/^\d+-\d+-\d+$/.test(values['until-gtid'])) {
      const mysql = /^[0-9a-f-]{36}:\d+$/i.test(values['until-gtid']) ? ' (a MySQL GTID: on MySQL, use --until-position FILE:POS or --until TIME)' : '';
      throw new UsageError(`--until-gtid: expected a MariaDB GTID DOMAIN-SERVER-SEQUENCE, e.g. 0-1-42${mysql}`);
    }
    return { kind: 'gtid', gtid: values['until-gtid'] };
  }
  if (values['until-position'] !== undefined) {
    const at = parseBinlogPosition(values['until-position']);
    if (at === undefined) throw new UsageError('--until-position: expected FILE:POS, e.g. mysql-bin.000012:8812');
    return { kind: 'position', at };
  }
  return { kind: 'end' };
}

/** `toEnd`: no point in time was asked for (the loss window line depends on it). */
export function formatReport(plan: PromotionReport, dryRun: boolean, toEnd: boolean): string {
  const lines = [
    dryRun ? 'promotion plan (dry run: nothing was changed)' : 'promotion complete: the server is writable',
    `  archive:          ${plan.archive} (primary ${plan.primary})`,
    `  target:           ${plan.target}`,
    `  target point:     ${plan.targetPoint}`,
    `  base backup:      ${plan.base.id} (${plan.base.method}) at ${plan.base.binlog.file}:${plan.base.binlog.position}${plan.base.gtid ? ` (GTID ${plan.base.gtid})` : ''}`,
    ...(plan.physical === undefined ? [] : [`  old datadir:      ${dryRun ? 'would be moved' : 'moved'} to ${plan.physical.previous} (not deleted)`]),
    `  binlog replayed:  ${plan.replay.length === 0 ? 'none' : plan.replay.map((r) => `${r.file} ${r.start}..${r.stop}`).join(', ')}`,
  ];
  const t = plan.lastTransaction;
  lines.push(t === undefined ? '  last transaction: none in the archive' : `  last transaction: ${t.file}:${t.position}${t.gtid ? ` GTID ${t.gtid}` : ''}, committed ${t.commitTime}`);
  if (plan.lastHeard !== undefined) lines.push(`  last heard:       ${plan.lastHeard.time} (${plan.lastHeard.source}${plan.lastHeard.caughtUp ? '; the archive then held everything the primary had written' : ''})`);
  // "Held everything" only from the record that says so: a window of 0 also comes of clocks
  // that differ, or of no record at all (the newest event's own time stands in for it).
  const heldAll = plan.lastHeard?.caughtUp === true;
  if (plan.lossWindowSeconds !== undefined && heldAll) lines.push(`  loss window:      0 s (the archive held everything the primary had written when it was last heard; only what it committed after that can be missing)`);
  else if (plan.lossWindowSeconds !== undefined) lines.push(`  loss window:      ${plan.lossWindowSeconds} s (transactions committed after the last one above and before the primary was last heard may be lost)`);
  else if (!toEnd) lines.push('  loss window:      none counted: a point in time was asked for, and what the archive holds after it was left out on purpose');
  else lines.push('  loss window:      unknown (the archive holds no transaction, or no record of when the primary was last heard)');
  if (plan.partialTailCut !== undefined) {
    lines.push(`  not applied:      an incomplete transaction at ${plan.partialTailCut.file}:${plan.partialTailCut.from}..${plan.partialTailCut.to}`);
    // The primary writes a transaction to its binlog whole, at commit: one the archive holds in
    // part was committed there, unless the primary crashed while writing it.
    lines.push('  WARNING:          that transaction was in the primary\'s binlog, so committed there unless the primary crashed while writing it: counted as lost');
  }
  for (const damaged of plan.damagedBases) lines.push(`  WARNING:          passed over damaged base ${damaged}`);
  if (plan.fenceNotWritten !== undefined) lines.push(`  WARNING:          ARCHIVE_NOT_FENCED: ${PROMOTED_PATH} could not be written (${plan.fenceNotWritten}): should the old primary come back, its agent could stream into this archive; keep it away from it`);
  if (plan.accountsNotRestored !== undefined) {
    const output = plan.accountsNotRestored.split('\n').filter((l) => l.trim() !== '' && !/^-+$/.test(l.trim()));
    // The client echoes each failed statement between lines of dashes, then its ERROR line:
    // each pair on one line, the statement cut short; anything else it said when it printed none.
    const errors: string[] = [];
    let statement = '';
    for (const line of output) {
      if (/^ERROR \d+/.test(line)) errors.push(statement === '' ? line : `${statement.length > 100 ? `${statement.slice(0, 100)}...` : statement} -> ${line}`);
      else statement = line.trim();
    }
    const said = errors.length > 0 ? errors : output;
    lines.push(`  WARNING:          some of the primary's accounts or grants were not restored (BASE_ACCOUNTS_PARTLY): ${said.slice(0, 3).join(' | ')}${said.length > 3 ? ` (and ${said.length - 3} more: see the log)` : ''}`);
  }
  if (plan.stoppedBeforeDamage !== undefined) lines.push(`  WARNING:          the archive is damaged after this point, at ${describeDamage(plan.stoppedBeforeDamage)}`);
  for (const damage of plan.passedOverDamages ?? (plan.passedOverDamage === undefined ? [] : [plan.passedOverDamage])) {
    lines.push(`  WARNING:          passed over damage before the chain restored from (base ${plan.base.id}): ${describeDamage(damage)}; older points in time need it mended`);
  }
  lines.push(...restoredFileLines(plan.filesRestored));
  for (const h of plan.hooks) {
    lines.push(`  hook:             ${h.source}: ${h.run} -> ${h.exitCode === 0 ? 'ok' : h.timedOut ? 'TIMED OUT' : `FAILED (exit ${h.exitCode ?? h.signal})`}`);
    // What HOOK_FAILED's hint points at: the hook as it ran, with its environment, to paste.
    if (h.exitCode !== 0) lines.push(`    run again:      ${hookCommandLine(h)}`);
  }
  lines.push('  steps:');
  for (const step of plan.steps) lines.push(`    ${step.run ? '[x]' : '[ ]'} ${step.name}: ${step.detail}`);
  return `${lines.join('\n')}\n`;
}
