import { createReadStream } from 'node:fs';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { ArchiveLayout } from '../archive/archive-layout.js';
import { assert } from '../core/assert.js';
import { HotspareError } from '../core/errors.js';
import { ProgressLine } from '../platform/progress-line.js';
import { spawnTool } from '../platform/tool-process.js';
import { MariadbClient } from './mariadb-client.js';

/** One archived file's part of a replay: from `start` to `stop` (both event boundaries). */
export interface ReplayRange {
  file: string;
  start: number;
  stop: number;
  /** `stop` is the file's size: the next file's range follows on from this one. */
  toFileEnd: boolean;
  /**
   * The bytes at `stop` may not be a whole event (a torn tail, a damaged length): mariadb-binlog
   * reads the event at its stop position before it stops, and a torn one can make it fail, so
   * it is given only the file's first `stop` bytes, on stdin.
   */
  cutAtStop: boolean;
}

/**
 * The mariadb-binlog command line for consecutive ranges (what an operator would type by
 * hand): --start-position applies to the first file named, --stop-position to the last.
 */
export function binlogCommand(archiveRoot: string, ranges: readonly ReplayRange[]): string[] {
  const layout = new ArchiveLayout(archiveRoot);
  const first = ranges[0];
  const last = ranges[ranges.length - 1];
  assert(first !== undefined && last !== undefined, 'a command replays at least one range');
  const files = last.cutAtStop ? ['-'] : ranges.map((r) => layout.binlogFile(r.file));
  return ['mariadb-binlog', `--start-position=${first.start}`, `--stop-position=${last.stop}`, ...files];
}

/**
 * The ranges in as few mariadb-binlog runs as one can read: a run goes on through files read
 * to their end, and ends at a range that stops inside its file (a primary crash left a torn
 * transaction there, or the replay's stop point). A range cut at its stop reads stdin: alone.
 */
export function replayRuns(ranges: readonly ReplayRange[]): ReplayRange[][] {
  const runs: ReplayRange[][] = [];
  let run: ReplayRange[] = [];
  for (const range of ranges) {
    if (range.cutAtStop) {
      if (run.length > 0) runs.push(run);
      runs.push([range]);
      run = [];
      continue;
    }
    run.push(range);
    if (!range.toFileEnd) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/**
 * Replays archived binlog into the target: `mariadb-binlog` over consecutive files, its
 * output copied into one `mariadb` client's stdin (as `mariadb-binlog FILES | mariadb`), so
 * the server's own tools apply every event. The copy goes through this process (handing the
 * client's stdin to mariadb-binlog directly measured no faster), so a failing client is seen
 * at once and one client serves every run. Each file's range ends at a transaction boundary,
 * so a transaction cut by a primary crash (or still arriving at the archive's tail) is never
 * applied in part.
 */
export async function replayBinlog(archiveRoot: string, ranges: readonly ReplayRange[], defaultsFile: string): Promise<void> {
  if (ranges.length === 0) return;
  const total = ranges.reduce((n, r) => n + (r.stop - r.start), 0);
  const progress = new ProgressLine('replaying binlog', total);
  const client = new MariadbClient(defaultsFile, 'replaying binlog');
  let done = 0;
  try {
    for (const run of replayRuns(ranges)) {
      const [command, ...args] = binlogCommand(archiveRoot, run);
      const last = run[run.length - 1] as ReplayRange;
      const { child, exited, stderr } = spawnTool(command ?? 'mariadb-binlog', args, 'pipe');
      const input = last.cutAtStop ? feedFirstBytes(new ArchiveLayout(archiveRoot).binlogFile(last.file), last.stop, child.stdin) : (child.stdin.end(), Promise.resolve());
      const [code] = await Promise.all([
        exited.catch((err: unknown) => {
          throw new HotspareError('TOOL_MISSING', `cannot run mariadb-binlog: ${String(err)}`, { hint: 'install the MariaDB client tools on the standby' });
        }),
        // A client that exits early stops the copy; closing mariadb-binlog's stdout then ends it
        // (SIGPIPE) instead of leaving it blocked on a full pipe.
        client.feed(child.stdout).finally(() => child.stdout.destroy()),
        input,
      ]);
      if (code !== 0) {
        // A client that failed first closed the pipe under mariadb-binlog: its error is the cause.
        if (client.exited) await client.finish();
        throw new HotspareError('REPLAY_FAILED', `mariadb-binlog ${run.map((r) => r.file).join(' ')} exited with ${code}: ${stderr().trim()}`, {
          hint: 'run `hotspare verify` on the archive; the target is partly replayed',
        });
      }
      done += run.reduce((n, r) => n + r.stop - r.start, 0);
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

