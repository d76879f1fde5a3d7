import { LocalArchiveFiles } from '../src/archive/archive-files.js';
import { spoolSourceSchema } from '../src/config/schema.js';
import { systemClock } from '../src/platform/clock.js';
import { createLogger } from '../src/platform/logger.js';
import { SpoolSyncer } from '../src/spool/spool-syncer.js';

/**
 * Runs one spool syncer as its own process, for tests that kill it with SIGKILL mid-pass:
 * `node dist/scripts/spool-syncer-run.js ARCHIVE_DIR SOURCE_JSON`. Prints `ready` on stdout
 * after its first full pass; SIGTERM stops it cleanly.
 */
const [archiveDir, sourceJson] = process.argv.slice(2);
if (archiveDir === undefined || sourceJson === undefined) {
  process.stderr.write('usage: spool-syncer-run ARCHIVE_DIR SOURCE_JSON\n');
  process.exit(2);
}
const logger = createLogger();
const source = spoolSourceSchema.parse(JSON.parse(sourceJson));
const syncer = new SpoolSyncer({ source, files: new LocalArchiveFiles(archiveDir), logger, clock: systemClock, tuning: { rescanIntervalMs: 2_000 } });
syncer.start();
void syncer.syncNow().then(() => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  void syncer.stop().then(() => process.exit(0));
});
