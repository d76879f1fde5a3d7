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
