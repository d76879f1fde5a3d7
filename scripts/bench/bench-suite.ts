import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One comparison in `npm run bench`: our figure and the reference tool's on the same data in
 * the same run, and the ratio between them. `higherIsBetter` says which way the ratio reads.
 */
export interface BenchRow {
  name: string;
  unit: string;
  ours: number;
  /** The reference tool's figure on the same data (undefined when there is none, e.g. peak RSS). */
  reference?: number | undefined;
  referenceName?: string | undefined;
  higherIsBetter: boolean;
  /** The target, in words, e.g. ">= 0.8x mariadb-binlog". */
  target?: string | undefined;
  /** Whether the target is met (undefined when there is no target). */
  met?: boolean | undefined;
}

export interface BenchSuite {
  title: string;
  run(report: (row: BenchRow) => void): Promise<void>;
}

/** ours / reference in the direction where above 1 means hotspare is better. */
export function advantage(row: BenchRow): number | undefined {
  if (row.reference === undefined || row.reference === 0 || row.ours === 0) return undefined;
  return row.higherIsBetter ? row.ours / row.reference : row.reference / row.ours;
}

/** Writes a human line to stdout (benchmarks print results; logs would go to stderr). */
export function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** The median of some runs (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Every folder a suite made with benchDir and has not removed yet. */
const benchDirs = new Set<string>();

/**
 * A fresh folder under the system's temporary folder for one suite's servers and copies,
 * removed by the suite when it is done, or by removeBenchLeftovers when the bench is stopped.
 */
export function benchDir(suite: string): string {
  const dir = mkdtempSync(join(tmpdir(), `hotspare-bench-${suite}-`));
  benchDirs.add(dir);
  return dir;
}

/** Removes a benchDir folder (the suite's own cleanup). */
export function removeBenchDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  benchDirs.delete(dir);
}

/**
 * What an interrupted bench leaves behind, removed: its child processes (agents, receivers,
 * reference tools, sandbox servers) killed, then its folders (up to 1 GiB files each) removed.
 * Synchronous, for an exit handler. Linux only, like the sandbox: children are found by their
 * parent pid in /proc.
 */
export function removeBenchLeftovers(): void {
  for (const pid of childPids(process.pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  // A server killed a moment ago may still be closing files in its datadir: retry the removal.
  for (const dir of benchDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  benchDirs.clear();
}

function childPids(parent: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Field 4 (ppid) follows the command name, which is in parentheses and may hold spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === parent) pids.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}
