import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { closeSync, cpSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareBinlogNames } from '../../src/archive/archive-layout.js';
import { loadAgentConfig } from '../../src/config/load.js';
import type { DurablePoint } from '../../src/core/binlog-record.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { cpuByThreadName, cpuSeconds, formatCpuByThread } from './process-cpu.js';
import { peakRssMb, runAgentCatchUp, type AgentCatchUp } from './agent-process.js';
import { HOTSPARE_BIN, hotspareNodeFlags } from './hotspare-command.js';
import { deviceDurableSeconds } from './device-durable-rate.js';
import { benchDir, median, removeBenchDir, say, type BenchSuite } from './bench-suite.js';
import { seedBaseBackup } from './seed-base-backup.js';
import { writeIntoPipes } from './write-into-pipes.js';

const execFileAsync = promisify(execFile);
/**
 * The backlog the target is read on (BENCH_REMOTE_BACKLOG_MB, default 1 GiB): long enough to
 * measure the streaming itself. Before the sixteenth session it was 200 MB, caught up in about
 * half a second, of which a fresh agent and receiver spend much compiling their code as they go
 * (a system-wide profile: 190 ms of CPU on V8's compiler threads in a 550 ms catch-up) and
 * sizing their heaps; their CPU per 200 MB was 0.55-0.6 s and 0.35-0.45 s there, 0.18-0.25 s
 * each over the rest of a 1 GB backlog. The short backlog is still caught up, and reported
 * without a target (BENCH_REMOTE_SHORT_BACKLOG_MB, default 200; 0 leaves it out).
 */
const DEFAULT_BACKLOG_MB = 1024;
const DEFAULT_SHORT_BACKLOG_MB = 200;
const LATENCY_TX_PER_S = 1000;
const LATENCY_SECONDS = 10;
const LATENCY_CONNECTIONS = 4;
/**
 * Rounds of (mariadb-binlog, remote catch-up), the order alternating: one run of each is at the
 * mercy of whatever else the machine does at that moment (BENCH_REMOTE_ROUNDS to change). Five:
 * on a VM whose host takes back the guest's free memory, mariadb-binlog writing 1 GiB into new
 * page-cache pages ran anywhere from 228 to 862 MB/s (dd of 1 GB into a new file: 0.65-5.7 GB/s,
 * over an existing one 13-16 GB/s), and three rounds could all land on its slow side.
 */
const ROUNDS = Number(process.env['BENCH_REMOTE_ROUNDS'] ?? 5);
/** Issue 4's target: the remote catch-up at least this share of mariadb-binlog's throughput. */
const TARGET_SHARE = 0.7;
/** How often the bench asks each catch-up agent's /lag where the replica's durable point stands. */
const POLL_INTERVAL_MS = 10;
/** The share of the machine's cores busy during a catch-up above which the suite says the run was CPU-bound. */
const BUSY_SHARE_CPU_BOUND = 0.85;

/**
 * Remote streaming (issue 4): catch-up throughput of a `remote` replica through a
 * `hotspare receive` process on loopback, against the file replica and against
 * `mariadb-binlog --read-from-remote-server --raw` on the same backlog (a short one, then the
 * same grown to BENCH_REMOTE_BACKLOG_MB, which the target is read on); then commit-to-fsync latency on
 * the standby under ~1000 small transactions per second.
 */
export const remoteStreamingSuite: BenchSuite = {
  title: 'remote streaming through hotspare receive (issue 4)',
  async run(report) {
    if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new Error(`BENCH_REMOTE_ROUNDS must be a whole number of at least 1, not ${process.env['BENCH_REMOTE_ROUNDS']}`);
    const { backlogBytes, shortBacklogBytes } = remoteBacklogSizes(process.env);
    const dir = benchDir('remote');
    const primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
    let receiver: ChildProcess | undefined;
    try {
      // Every round's remote catch-up starts from a copy of this archive (base only), through a
      // receiver started for it, as a standby that comes back after an outage.
      const template = join(dir, 'remote-template');
      await seedBaseBackup(primary, template);
      await seedBaseBackup(primary, join(dir, 'file-archive'));
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, 'bench-token');

      /**
       * Reference: mariadb-binlog pulling the backlog raw into a folder; `into: 'pipes'` makes each
       * file a named pipe that `cat` empties, nothing stored (no page cache to fill).
       */
      const reference = async (backlog: Backlog, into: 'files' | 'pipes' = 'files'): Promise<number> => {
        const refDir = join(dir, `ref-${into}`);
        rmSync(refDir, { recursive: true, force: true });
        mkdirSync(refDir);
        const pipes = backlog.names.map((name) => join(refDir, name));
        if (into === 'pipes') for (const pipe of pipes) await execFileAsync('mkfifo', [pipe]);
        const args = ['--read-from-remote-server', '--raw', `--host=127.0.0.1`, `--port=${primary.port}`, '--user=root', `--result-file=${refDir}/`, '--to-last-log', backlog.names[0] as string];
        const refStart = performance.now();
        // cat reads each pipe to its end in turn, as mariadb-binlog writes and closes one file after the other.
        await (into === 'pipes' ? writeIntoPipes(pipes, 'mariadb-binlog', args) : execFileAsync('mariadb-binlog', args));
        const seconds = (performance.now() - refStart) / 1000;
        rmSync(refDir, { recursive: true, force: true });
        return backlog.bytes / 1048576 / seconds;
      };
      // Ours: the real agent (its own process, as an operator runs it) through a receiver started for the round.
      let lastArchive = '';
      let archives = 0;
      const remoteRound = async (backlog: Backlog): Promise<{ run: AgentCatchUp; receiverCpu: number; receiverThreads: string; receiverPeakRssMb: number }> => {
        const n = archives++;
        const archive = join(dir, `remote-archive-${n}`);
        cpSync(template, archive, { recursive: true });
        if (lastArchive !== '') rmSync(lastArchive, { recursive: true, force: true });
        lastArchive = archive;
        const port = await freePort();
        const child = await spawnReceiver(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
        try {
          const pid = child.pid ?? 0;
          const [threadsBefore, cpuBefore] = [cpuByThreadName(pid), cpuSeconds(pid)];
          const run = await runAgentCatchUp({ primary, dir: agentDir(dir, `remote-${n}`), replica: { name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }, head: backlog.head, pollIntervalMs: POLL_INTERVAL_MS });
          return { run, receiverCpu: cpuSeconds(pid) - cpuBefore, receiverThreads: formatCpuByThread(cpuByThreadName(pid), threadsBefore), receiverPeakRssMb: peakRssMb(pid) };
        } finally {
          await stopReceiver(child);
        }
      };
      /** ROUNDS rounds of (mariadb-binlog, remote catch-up) over the backlog as it stands, the order alternating. */
      const rounds = async (backlog: Backlog): Promise<Stage> => {
        const mb = backlog.bytes / 1048576;
        say(`  backlog: ${mb.toFixed(0)} MB in ${backlog.names.length} files; ${ROUNDS} rounds, the order alternating`);
        const stage: Stage = { mb, refRuns: [], remoteRuns: [], busyRounds: [] };
        for (let round = 0; round < ROUNDS; round++) {
          let ours: Awaited<ReturnType<typeof remoteRound>>;
          if (round % 2 === 0) {
            stage.refRuns.push(await reference(backlog));
            ours = await remoteRound(backlog);
          } else {
            ours = await remoteRound(backlog);
            stage.refRuns.push(await reference(backlog));
          }
          const { run } = ours;
          stage.remoteRuns.push(mb / run.streamSeconds);
          say(`  round ${round + 1}: mariadb-binlog ${(stage.refRuns.at(-1) as number).toFixed(0)} MB/s; remote replica streaming ${(mb / run.streamSeconds).toFixed(0)} MB/s, whole run ${(mb / run.wholeSeconds).toFixed(0)} MB/s; CPU (s): agent ${run.cpuSeconds.toFixed(2)} (${run.threads}), receiver ${ours.receiverCpu.toFixed(2)} (${ours.receiverThreads}), server ${run.serverCpu.toFixed(2)}; machine busy streaming ${run.streamBusyCores.busy.toFixed(2)} of ${run.streamBusyCores.cores} cores; peak RSS: agent ${run.peakRssMb.toFixed(0)} MB, receiver ${ours.receiverPeakRssMb.toFixed(0)} MB`);
          stage.busyRounds.push(run.streamBusyCores);
        }
        return stage;
      };

      const short = shortBacklogBytes > 0 ? await rounds(await buildBacklog(primary, shortBacklogBytes)) : undefined;
      const backlog = await buildBacklog(primary, backlogBytes);
      const long = await rounds(backlog);
      const { mb, refRuns, remoteRuns, busyRounds } = long;
      const target = backlog.head;
      // On one host the agent, the receiver and the server share the cores that, in use, are two
      // hosts': when they are all busy, the figure is a measure of this machine's CPU, not of the
      // link or the volume.
      const busy = median(busyRounds.map((b) => b.busy));
      const cores = (busyRounds[0] as AgentCatchUp['streamBusyCores']).cores;
      const bound = busy >= BUSY_SHARE_CPU_BOUND * cores ? ': CPU-bound (agent, receiver and server share the cores here; an operator\'s receiver runs on the standby\'s host)' : '';
      say(`  the machine's ${cores} cores were ${((100 * busy) / cores).toFixed(0)}% busy during the ${mb.toFixed(0)} MB catch-ups' streaming (median)${bound}`);
      const pipeMBs = await reference(backlog, 'pipes');
      say(`  mariadb-binlog into pipes, nothing stored: ${pipeMBs.toFixed(0)} MB/s`);
      const deviceMBs = mb / (await deviceDurableSeconds(dir, backlog.bytes));
      const file = await runAgentCatchUp({ primary, dir: agentDir(dir, 'file'), replica: { name: 'local', type: 'file', path: join(dir, 'file-archive') }, head: target, pollIntervalMs: POLL_INTERVAL_MS, serverId: 4252 });
      const fileMBs = mb / file.streamSeconds;
      say(`  file replica: streaming ${fileMBs.toFixed(0)} MB/s, whole run ${(mb / file.wholeSeconds).toFixed(0)} MB/s; CPU (s): agent ${file.cpuSeconds.toFixed(2)} (${file.threads}), server ${file.serverCpu.toFixed(2)}`);
      // As in the binlog suite, the target is read on the streaming phase: the whole run also pays
      // the agent's start, preflight and the archive's handshake (once per agent lifetime).
      const refBest = Math.max(...refRuns);
      const remoteBest = Math.max(...remoteRuns);
      const remoteMedian = median(remoteRuns);
      const size = `${mb.toFixed(0)} MB backlog`;
      /** A stage's best and median rows against mariadb-binlog's; with `withTarget`, the target on the best. */
      const reportStage = (stage: Stage, label: string, withTarget: boolean): void => {
        const [ours, reference] = [Math.max(...stage.remoteRuns), Math.max(...stage.refRuns)];
        const met = withTarget ? { target: `>= ${TARGET_SHARE}x mariadb-binlog`, met: ours >= TARGET_SHARE * reference } : {};
        report({ name: `catch-up throughput, remote replica via receive (loopback), ${label}, streaming phase, best of ${ROUNDS}`, unit: 'MB/s', ours, reference, referenceName: 'mariadb-binlog --raw', higherIsBetter: true, ...met });
        report({ name: `catch-up throughput, remote replica via receive (loopback), ${label}, streaming phase, median of ${ROUNDS}`, unit: 'MB/s', ours: median(stage.remoteRuns), reference: median(stage.refRuns), referenceName: 'mariadb-binlog --raw', higherIsBetter: true });
      };
      reportStage(long, size, true);
      if (short !== undefined) reportStage(short, `${short.mb.toFixed(0)} MB backlog (a fresh agent and receiver compile their code as they go)`, false);
      report({ name: `catch-up throughput, remote replica, ${size}, best of ${ROUNDS}, against mariadb-binlog into pipes (nothing stored, one run)`, unit: 'MB/s', ours: remoteBest, reference: pipeMBs, referenceName: 'mariadb-binlog --raw into pipes', higherIsBetter: true });
      report({ name: `catch-up throughput, remote vs file replica, ${size}, streaming phase (remote median)`, unit: 'MB/s', ours: remoteMedian, reference: fileMBs, referenceName: 'file replica', higherIsBetter: true });
      // The receiver fsyncs what it acknowledges: it cannot go faster than its volume takes durable bytes.
      report({ name: "catch-up throughput, remote (median) vs the volume's own durable append rate", unit: 'MB/s', ours: remoteMedian, reference: deviceMBs, referenceName: 'O_DIRECT 1 MiB x4 + fdatasync per 16 MiB, from memory', higherIsBetter: true });
      if (deviceMBs < TARGET_SHARE * refBest) say(`  note: this volume makes bytes durable at ${deviceMBs.toFixed(0)} MB/s, below ${TARGET_SHARE}x of mariadb-binlog without fsync (${(TARGET_SHARE * refBest).toFixed(0)} MB/s): no fsyncing receiver can meet the target here`);

      // The latency part streams on from the last round's archive, through a receiver of its own.
      const port = await freePort();
      receiver = await spawnReceiver(['--archive', lastArchive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
      const latencyAgent = await startAgent(primary, dir, { name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile });
      const tracker = latencyAgent.trackers[0];
      while (!reached(tracker?.snapshot.durable, target)) await new Promise((r) => setTimeout(r, 5));
      const latency = await commitToFsync(primary, dir, latencyAgent);
      report({ name: `commit->fsync latency p50 (~${LATENCY_TX_PER_S} tx/s, ${latency.count} tx)`, unit: 'ms', ours: latency.p50, higherIsBetter: false });
      report({ name: `commit->fsync latency p99 (~${latency.rate.toFixed(0)} tx/s achieved)`, unit: 'ms', ours: latency.p99, higherIsBetter: false, target: '< 25 ms', met: latency.p99 < 25 });
      await latencyAgent.stop();
    } finally {
      if (receiver !== undefined) await stopReceiver(receiver);
      await primary.destroy();
      removeBenchDir(dir);
    }
  },
};

interface Backlog {
  bytes: number;
  /** Every binlog file's name, oldest first: the reference reads from the first. */
  names: string[];
  /** The primary's head once the backlog is written: where a catch-up ends. */
  head: { file: string; position: number };
}

/** One backlog's rounds: each round's throughput (MB/s) of the reference and of ours, and how busy the machine was. */
interface Stage {
  mb: number;
  refRuns: number[];
  remoteRuns: number[];
  busyRounds: AgentCatchUp['streamBusyCores'][];
}

/** Writes ~2 MB transactions to the primary until its binlog holds at least `targetBytes` (it grows on from what is there). */
async function buildBacklog(primary: MariadbServer, targetBytes: number): Promise<Backlog> {
  const conn = await primary.connect();
  await conn.query('CREATE DATABASE IF NOT EXISTS bench');
  await conn.query('CREATE TABLE IF NOT EXISTS bench.rows (id BIGINT AUTO_INCREMENT PRIMARY KEY, a INT, pad VARCHAR(1000)) ENGINE=InnoDB');
  await conn.query('CREATE TABLE IF NOT EXISTS bench.small (id BIGINT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB');
  for (;;) {
    const [rows] = await conn.query('SHOW BINARY LOGS');
    const list = rows as { Log_name: string; File_size: string }[];
    const bytes = list.reduce((n, r) => n + Number(r.File_size), 0);
    if (bytes >= targetBytes) {
      await conn.end();
      return { bytes, names: list.map((r) => r.Log_name), head: await head(primary) };
    }
    await conn.query('INSERT INTO bench.rows (a, pad) SELECT seq, REPEAT(CHAR(65 + seq % 26), 1000) FROM bench.seq_1_to_2000');
  }
}

/**
 * The two backlogs' sizes in bytes, from BENCH_REMOTE_BACKLOG_MB and BENCH_REMOTE_SHORT_BACKLOG_MB
 * (whole numbers of MB). Read when the suite runs, so that a bad value stops this suite and not
 * the import of every other. The target's backlog must hold something, and the short one (0 to
 * leave it out) must be shorter: grown to a size it already has, the target's stage would run
 * on the short backlog again and report it as the long one.
 */
export function remoteBacklogSizes(env: Record<string, string | undefined>): { backlogBytes: number; shortBacklogBytes: number } {
  const megabytes = (name: string, fallback: number): number => {
    const text = env[name];
    if (text === undefined) return fallback;
    // Digits only: Number() would take '' and ' ' as 0, and '1e3' or '0x10' too.
    if (!/^\d+$/.test(text)) throw new Error(`${name} must be a whole number of MB, not ${JSON.stringify(text)}`);
    return Number(text);
  };
  const backlogMb = megabytes('BENCH_REMOTE_BACKLOG_MB', DEFAULT_BACKLOG_MB);
  const shortMb = megabytes('BENCH_REMOTE_SHORT_BACKLOG_MB', DEFAULT_SHORT_BACKLOG_MB);
  if (backlogMb < 1) throw new Error(`BENCH_REMOTE_BACKLOG_MB must be at least 1, not ${backlogMb}`);
  if (shortMb >= backlogMb) throw new Error(`BENCH_REMOTE_SHORT_BACKLOG_MB (${shortMb}) must be below BENCH_REMOTE_BACKLOG_MB (${backlogMb}), or 0 to leave the short backlog out`);
  return { backlogBytes: backlogMb * 1024 * 1024, shortBacklogBytes: shortMb * 1024 * 1024 };
}

function spawnReceiver(args: string[]): Promise<ChildProcess> {
  // BENCH_CPU_PROF_DIR=DIR: the receiver writes a CPU profile there (the agent's too, in agent-process.ts).
  // BENCH_RECEIVER_NODE_FLAGS: node flags for the receiver alone (e.g. --trace-gc), and
  // BENCH_RECEIVER_STDOUT: a file its standard output is appended to (where such flags print).
  const profile = process.env['BENCH_CPU_PROF_DIR'];
  const flags = [...(profile === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${profile}`]), ...(process.env['BENCH_RECEIVER_NODE_FLAGS']?.split(' ').filter((f) => f !== '') ?? [])];
  const stdoutFile = process.env['BENCH_RECEIVER_STDOUT'];
  const stdout = stdoutFile === undefined ? 'ignore' : openSync(stdoutFile, 'a');
  const child = spawn(process.execPath, [...hotspareNodeFlags(), ...flags, HOTSPARE_BIN, 'receive', ...args], { stdio: ['ignore', stdout, 'pipe'], env: { ...process.env, HOTSPARE_LOG_LEVEL: 'warn' } });
  if (typeof stdout === 'number') closeSync(stdout);
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => resolve(child), 3_000);
    child.stderr?.on('data', (t: Buffer) => (seen += t.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`receiver exited ${String(code)}: ${seen}`));
    });
  });
}

/** How long a receiver may take to exit after SIGTERM before it is killed. */
const RECEIVER_STOP_MS = 15_000;

/** Stops a receiver (SIGTERM, SIGKILL after RECEIVER_STOP_MS) and waits for it to exit. */
async function stopReceiver(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), RECEIVER_STOP_MS);
  await exited;
  clearTimeout(timer);
}

/** Each catch-up's agent has its own folder (config, state). */
function agentDir(dir: string, tag: string): string {
  const path = join(dir, `agent-${tag}`);
  mkdirSync(path, { recursive: true });
  return path;
}

/** The latency part's agent, in this process (it reads the agent's tracker), from where the catch-up left the remote archive. */
async function startAgent(primary: MariadbServer, dir: string, replica: object): Promise<SyncAgent> {
  const path = join(dir, 'agent-latency.json');
  // BENCH_AGENT_BINLOG='{"highWaterBytes":...}': binlog tuning to try against the defaults (as in the binlog suite).
  writeFileSync(path, JSON.stringify({ primary: { host: '127.0.0.1', port: primary.port, user: 'root', serverId: 4242 }, stateDir: join(dir, 'state-latency'), replicas: [replica], ...(process.env['BENCH_AGENT_BINLOG'] === undefined ? {} : { binlog: JSON.parse(process.env['BENCH_AGENT_BINLOG']) as unknown }) }));
  const config = loadAgentConfig(path);
  const agent = new SyncAgent(config, await SyncAgent.preflight(config), { logger: silentLogger(), clock: systemClock, random01: Math.random });
  agent.start();
  return agent;
}

function reached(point: DurablePoint | undefined, head: { file: string; position: number }): boolean {
  if (point === undefined) return false;
  const order = compareBinlogNames(point.file, head.file);
  return order > 0 || (order === 0 && point.position >= head.position);
}

async function head(primary: MariadbServer): Promise<{ file: string; position: number }> {
  const conn = await primary.connect();
  const [rows] = await conn.query('SHOW MASTER STATUS');
  await conn.end();
  const row = (rows as { File: string; Position: string }[])[0] as { File: string; Position: string };
  return { file: row.File, position: Number(row.Position) };
}

/** Small transactions at a steady rate; each one's latency is from its commit returning to the ack covering its GTID. */
async function commitToFsync(primary: MariadbServer, _dir: string, agent: SyncAgent): Promise<{ p50: number; p99: number; count: number; rate: number }> {
  const tracker = agent.trackers[0];
  if (tracker === undefined) throw new Error('no tracker');
  const committedAt = new Map<number, number>();
  const latencies: number[] = [];
  const original = tracker.apply.bind(tracker);
  tracker.apply = (event, nowMs) => {
    original(event, nowMs);
    if (event.kind !== 'durable' || event.point.gtid === undefined) return;
    const now = performance.now();
    const seq = Number(event.point.gtid.split('-')[2]);
    for (const [s, at] of committedAt) {
      if (s > seq) continue;
      latencies.push(now - at);
      committedAt.delete(s);
    }
  };
  const perConnectionIntervalMs = (1000 * LATENCY_CONNECTIONS) / LATENCY_TX_PER_S;
  const deadline = performance.now() + LATENCY_SECONDS * 1000;
  let count = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: LATENCY_CONNECTIONS }, async (_, c) => {
      const conn = await primary.connect({ multipleStatements: true });
      let next = performance.now() + (c * perConnectionIntervalMs) / LATENCY_CONNECTIONS;
      while (performance.now() < deadline) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        next += perConnectionIntervalMs;
        const [results] = await conn.query('INSERT INTO bench.small (v) VALUES (1); SELECT @@last_gtid AS g');
        const at = performance.now();
        const gtid = String(((results as unknown[])[1] as { g: string }[])[0]?.g ?? '');
        committedAt.set(Number(gtid.split('-')[2]), at);
        count += 1;
      }
      await conn.end();
    }),
  );
  const rate = count / ((performance.now() - started) / 1000);
  const until = performance.now() + 5_000;
  while (committedAt.size > 0 && performance.now() < until) await new Promise((r) => setTimeout(r, 10));
  tracker.apply = original;
  latencies.sort((a, b) => a - b);
  const pick = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? Number.NaN;
  return { p50: pick(0.5), p99: pick(0.99), count: latencies.length, rate };
}
