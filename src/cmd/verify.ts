import { parseArgs } from 'node:util';
import { blake3Unavailable } from '../spool/block-hash.js';
import type { Logger } from '../platform/logger.js';
import { describeDamage } from '../standby/archive-scan.js';
import { inspectArchive } from '../standby/verify-archive.js';
import { UsageError } from './cli-failure.js';
import { formatReport } from './status.js';
import { jsonOutput } from './json-output.js';
import { archiveReadError } from '../archive/archive-errors.js';

/** `hotspare verify --archive DIR [--json]`: every CRC32, chain, continuity, base and spool checksum; exit 0 intact, 1 damaged or not all checked. */
export async function verifyCommand(argv: string[], _logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { archive: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  if (values.archive === undefined) throw new UsageError('verify needs --archive DIR');
  const archive = values.archive;
  const report = await inspectArchive(archive, { checksums: true }).catch((err: unknown) => {
    throw archiveReadError(err, archive);
  });
  const noBlake3 = blake3Unavailable();
  if (values.json === true) process.stdout.write(jsonOutput(report));
  else {
    process.stdout.write(formatReport(report));
    const last = report.latestRestorable;
    process.stdout.write(
      report.intact
        ? 'verify: intact\n'
        : report.firstBad === undefined && (report.spoolChecks ?? []).every((c) => c.problems.length === 0)
          ? `verify: NOT VERIFIED: ${report.spoolUnchecked} spool blocks could not be checked here (named by BLAKE3, and ${noBlake3.why}; hint: ${noBlake3.fix}); nothing found damaged\n`
          : report.firstBad === undefined
          ? `verify: DAMAGED spool data (binlog and base intact; last restorable point ${last ? `${last.file}:${last.position} (${last.commitTime})` : 'none'})\n`
          : `verify: DAMAGED: first bad point ${describeDamage(report.firstBad)}${report.endDamage !== undefined && report.endDamage !== report.firstBad ? `; the archive's end is cut off by ${describeDamage(report.endDamage)}` : ''}; last good restorable point ${last ? `${last.file}:${last.position} (${last.commitTime})` : 'none'}\n`,
    );
  }
  return report.intact ? 0 : 1;
}
