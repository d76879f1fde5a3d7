import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { compareBinlogPositions, type BinlogPosition } from '../../src/core/binlog-position.js';
import { freePort } from '../../src/sandbox/free-port.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { busyCores, cpuByThreadName, cpuSeconds, formatCpuByThread, machineCpu, type MachineCpu } from './process-cpu.js';
import { HOTSPARE_BIN, hotspareNodeFlags } from './hotspare-command.js';


/** One `hotspare agent` process catching up to a head, as an operator runs it. */
export interface AgentCatchUp {
  /** Process start to the whole backlog durable (as /lag reports it). */
  wholeSeconds: number;
  /** First 'streaming binlog to replica' log line to the whole backlog durable. */
  streamSeconds: number;
  peakRssMb: number;
  /** User and system CPU time of the agent process over the run. */
  cpuSeconds: number;
  /** CPU the primary server used during the run. */
  serverCpu: number;
  /** CPU seconds by thread, for finding where the time goes. */
  threads: string;
  /** The slowest /lag answer during the catch-up. */
  slowestLagMs: number;
  /** The machine's cores busy on average during the streaming phase (every process's work), and how many it has. */
  streamBusyCores: { busy: number; cores: number };
}

export interface AgentCatchUpOptions {
  primary: MariadbServer;
  /** Where the config and the state folder go. */
  dir: string;
  /** The agent config's replica (its first and only one). */
  replica: object;
  /** The position the replica's durable point must reach. */
  head: BinlogPosition;
  /** How often /lag is asked near the end of the catch-up, in ms (up to 20 times as long while far behind: pollDelayMs). */
  pollIntervalMs: number;
  serverId?: number;
}

/**
 * Runs the real agent (`bin/hotspare.js agent`, its own process) until `/lag` reports the
 * replica durable at `head`, then stops it with SIGTERM. Takes BENCH_AGENT_BINLOG (binlog
 * tuning), BENCH_CPU_PROF_DIR (a CPU profile per run), BENCH_AGENT_NODE_FLAGS (node flags),
 * BENCH_AGENT_STDOUT (its standard output, appended) and
 * BENCH_AGENT_LOG (the log lines, appended; with HOTSPARE_LOG_LEVEL=debug, flow control too).
 */
export async function runAgentCatchUp(options: AgentCatchUpOptions): Promise<AgentCatchUp> {
  const { primary, dir, head } = options;
  const httpPort = await freePort();
  const config = join(dir, 'agent.json');
  writeFileSync(config, JSON.stringify({
    primary: { host: '127.0.0.1', port: primary.port, user: 'root', password: '', serverId: options.serverId ?? 4242 },
    stateDir: join(dir, 'state'),
    http: { listen: `127.0.0.1:${httpPort}` },
    replicas: [options.replica],
    ...(process.env['BENCH_AGENT_BINLOG'] === undefined ? {} : { binlog: JSON.parse(process.env['BENCH_AGENT_BINLOG']) as unknown }),
  }));
  const serverCpuNow = (): number => (primary.pid === undefined ? 0 : cpuSeconds(primary.pid));
  const serverCpuBefore = serverCpuNow();
  const start = process.hrtime.bigint();
  const profile = process.env['BENCH_CPU_PROF_DIR'];
  const flags = profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`];
  flags.push(...(process.env['BENCH_AGENT_NODE_FLAGS']?.split(' ').filter((f) => f !== '') ?? []));
  // As an operator's `hotspare agent` runs: with the command's own node flags (its shebang).
  // BENCH_AGENT_STDOUT=FILE: the agent's standard output is appended there (where --trace-gc prints).
  const stdoutFile = process.env['BENCH_AGENT_STDOUT'];
  const stdout = stdoutFile === undefined ? 'ignore' : openSync(stdoutFile, 'a');
  const child = spawn(process.execPath, [...hotspareNodeFlags(), ...flags, HOTSPARE_BIN, 'agent', '--config', config], { stdio: ['ignore', stdout, 'pipe'] });
  if (typeof stdout === 'number') closeSync(stdout);
  const pid = child.pid ?? 0;
  let streamingAt: bigint | undefined;
  let streamingCpu: MachineCpu | undefined;
  const logFile = process.env['BENCH_AGENT_LOG'];
  child.stderr?.on('data', (chunk: Buffer) => {
    if (logFile !== undefined) appendFileSync(logFile, chunk);
    if (streamingAt === undefined && chunk.toString().includes('streaming binlog to replica')) {
      streamingAt = process.hrtime.bigint();
      streamingCpu = machineCpu();
    }
  });
  let peak = 0;
  let slowestLagMs = 0;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error('agent exited during the benchmark');
      peak = Math.max(peak, peakRssMb(pid));
      const point = streamingAt === undefined ? undefined : await durablePoint(httpPort).catch(() => undefined);
      if (point !== undefined) {
        slowestLagMs = Math.max(slowestLagMs, point.ms);
        if (point.file !== null && point.position !== null && compareBinlogPositions({ file: point.file, position: point.position }, head) >= 0) break;
      }
      // Often near the end (it dates the last byte), seldom before: each answer takes the
      // agent's main thread from the catch-up it measures (every 10 ms: about 5% of it).
      await new Promise((r) => setTimeout(r, pollDelayMs(point?.bytesBehind, options.pollIntervalMs)));
    }
    const end = process.hrtime.bigint();
    const endCpu = machineCpu();
    peak = Math.max(peak, peakRssMb(pid));
    return {
      wholeSeconds: Number(end - start) / 1e9,
      streamSeconds: Number(end - (streamingAt ?? start)) / 1e9,
      peakRssMb: peak,
      cpuSeconds: cpuSeconds(pid),
      serverCpu: serverCpuNow() - serverCpuBefore,
      threads: formatCpuByThread(cpuByThreadName(pid)),
      slowestLagMs,
      streamBusyCores: busyCores(streamingCpu ?? endCpu, endCpu),
    };
  } finally {
    child.kill('SIGTERM');
    if (child.exitCode === null) await new Promise((r) => child.once('exit', r));
  }
}

/** Peak resident set of a process so far (VmHWM), in MB. */
export function peakRssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmHWM:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Bytes a catch-up is taken to cover per millisecond at most (about 2 GB/s), to poll again before it can be done. */
const CATCH_UP_BYTES_PER_MS_MAX = 2_000_000;

/**
 * When to ask /lag again: `fastestMs` once the replica is within a few milliseconds' work of
 * the head (so the end is dated to within that), up to 20 times that while far behind.
 */
export function pollDelayMs(bytesBehind: number | null | undefined, fastestMs: number): number {
  if (bytesBehind === null || bytesBehind === undefined) return fastestMs;
  return Math.min(20 * fastestMs, Math.max(fastestMs, Math.floor(bytesBehind / CATCH_UP_BYTES_PER_MS_MAX / 2)));
}

/** GET /lag: the first replica's durable point, how far behind the head it is, and how long the answer took. */
function durablePoint(port: number): Promise<{ file: string | null; position: number | null; bytesBehind: number | null; ms: number }> {
  const start = process.hrtime.bigint();
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/lag' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        try {
          const report = JSON.parse(body) as { replicas: { binlog: { file: string | null; position: number | null; bytesBehind: number | null } }[] };
          const binlog = report.replicas[0]?.binlog;
          resolve({ file: binlog?.file ?? null, position: binlog?.position ?? null, bytesBehind: binlog?.bytesBehind ?? null, ms: Number(process.hrtime.bigint() - start) / 1e6 });
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      });
    }).on('error', reject);
  });
}
