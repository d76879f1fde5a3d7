import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
  /**
   * The bytes at `stop` may not be a whole event (a torn tail, a damaged length): mariadb-binlog
   * reads the event at its stop position before it stops, and a torn one can make it fail, so
   * it is given only the file's first `stop` bytes, on stdin.
   */
  cutAtStop: boolean;
}

/** The mariadb-binlog command line for one range (what an operator would type by hand). */
export function binlogCommand(archiveRoot: string, range: ReplayRange): string[] {
  const path = new ArchiveLayout(archiveRoot).binlogFile(range.file);
  return ['mariadb-binlog', `--start-position=${range.start}`, `--stop-position=${range.stop}`, range.cutAtStop ? '-' : path];
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
      const { child, exited, stderr } = spawnTool(command ?? 'mariadb-binlog', args, 'pipe');
      const input = range.cutAtStop ? feedFirstBytes(new ArchiveLayout(archiveRoot).binlogFile(range.file), range.stop, child.stdin) : (child.stdin.end(), Promise.resolve());
      await Promise.all([client.feed(child.stdout), input]);
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

/**
 * Pipes a file's first `bytes` into a tool's stdin. A tool that exits early closes its stdin
 * (EPIPE); that is not an error here: its exit code says whether the replay failed.
 */
async function feedFirstBytes(path: string, bytes: number, stdin: Writable): Promise<void> {
  stdin.on('error', () => undefined);
  await pipeline(createReadStream(path, { start: 0, end: bytes - 1 }), stdin).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw new HotspareError('REPLAY_FAILED', `cannot read ${path}: ${err.message}`, { cause: err, hint: 'run `hotspare verify` on the archive' });
  });
}

