import { execFile } from 'node:child_process';
import { closeSync, cpSync, fdatasyncSync, fsyncSync, openSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { compareArchiveWithPrimary } from '../../src/sandbox/binlog-compare.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { cpuSeconds } from './process-cpu.js';
import { runAgentCatchUp, type AgentCatchUp } from './agent-process.js';
import { deviceDurableSeconds } from './device-durable-rate.js';
import { benchDir, median, removeBenchDir, say, type BenchSuite } from './bench-suite.js';
import { binlogTotalBytes, buildBinlogBacklog } from './binlog-backlog.js';
import { seedBaseBackup } from './seed-base-backup.js';
import { dumpOnly, type DumpOnlyRun } from './dump-only-run.js';

const execFileAsync = promisify(execFile);
/** The issue asks for a backlog of at least 200 MB. */
const BACKLOG_BYTES = 200 * 1024 * 1024;
/**
 * Rounds of (mariadb-binlog, hotspare), the order alternating. The machine is shared: one
 * run of each is at the mercy of whatever else runs at that moment, so the best of several
 * (the least disturbed) and the median are reported.
 */
const ROUNDS = Number(process.env['BENCH_BINLOG_ROUNDS'] ?? 3);
/** How often the bench asks the agent's /lag where the replica's durable point stands. */
const POLL_INTERVAL_MS = 10;
const SETTLE_READS = 5;
const SETTLE_INTERVAL_MS = 500;

interface RefRun {
  seconds: number;
  /** The device alone making as many bytes durable (deviceDurableSeconds). */
  deviceSeconds: number;
  /** Until its files were fsynced too. */
  syncedSeconds: number;
  serverCpu: number;
}


function folderBytes(dir: string): number {
  try {
    return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

/** The primary's head once it has held still for SETTLE_READS reads SETTLE_INTERVAL_MS apart. */
async function settledHead(primary: MariadbServer): Promise<{ file: string; position: number }> {
  const conn = await primary.connect();
  try {
    let previous: { file: string; position: number } | undefined;
    let same = 0;
    for (;;) {
      const [rows] = await conn.query('SHOW MASTER STATUS');
      const row = (rows as { File: string; Position: string | number }[])[0];
      if (row === undefined) throw new Error('SHOW MASTER STATUS returned nothing');
      const head = { file: row.File, position: Number(row.Position) };
      same = previous !== undefined && previous.file === head.file && previous.position === head.position ? same + 1 : 0;
      if (same >= SETTLE_READS) return head;
      previous = head;
      await new Promise((r) => setTimeout(r, SETTLE_INTERVAL_MS));
    }
  } finally {
    await conn.end();
  }
}

/**
 * Issue 2: the agent's catch-up throughput over a binlog backlog to a `file` archive (with
 * fsync) against `mariadb-binlog --read-from-remote-server --raw` into a folder (no fsync),
 * on the same primary in the same run; and the agent's peak RSS.
 */
export const binlogStreamingSuite: BenchSuite = {
  title: 'binlog catch-up to a file archive (issue 2)',
  async run(report) {
    if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_BINLOG_ROUNDS must be a whole number of at least 1, not ${process.env['BENCH_BINLOG_ROUNDS']}`);
    const dir = benchDir('binlog');
    const primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
    try {
      // The base is taken before the backlog, so the agent catches up the whole backlog from
      // the primary's first file. Every round starts from a copy of this archive (base only).
      const template = join(dir, 'template');
      await seedBaseBackup(primary, template);
      const backlog = await buildBinlogBacklog(primary, BACKLOG_BYTES);
      // The server writes a binlog checkpoint event into the newest file a while after a
      // FLUSH BINARY LOGS (once InnoDB has flushed its log): the head counts once it holds still.
      const head = await settledHead(primary);
      backlog.totalBytes = await binlogTotalBytes(primary);
      const mb = backlog.totalBytes / 1048576;
      say(`  backlog: ${mb.toFixed(0)} MB in ${backlog.files} files (largest transaction ~64 MB); ${ROUNDS} rounds, the order alternating`);

      /** CPU seconds the primary server has used so far (its dump thread serves both sides). */
      const serverCpuSeconds = (): number => (primary.pid === undefined ? 0 : cpuSeconds(primary.pid));

      // Reference: mariadb-binlog pulling every file raw over the replication protocol.
      const reference = async (): Promise<RefRun> => {
        const rawDir = join(dir, 'raw');
        rmSync(rawDir, { recursive: true, force: true });
        mkdirSync(rawDir);
        const serverCpuBefore = serverCpuSeconds();
        const start = process.hrtime.bigint();
        await execFileAsync('mariadb-binlog', [
          '--read-from-remote-server', '--host=127.0.0.1', `--port=${primary.port}`, '--user=root',
          '--raw', '--to-last-log', `--result-file=${rawDir}/`, 'mysql-bin.000001',
        ], { maxBuffer: 1 << 20 });
        const seconds = Number(process.hrtime.bigint() - start) / 1e9;
        const serverCpu = serverCpuSeconds() - serverCpuBefore;
        // The same durability as ours, for comparison: its files fsynced once it is done.
        for (const name of readdirSync(rawDir)) {
          const fd = openSync(join(rawDir, name), 'r');
          fdatasyncSync(fd);
          closeSync(fd);
        }
        const dirFd = openSync(rawDir, 'r');
        fsyncSync(dirFd);
        closeSync(dirFd);
        const syncedSeconds = Number(process.hrtime.bigint() - start) / 1e9;
        const bytes = folderBytes(rawDir);
        if (bytes < backlog.totalBytes) throw new Error(`mariadb-binlog wrote ${bytes} bytes of ${backlog.totalBytes}`);
        rmSync(rawDir, { recursive: true, force: true });
        const deviceSeconds = await deviceDurableSeconds(dir, backlog.totalBytes);
        return { seconds, syncedSeconds, serverCpu, deviceSeconds };
      };

      // hotspare: the real agent process, from an archive holding only the base until /lag
      // reports the primary's head durable (fsynced) in the archive.
      const archive = join(dir, 'archive');
      const agent = async (): Promise<AgentCatchUp> => {
        rmSync(archive, { recursive: true, force: true });
        rmSync(join(dir, 'state'), { recursive: true, force: true });
        cpSync(template, archive, { recursive: true });
        return runAgentCatchUp({ primary, dir, replica: { name: 'bench', type: 'file', path: archive }, head, pollIntervalMs: POLL_INTERVAL_MS });
      };

      const refRuns: RefRun[] = [];
      const runs: AgentCatchUp[] = [];
      const libraryRuns: DumpOnlyRun[] = [];
      const captureRuns: DumpOnlyRun[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        if (round % 2 === 0) {
          refRuns.push(await reference());
          runs.push(await agent());
        } else {
          runs.push(await agent());
          refRuns.push(await reference());
        }
        // The read side alone, in the same round: the client stack the mission mandates, and
        // the agent's own source and framer, each dropping what it reads.
        const library = await dumpOnly('library', primary, head);
        const capture = await dumpOnly('capture', primary, head);
        libraryRuns.push(library);
        captureRuns.push(capture);
        const run = runs[runs.length - 1] as AgentCatchUp;
        const ref = refRuns[refRuns.length - 1] as RefRun;
        say(`  round ${round + 1}: mariadb-binlog ${(mb / ref.seconds).toFixed(0)} MB/s (${(mb / ref.syncedSeconds).toFixed(0)} MB/s to its files fsynced; the volume alone, O_DIRECT + fdatasync from memory, ${(mb / ref.deviceSeconds).toFixed(0)} MB/s; server CPU ${ref.serverCpu.toFixed(2)} s); hotspare streaming ${(mb / run.streamSeconds).toFixed(0)} MB/s, whole run ${(mb / run.wholeSeconds).toFixed(0)} MB/s, CPU ${run.cpuSeconds.toFixed(2)} s, peak RSS ${run.peakRssMb.toFixed(0)} MB, slowest /lag ${run.slowestLagMs.toFixed(1)} ms, machine busy streaming ${run.streamBusyCores.busy.toFixed(2)} of ${run.streamBusyCores.cores} cores`);
        say(`    agent CPU by thread (s): ${run.threads}; server CPU ${run.serverCpu.toFixed(2)} s`);
        say(`    read side alone, nothing written: zongji over mysql2 ${(mb / library.seconds).toFixed(0)} MB/s (CPU ${library.cpuSeconds.toFixed(2)} s); the agent's source and framer ${(mb / capture.seconds).toFixed(0)} MB/s (CPU ${capture.cpuSeconds.toFixed(2)} s)`);
      }
      // The last round's archive is the primary's binlog, byte for byte.
      const comparison = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
      if (comparison.differences.length > 0) throw new Error(`the archive differs from the primary: ${JSON.stringify(comparison.differences)}`);

      const mbps = (s: number): number => mb / s;
      const refSeconds = refRuns.map((r) => r.seconds);
      const refBest = mbps(Math.min(...refSeconds));
      const refMedian = mbps(median(refSeconds));
      const syncedSeconds = refRuns.map((r) => r.syncedSeconds);
      const streamBest = mbps(Math.min(...runs.map((r) => r.streamSeconds)));
      const streamMedian = mbps(median(runs.map((r) => r.streamSeconds)));
      const wholeBest = mbps(Math.min(...runs.map((r) => r.wholeSeconds)));
      const wholeMedian = mbps(median(runs.map((r) => r.wholeSeconds)));
      const referenceName = 'mariadb-binlog --raw (no fsync)';
      // The target is read on the streaming phase: the whole run also pays the agent's
      // process start, module loading and preflight (about 0.4 s, once per agent lifetime),
      // which a catch-up of any real size does not notice (README, Benchmarks).
      report({
        name: `catch-up throughput, streaming phase (after preflight, to the last byte fsynced), best of ${ROUNDS}`,
        unit: 'MB/s', ours: streamBest, reference: refBest, referenceName,
        higherIsBetter: true, target: '>= 0.8x', met: streamBest >= 0.8 * refBest,
      });
      report({ name: `catch-up throughput, streaming phase, median of ${ROUNDS}`, unit: 'MB/s', ours: streamMedian, reference: refMedian, referenceName, higherIsBetter: true });
      // The same durability on both sides: mariadb-binlog's files fsynced once it is done (the
      // target is read against the reference without fsync, the stricter of the two).
      report({
        name: `catch-up throughput, streaming phase, median of ${ROUNDS}, against mariadb-binlog with its files then fsynced`,
        unit: 'MB/s', ours: streamMedian, reference: mbps(median(syncedSeconds)), referenceName: 'mariadb-binlog --raw + fdatasync of its files', higherIsBetter: true,
      });
      // No tool that fsyncs goes faster than the volume takes durable bytes: when that is below
      // 0.8x of mariadb-binlog without fsync, the target cannot be met on this machine by anyone.
      const device = mbps(median(refRuns.map((r) => r.deviceSeconds)));
      report({
        name: `catch-up throughput, streaming phase, median of ${ROUNDS}, against the volume's own durable append rate`,
        unit: 'MB/s', ours: streamMedian, reference: device, referenceName: 'O_DIRECT 1 MiB x4 + fdatasync per 16 MiB, from memory', higherIsBetter: true,
      });
      // Nothing built on zongji over mysql2 streams faster than that stack reads and drops.
      const libraryBest = mbps(Math.min(...libraryRuns.map((r) => r.seconds)));
      report({
        name: `read side alone: zongji over mysql2, every event read and dropped, best of ${ROUNDS} (first event to last)`,
        unit: 'MB/s', ours: libraryBest, reference: refBest, referenceName, higherIsBetter: true,
      });
      report({
        name: `read side alone: the agent's source and framer (CRC32, chain, boundaries), nothing written, best of ${ROUNDS}`,
        unit: 'MB/s', ours: mbps(Math.min(...captureRuns.map((r) => r.seconds))), reference: refBest, referenceName, higherIsBetter: true,
      });
      if (libraryBest < 0.8 * refBest) say(`  note: zongji over mysql2 alone reads ${libraryBest.toFixed(0)} MB/s here, below 0.8x of mariadb-binlog without fsync (${(0.8 * refBest).toFixed(0)} MB/s): no agent built on it can meet the target on this machine`);
      if (device < 0.8 * refBest) say(`  note: this volume makes bytes durable at ${device.toFixed(0)} MB/s, below 0.8x of mariadb-binlog without fsync (${(0.8 * refBest).toFixed(0)} MB/s): no fsyncing tool can meet the target here`);
      report({ name: `catch-up throughput, whole run (process start to last byte fsynced), best of ${ROUNDS}`, unit: 'MB/s', ours: wholeBest, reference: refBest, referenceName, higherIsBetter: true });
      report({ name: `catch-up throughput, whole run, median of ${ROUNDS}`, unit: 'MB/s', ours: wholeMedian, reference: refMedian, referenceName, higherIsBetter: true });
      const peak = Math.max(...runs.map((r) => r.peakRssMb));
      report({ name: 'agent peak RSS during catch-up (highest of all rounds)', unit: 'MB', ours: peak, higherIsBetter: false, target: '< 150 MB', met: peak < 150 });
      report({ name: 'agent CPU time (user + system) per catch-up, median', unit: 's', ours: median(runs.map((r) => r.cpuSeconds)), higherIsBetter: false });
      report({ name: `slowest /lag answer during catch-up (polled every ${POLL_INTERVAL_MS}-${20 * POLL_INTERVAL_MS} ms, more often near the end), all rounds`, unit: 'ms', ours: Math.max(...runs.map((r) => r.slowestLagMs)), higherIsBetter: false });
    } finally {
      await primary.destroy();
      removeBenchDir(dir);
    }
  },
};
