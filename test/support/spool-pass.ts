import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { spoolSourceSchema } from '../../src/config/schema.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger, type Logger } from '../../src/platform/logger.js';
import { SpoolSyncer, type SpoolTuning } from '../../src/spool/spool-syncer.js';

/**
 * One full pass of a real syncer (no watcher) over `src` into the local archive `archive`, as
 * spool source `name`; resolves with the bytes it shipped once it has stopped.
 */
export async function syncOnce(name: string, src: string, archive: string, options: { logger?: Logger; tuning?: Partial<SpoolTuning> } = {}): Promise<number> {
  const syncer = new SpoolSyncer({
    source: spoolSourceSchema.parse({ name, path: src }),
    files: new LocalArchiveFiles(archive),
    logger: options.logger ?? silentLogger(),
    clock: systemClock,
    tuning: { watch: false, ...options.tuning },
  });
  syncer.start();
  try {
    await syncer.syncNow();
    return syncer.snapshot().bytesShippedTotal;
  } finally {
    await syncer.stop();
  }
}
