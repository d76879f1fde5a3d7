import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { RowDataPacket } from 'mysql2/promise';
import type { LagReport } from '../../src/agent/lag-monitor.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { benchDir, removeBenchDir, say, type BenchSuite } from './bench-suite.js';

import { HOTSPARE_BIN, hotspareNodeFlags } from './hotspare-command.js';
/** Phases of the run: streaming under load, an outage of the replica's stream, recovery. */
const STREAMING_MS = 6_000;
const OUTAGE_RECONNECT_DELAY_MS = 2_500;
const RECOVERY_MS = 4_000;
const SAMPLE_GAP_MS = 2;

interface Commit {
  beforeMs: number;
  afterMs: number;
  file: string;
  position: number;
}

interface Sample {
  sentMs: number;
  receivedMs: number;
  file: string;
  position: number;
  secondsBehind: number;
  connected: boolean;
}

/**
 * /lag under a write load, against a real agent process with a file replica: the latency of
 * each request (p99), and the accuracy of secondsBehind against the true age of the oldest
 * commit not yet durable on the replica. The truth comes from a single writer that records
 * each commit's time and end position (SHOW MASTER STATUS right after it, no other writer);
 * each /lag sample gives the durable position, and the oldest commit past it dates the loss.
 * Mid-run the agent's dump connection is killed and reconnects only after a delay, so the
 * accuracy is measured while streaming and during an outage, and the latency while the agent
 * catches up on the backlog. The latency reference is a bare node:http server in its own
 * process that answers with a copy of a real /lag body and does nothing else: the sampler
 * alternates between the two, so both see the same CPU contention, and what ours adds over
 * the reference is the agent's own work. No reference tool serves the accuracy figure.
 */
export const lagEndpointSuite: BenchSuite = {
  title: 'lag endpoint (issue 6)',
  async run(report) {
    const dir = benchDir('lag');
    const primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
    const port = await freePort();
    const configPath = join(dir, 'agent.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 9_100 },
        stateDir: join(dir, 'state'),
        replicas: [{ name: 'bench', type: 'file', path: join(dir, 'archive') }],
        http: { listen: `127.0.0.1:${port}` },
        binlog: { retryDelayMsMin: OUTAGE_RECONNECT_DELAY_MS, retryDelayMsMax: OUTAGE_RECONNECT_DELAY_MS },
      }),
    );
    const logFd = openSync(join(dir, 'agent.log'), 'a');
    // BENCH_AGENT_NODE_FLAGS passes node flags to the agent alone, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p"
    // (node refuses --cpu-prof in NODE_OPTIONS).
    const nodeFlags = process.env['BENCH_AGENT_NODE_FLAGS']?.split(' ').filter(Boolean) ?? [];
    const agent = spawn(process.execPath, [...hotspareNodeFlags(), ...nodeFlags, HOTSPARE_BIN, 'agent', '--config', configPath], { stdio: ['ignore', logFd, logFd], env: { ...process.env, HOTSPARE_LOG_LEVEL: 'warn' } });
    closeSync(logFd);
    let reference: ChildProcess | undefined;
    const http = new Agent({ keepAlive: true, maxSockets: 1 });
    const getLag = (): Promise<LagReport> =>
      new Promise((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/lag', agent: http }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => (body += d));
          res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body) as LagReport) : reject(new Error(`HTTP ${res.statusCode}`))));
        });
        req.on('error', reject);
        req.end();
      });
    try {
      const conn = await primary.connect();
      await conn.query('CREATE DATABASE app');
      await conn.query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB');
      let caughtUp: LagReport;
      for (;;) {
        const r = await getLag().catch(() => undefined);
        if (r?.replicas[0]?.state === 'streaming' && r.replicas[0].binlog.bytesBehind === 0) {
          caughtUp = r;
          break;
        }
        await sleep(100);
      }
      const referencePort = await startReference(`${JSON.stringify(caughtUp, null, 2)}\n`, (child) => (reference = child));

      const commits: Commit[] = [];
      const samples: Sample[] = [];
      let writing = true;
      const writer = (async () => {
        while (writing) {
          const beforeMs = Date.now();
          await conn.query("INSERT INTO app.t (v) VALUES ('a row of bench data, about sixty bytes long, give or take')");
          const afterMs = Date.now();
          const [rows] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
          commits.push({ beforeMs, afterMs, file: String(rows[0]?.['File']), position: Number(rows[0]?.['Position']) });
        }
      })();
      // The sampler runs on its own thread so that the writer's callbacks never delay it.
      const sampler = new Worker(SAMPLER_SOURCE, { eval: true, workerData: { port, referencePort, gapMs: SAMPLE_GAP_MS } });
      const referenceSamples: Array<{ sentMs: number; receivedMs: number }> = [];
      const samplesDone = new Promise<Sample[]>((resolve, reject) => {
        sampler.once('message', (m: { samples: Sample[]; referenceSamples: typeof referenceSamples }) => {
          referenceSamples.push(...m.referenceSamples);
          resolve(m.samples);
        });
        sampler.once('error', reject);
      });

      await sleep(STREAMING_MS);
      const admin = await primary.connect();
      const [dumps] = await admin.query<RowDataPacket[]>("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'");
      for (const d of dumps) await admin.query(`KILL ${Number(d['id'])}`);
      await admin.end();
      await sleep(OUTAGE_RECONNECT_DELAY_MS + RECOVERY_MS);
      writing = false;
      await writer;
      sampler.postMessage('stop');
      samples.push(...(await samplesDone));
      await sampler.terminate();
      await conn.end();

      // BENCH_LAG_DUMP=FILE keeps every sample and commit, to see where slow answers fall in the run.
      if (process.env['BENCH_LAG_DUMP'] !== undefined) writeFileSync(process.env['BENCH_LAG_DUMP'], JSON.stringify({ samples, referenceSamples, commits }));
      const latencies = samples.map((s) => s.receivedMs - s.sentMs).sort((a, b) => a - b);
      const referenceLatencies = referenceSamples.map((s) => s.receivedMs - s.sentMs).sort((a, b) => a - b);
      const errorsStreaming: number[] = [];
      const errorsOutage: number[] = [];
      for (const s of samples) {
        const truth = trueAgeMs(commits, s);
        if (truth === undefined) continue;
        const errorMs = Math.abs(s.secondsBehind * 1000 - truth);
        (s.connected ? errorsStreaming : errorsOutage).push(errorMs);
      }
      errorsStreaming.sort((a, b) => a - b);
      errorsOutage.sort((a, b) => a - b);
      say(`  ${commits.length} commits, ${samples.length} /lag requests to the agent and ${referenceLatencies.length} to the reference (${errorsStreaming.length} while streaming, ${errorsOutage.length} during the outage)`);
      const p99 = quantile(latencies, 0.99);
      const ref = { referenceName: 'bare node:http, same body', higherIsBetter: false, unit: 'ms' };
      report({ name: '/lag latency p50 under write load', ours: quantile(latencies, 0.5), reference: quantile(referenceLatencies, 0.5), ...ref });
      report({ name: '/lag latency p99 under write load', ours: p99, reference: quantile(referenceLatencies, 0.99), ...ref, target: '< 5 ms', met: p99 < 5 });
      report({ name: '/lag latency max under write load', ours: latencies[latencies.length - 1] ?? 0, reference: referenceLatencies[referenceLatencies.length - 1] ?? 0, ...ref });
      const streamingP99 = quantile(errorsStreaming, 0.99);
      report({ name: 'secondsBehind error p99 while streaming', unit: 'ms', ours: streamingP99, higherIsBetter: false, target: '< 100 ms', met: streamingP99 < 100 });
      const outageMax = errorsOutage[errorsOutage.length - 1] ?? 0;
      report({ name: 'secondsBehind error p50 during an outage', unit: 'ms', ours: quantile(errorsOutage, 0.5), higherIsBetter: false });
      report({ name: 'secondsBehind error max during an outage', unit: 'ms', ours: outageMax, higherIsBetter: false, target: '< 100 ms', met: outageMax < 100 });
    } finally {
      http.destroy();
      reference?.kill('SIGTERM');
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));
      await primary.destroy();
      if (process.env['BENCH_LAG_DUMP'] !== undefined) writeFileSync(`${process.env['BENCH_LAG_DUMP']}.agent.log`, readFileSync(join(dir, 'agent.log')));
      removeBenchDir(dir);
    }
  },
};

/**
 * GET /lag in a loop, alternating between the agent and the reference server, each on its own
 * keep-alive connection, until told to stop; posts the agent's samples and the reference's
 * latencies.
 */
const SAMPLER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const http = require('node:http');
const agents = { ours: new http.Agent({ keepAlive: true, maxSockets: 1 }), reference: new http.Agent({ keepAlive: true, maxSockets: 1 }) };
const samples = [];
const referenceSamples = [];
let running = true;
parentPort.on('message', () => { running = false; });
const now = () => performance.timeOrigin + performance.now();
function once(which) {
  return new Promise((resolve, reject) => {
    const sentMs = now();
    const port = which === 'ours' ? workerData.port : workerData.referencePort;
    const req = http.request({ host: '127.0.0.1', port, path: '/lag', agent: agents[which] }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => {
        const receivedMs = now();
        const r = JSON.parse(body).replicas[0];
        if (which === 'reference') referenceSamples.push({ sentMs, receivedMs });
        else if (r && r.binlog.file !== null) samples.push({ sentMs, receivedMs, file: r.binlog.file, position: r.binlog.position, secondsBehind: r.binlog.secondsBehind, connected: r.up });
        resolve();
      });
    });
    req.on('error', reject);
    req.end();
  });
}
(async () => {
  while (running) {
    for (const which of ['ours', 'reference']) {
      await once(which);
      await new Promise((r) => setTimeout(r, workerData.gapMs));
    }
  }
  agents.ours.destroy();
  agents.reference.destroy();
  parentPort.postMessage({ samples, referenceSamples });
})();
`;

/** The latency reference: a bare node:http server in its own process, always answering one body. */
const REFERENCE_SOURCE = `
const http = require('node:http');
const body = process.env.REFERENCE_BODY;
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 5000;
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.on('SIGTERM', () => process.exit(0));
`;

async function startReference(body: string, started: (child: ChildProcess) => void): Promise<number> {
  const child = spawn(process.execPath, ['-e', REFERENCE_SOURCE], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, REFERENCE_BODY: body } });
  started(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
    child.once('exit', (code) => reject(new Error(`the reference server exited with ${String(code)}`)));
  });
}

/**
 * The true age (ms) at the sample of the oldest commit whose end lies beyond the durable
 * position the sample reports; 0 when every commit is durable. The server answered at some
 * moment between send and receive: commits that may not have existed then are left out, and
 * a sample whose window straddles a commit is skipped (undefined) as ambiguous.
 */
function trueAgeMs(commits: readonly Commit[], s: Sample): number | undefined {
  const atMs = (s.sentMs + s.receivedMs) / 2;
  for (const c of commits) {
    if (c.beforeMs > s.receivedMs) return 0;
    const beyond = c.file > s.file || (c.file === s.file && c.position > s.position);
    if (!beyond) continue;
    if (c.afterMs > s.sentMs) return undefined;
    return atMs - (c.beforeMs + c.afterMs) / 2;
  }
  return 0;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
