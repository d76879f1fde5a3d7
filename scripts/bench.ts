import { advantage, removeBenchLeftovers, say, type BenchRow, type BenchSuite } from './bench/bench-suite.js';
import { binlogStreamingSuite } from './bench/binlog-streaming.js';
import { spoolSyncSuite } from './bench/spool-sync.js';
import { lagEndpointSuite } from './bench/lag-endpoint.js';
import { remoteStreamingSuite } from './bench/remote-streaming.js';
import { baseAndReplaySuite } from './bench/base-and-replay.js';

/**
 * `npm run bench`: every suite runs hotspare and the reference tools on the same data in one
 * run and prints the ratios. `BENCH=name,name` runs a subset.
 */
const suites: Record<string, BenchSuite> = {
  binlog: binlogStreamingSuite,
  spool: spoolSyncSuite,
  lag: lagEndpointSuite,
  remote: remoteStreamingSuite,
  base: baseAndReplaySuite,
};

async function main(): Promise<void> {
  const only = process.env['BENCH']?.split(',').filter(Boolean);
  const rows: BenchRow[] = [];
  for (const [key, suite] of Object.entries(suites)) {
    if (only !== undefined && !only.includes(key)) continue;
    say(`\n== ${suite.title}`);
    await suite.run((row) => {
      rows.push(row);
      const adv = advantage(row);
      const ref = row.reference === undefined ? '' : `  ${row.referenceName ?? 'reference'}: ${fmt(row.reference)} ${row.unit}`;
      const ratio = adv === undefined ? '' : `  ratio ${adv.toFixed(2)}x`;
      const target = row.target === undefined ? '' : `  target ${row.target}: ${row.met === true ? 'met' : 'NOT met'}`;
      say(`  ${row.name}: ${fmt(row.ours)} ${row.unit}${ref}${ratio}${target}`);
    });
  }
  const missed = rows.filter((r) => r.met === false);
  say(`\n${rows.length} figures, ${missed.length} targets not met${missed.length > 0 ? `: ${missed.map((r) => r.name).join('; ')}` : ''}`);
}

function fmt(n: number): string {
  return Math.abs(n) >= 100 ? n.toFixed(0) : n.toFixed(2);
}

// Stopped by Ctrl-C or kill, the bench still leaves nothing running and nothing on disk: a
// signal's default action would skip the exit handlers (the sandbox's kills its servers there).
process.once('exit', removeBenchLeftovers);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\nbench stopped by ${signal}; removing its servers and folders`);
    process.exit(signal === 'SIGINT' ? 130 : 143);
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
