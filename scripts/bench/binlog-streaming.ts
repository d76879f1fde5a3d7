import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { type BenchSuite, say } from './bench-suite.js';
import { buildBinlogBacklog } from './binlog-backlog.js';
import { seedBaseBackup } from './seed-base-backup.js';

const execFileAsync = promisify(execFile);
/** The issue asks for a backlog of at least 200 MB. */
const BACKLOG_BYTES = 200 * 1024 * 1024;
const ROOT = new URL('../../..', import.meta.url).pathname;

function folderBytes(dir: string): number {
  try {
    return readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

/** Peak resident set of a process so far (VmHWM), in MB. */
function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

/**
 * Issue 2: the agent's catch-up throughput over a binlog backlog to a `file` archive (with
 * fsync) against `mariadb-binlog --read-from-remote-server --raw` into a folder (no fsync),
 * on the same primary in the same run; and the agent's peak RSS.
 */
export const binlogStreamingSuite: BenchSuite = {
  title: 'binlog catch-up to a file archive (issue 2)',
  async run(report) {
    const dir = mkdtempSync(join(tmpdir(), 'hotspare-bench-binlog-'));
    const primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
    try {
      const archive = join(dir, 'archive');
      await seedBaseBackup(primary, archive);
      const backlog = await buildBinlogBacklog(primary, BACKLOG_BYTES);
      say(`  backlog: ${(backlog.totalBytes / 1048576).toFixed(0)} MB in ${backlog.files} files (largest transaction ~64 MB)`);

      // Reference: mariadb-binlog pulling every file raw over the replication protocol.
      const rawDir = join(dir, 'raw');
      mkdirSync(rawDir);
      const refStart = process.hrtime.bigint();
      await execFileAsync('mariadb-binlog', [
        '--read-from-remote-server', '--host=127.0.0.1', `--port=${primary.port}`, '--user=root',
        '--raw', '--to-last-log', `--result-file=${rawDir}/`, 'mysql-bin.000001',
      ], { maxBuffer: 1 << 20 });
      const refSeconds = Number(process.hrtime.bigint() - refStart) / 1e9;
      const refBytes = folderBytes(rawDir);

      // hotspare: the real agent process, from an empty archive until it holds the whole backlog.
      const config = join(dir, 'agent.json');
      writeFileSync(config, JSON.stringify({
        primary: { host: '127.0.0.1', port: primary.port, user: 'root', password: '', serverId: 4242 },
        stateDir: join(dir, 'state'),
        replicas: [{ name: 'bench', type: 'file', path: archive }],
      }));
      const start = process.hrtime.bigint();
      const child = spawn(process.execPath, [join(ROOT, 'bin/hotspare.js'), 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'pipe'] });
      let streamingAt: bigint | undefined;
      child.stderr.on('data', (chunk: Buffer) => {
        if (streamingAt === undefined && chunk.toString().includes('streaming binlog to replica')) streamingAt = process.hrtime.bigint();
      });
      let peak = 0;
      while (folderBytes(join(archive, 'binlog')) < backlog.totalBytes) {
        if (child.exitCode !== null) throw new Error('agent exited during the benchmark');
        peak = Math.max(peak, peakRssMb(child.pid ?? 0));
        await new Promise((r) => setTimeout(r, 10));
      }
      const end = process.hrtime.bigint();
      peak = Math.max(peak, peakRssMb(child.pid ?? 0));
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      const oursSeconds = Number(end - start) / 1e9;
      const streamSeconds = Number(end - (streamingAt ?? start)) / 1e9;
      const mbps = (bytes: number, s: number): number => bytes / 1048576 / s;

      report({
        name: 'catch-up throughput, whole run (process start to last byte fsynced)',
        unit: 'MB/s', ours: mbps(backlog.totalBytes, oursSeconds),
        reference: mbps(refBytes, refSeconds), referenceName: 'mariadb-binlog --raw (no fsync)',
        higherIsBetter: true, target: '>= 0.8x', met: mbps(backlog.totalBytes, oursSeconds) >= 0.8 * mbps(refBytes, refSeconds),
      });
      report({
        name: 'catch-up throughput, streaming phase (after preflight)',
        unit: 'MB/s', ours: mbps(backlog.totalBytes, streamSeconds),
        reference: mbps(refBytes, refSeconds), referenceName: 'mariadb-binlog --raw (no fsync)',
        higherIsBetter: true,
      });
      report({ name: 'agent peak RSS during catch-up', unit: 'MB', ours: peak, higherIsBetter: false, target: '< 150 MB', met: peak < 150 });
    } finally {
      await primary.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
