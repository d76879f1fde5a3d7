import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { takeBaseBackup } from '../../src/primary/base/take-base-backup.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';

/**
 * Takes a base backup of a still-empty primary into an archive folder. The agent streams an
 * archive's binlog from its base's file, so a base taken before the backlog is written makes
 * the agent catch up the whole backlog (from the primary's first file) instead of taking a
 * base at the head and streaming nothing.
 */
export async function seedBaseBackup(primary: MariadbServer, archive: string): Promise<void> {
  await takeBaseBackup({
    primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4999 },
    files: new LocalArchiveFiles(archive),
    clock: systemClock,
    logger: silentLogger(),
  });
}
