import { ArchiveLayout } from '../archive/archive-layout.js';
import { HotspareError } from '../core/errors.js';
import { ProgressLine } from '../platform/progress-line.js';
import { spawnTool } from '../platform/tool-process.js';
import { MariadbClient } from './mariadb-client.js';

/** One archived file's part of a replay: from `start` to `stop` (both event boundaries). */
export interface ReplayRange {
  file: string;
  start: number;
  stop: number;
}

/** The mariadb-binlog command line for one range (what an operator would type by hand). */
export function binlogCommand(archiveRoot: string, range: ReplayRange): string[] {
  return ['mariadb-binlog', `--start-position=${range.start}`, `--stop-position=${range.stop}`, new ArchiveLayout(archiveRoot).binlogFile(range.file)];
}

/**
 * Replays archived binlog into the target: `mariadb-binlog` per file, all piped into one
 * `mariadb` client, so the server's own tools apply every event. Each file's range ends at a
 * transaction boundary, so a transaction cut by a primary crash (or still arriving at the
 * archive's tail) is never applied in part.
 */
export async function replayBinlog(archiveRoot: string, ranges: readonly ReplayRange[], defaultsFile: string): Promise<void> {
  if (ranges.length === 0) return;
  const total = ranges.reduce((n, r) => n + (r.stop - r.start), 0);
  const progress = new ProgressLine('replaying binlog', total);
  const client = new MariadbClient(defaultsFile, 'replaying binlog');
  let done = 0;
  try {
    for (const range of ranges) {
      const [command, ...args] = binlogCommand(archiveRoot, range);
      const { child, exited, stderr } = spawnTool(command ?? 'mariadb-binlog', args);
      await client.feed(child.stdout);
      const code = await exited.catch((err: unknown) => {
        throw new HotspareError('TOOL_MISSING', `cannot run mariadb-binlog: ${String(err)}`, { hint: 'install the MariaDB client tools on the standby' });
      });
      if (code !== 0) {
        throw new HotspareError('REPLAY_FAILED', `mariadb-binlog ${range.file} exited with ${code}: ${stderr().trim()}`, {
          hint: 'run `hotspare verify` on the archive; the target is partly replayed',
        });
      }
      done += range.stop - range.start;
      progress.update(done);
    }
  } catch (err) {
    client.kill();
    throw err;
  }
  await client.finish();
  progress.done();
}
