import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LagReport, ReplicaLagReport } from '../../src/agent/lag-monitor.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { AgentProcess, runHotspare, waitFor, writeAgentConfig } from '../support/lag-agent-process.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';

// One primary, one agent process with a file replica, real HTTP. Small thresholds (2 s)
// make "idle for longer than the thresholds" and "over the thresholds" quick to reach.
const REPLICA = 'standby-a';
const MAX_LAG_SECONDS = 2;
const MAX_LAG_BYTES = 1024 * 1024;

let dir: string;
let primary: MariadbServer;
let agent: AgentProcess | undefined;
let configPath: string;
let base: string;

async function getJson<T>(path: string): Promise<{ status: number; body: T }> {
  const res = await fetch(base + path);
  return { status: res.status, body: (await res.json()) as T };
}

async function lag(): Promise<LagReport> {
  const { status, body } = await getJson<LagReport>('/lag');
  expect(status).toBe(200);
  return body;
}

async function replica(): Promise<ReplicaLagReport> {
  const r = (await lag()).replicas.find((x) => x.name === REPLICA);
  if (r === undefined) throw new Error(`no ${REPLICA} in /lag`);
  return r;
}

async function metrics(): Promise<ReturnType<typeof parsePrometheusText>> {
  const res = await fetch(`${base}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parsePrometheusText(await res.text());
}

const check = (...flags: string[]) => runHotspare(['check', '--url', base, ...flags]);

function startAgent(): AgentProcess {
  agent = AgentProcess.start(configPath, join(dir, 'agent.log'));
  return agent;
}

/** A steady write load until stopped: one small transaction every few milliseconds. */
function writeLoad(conn: Connection): { stop: () => Promise<number> } {
  let running = true;
  let rows = 0;
  const done = (async () => {
    while (running) {
      await conn.query('INSERT INTO app.t (v) VALUES (?)', [`row ${rows}`]);
      rows++;
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return rows;
    },
  };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hotspare-lag-'));
  primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
  const conn = await primary.connect();
  await conn.query('CREATE DATABASE app');
  await conn.query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB');
  await conn.end();
  const httpPort = await freePort();
  base = `http://127.0.0.1:${httpPort}`;
  configPath = writeAgentConfig(dir, primary, {
    httpPort,
    // The purge case below checks the `gap` state that `onPurged: stop` keeps; the default
    // (a new base and a restarted chain) is checked in binlog-gap-restart.test.ts.
    binlog: { onPurged: 'stop' },
    replicas: [{ name: REPLICA, type: 'file', path: join(dir, 'archive-a'), thresholds: { maxLagSeconds: MAX_LAG_SECONDS, maxLagBytes: MAX_LAG_BYTES } }],
  });
  startAgent();
});

/** On a failure, the agent's log says why; it goes into the error (the folder is removed after). */
async function withAgentLog<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const tail = agent?.log().split('\n').slice(-15).join('\n') ?? '';
    throw new Error(`${(err as Error).message}\nagent running: ${String(agent?.running)}\nagent log (tail):\n${tail}`);
  }
}

afterAll(async () => {
  await agent?.stop();
  await primary?.destroy();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

describe('lag endpoint', () => {
  it('an idle caught-up replica stays at 0 s and 0 bytes, healthy, for longer than its thresholds', async () => {
    await waitFor('the replica to stream and catch up', async () => {
      const r = await replica();
      return r.state === 'streaming' && r.binlog.bytesBehind === 0 && r.binlog.secondsBehind === 0 ? r : undefined;
    });
    // Nothing is written: heartbeats and head checks alone must keep it "caught up".
    const idleUntil = Date.now() + (MAX_LAG_SECONDS + 2) * 1000;
    let samples = 0;
    while (Date.now() < idleUntil) {
      const report = await lag();
      const r = report.replicas[0];
      expect(r?.state).toBe('streaming');
      expect(r?.binlog.bytesBehind).toBe(0);
      expect(r?.binlog.secondsBehind).toBe(0);
      expect(r?.binlog.file).toBe(report.primary.file);
      expect(r?.binlog.position).toBe(report.primary.position);
      const health = await getJson<{ status: string; reasons: unknown[] }>('/healthz');
      expect(health).toEqual({ status: 200, body: { status: 'ok', reasons: [] } });
      samples++;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(samples).toBeGreaterThan(4);
    const ok = await check();
    expect(ok.stdout).toMatch(/^HOTSPARE OK - /);
    expect(ok.code).toBe(0);
  });

  it('/lag and /metrics agree, and /metrics is valid Prometheus text', async () => {
    const conn = await primary.connect();
    await conn.query("INSERT INTO app.t (v) VALUES ('shipped')");
    await conn.end();
    await waitFor('the write to become durable', async () => {
      const r = await replica();
      return r.binlog.bytesBehind === 0 && r.binlog.bytesShippedTotal > 0 ? r : undefined;
    });
    // Read /metrics between two identical /lag reads, so that nothing moved in between.
    const { after, samples, families } = await waitFor('a quiet /lag, /metrics, /lag triple', async () => {
      const before = await replica();
      const m = await metrics();
      const r = await replica();
      return JSON.stringify(before.binlog) === JSON.stringify(r.binlog) ? { after: r, ...m } : undefined;
    });
    const labels = { replica: REPLICA };
    expect(sampleValue(samples, 'hotspare_replica_lag_seconds', labels)).toBe(after.binlog.secondsBehind);
    expect(sampleValue(samples, 'hotspare_replica_lag_bytes', labels)).toBe(after.binlog.bytesBehind);
    expect(sampleValue(samples, 'hotspare_binlog_bytes_shipped_total', labels)).toBe(after.binlog.bytesShippedTotal);
    expect(sampleValue(samples, 'hotspare_files_bytes_shipped_total', labels)).toBe(0);
    expect(sampleValue(samples, 'hotspare_replica_up', labels)).toBe(1);
    expect(sampleValue(samples, 'hotspare_replica_state', { replica: REPLICA, state: 'streaming' })).toBe(1);
    expect(families.get('hotspare_binlog_bytes_shipped_total')?.type).toBe('counter');
    expect(families.get('hotspare_replica_lag_seconds')?.type).toBe('gauge');
    // The default process metrics are there too.
    expect(families.has('process_cpu_user_seconds_total')).toBe(true);
  });

  it('with the primary down under a write load: disconnected, a growing age, CRITICAL and 503; OK and 200 after recovery', async () => {
    const conn = await primary.connect();
    const load = writeLoad(conn);
    await waitFor('rows to stream', async () => ((await replica()).binlog.bytesShippedTotal > 10_000 ? true : undefined));
    await load.stop();
    await conn.end();
    await primary.stop();

    const first = await waitFor('the replica to be disconnected', async () => {
      const r = await replica();
      return r.state === 'disconnected' && r.binlog.secondsBehind > 0 ? r : undefined;
    });
    expect((await lag()).primary.reachable).toBe(false);
    // The head is unknown: the age counts from the last successful head check and grows.
    await waitFor('the age to grow', async () => ((await replica()).binlog.secondsBehind > first.binlog.secondsBehind ? true : undefined));
    const critical = await waitFor('check to report CRITICAL', async () => {
      const result = await check();
      return result.code === 2 ? result : undefined;
    });
    expect(critical.stdout).toMatch(/^HOTSPARE CRITICAL - standby-a /);
    const unhealthy = await getJson<{ status: string; reasons: Array<{ replica: string; code: string }> }>('/healthz');
    expect(unhealthy.status).toBe(503);
    expect(unhealthy.body.status).toBe('unhealthy');
    expect(unhealthy.body.reasons.map((r) => r.code)).toContain('LAG_SECONDS');
    expect(unhealthy.body.reasons.every((r) => r.replica === REPLICA)).toBe(true);
    const { samples } = await metrics();
    expect(sampleValue(samples, 'hotspare_replica_up', { replica: REPLICA })).toBe(0);
    expect(sampleValue(samples, 'hotspare_replica_lag_seconds', { replica: REPLICA })).toBeGreaterThan(MAX_LAG_SECONDS);

    await primary.restart();
    const recovered = await waitFor('check to report OK again', async () => {
      const result = await check();
      return result.code === 0 ? result : undefined;
    });
    expect(recovered.stdout).toMatch(/^HOTSPARE OK - standby-a streaming 0 s 0 B/);
    await waitFor('/healthz 200', async () => ((await getJson('/healthz')).status === 200 ? true : undefined));
    const r = await replica();
    expect(r.up).toBe(true);
    expect(r.binlog.bytesBehind).toBe(0);
    // The restart rotated the binlog; the replica now stands at the primary's new head.
    expect(r.binlog.file).toBe((await lag()).primary.file);
  });

  it('binlog purged while the agent was stopped: gap with the reason, CRITICAL, 503', async () => {
    await waitFor('the replica to stream', async () => ((await replica()).state === 'streaming' ? true : undefined));
    expect(await agent?.stop()).toBe(0);
    const conn = await primary.connect();
    // The server keeps a file that a dump thread still reads; wait until the stopped agent's is gone.
    await waitFor('the old dump thread to end', async () => {
      const [threads] = await conn.query<import('mysql2').RowDataPacket[]>("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'");
      return threads.length === 0 ? true : undefined;
    });
    await conn.query("INSERT INTO app.t (v) VALUES ('unshipped')");
    await conn.query('FLUSH BINARY LOGS');
    await conn.query('FLUSH BINARY LOGS');
    const [rows] = await conn.query<Array<{ File: string } & import('mysql2').RowDataPacket>>('SHOW MASTER STATUS');
    const newest = rows[0]?.File as string;
    // MariaDB keeps a file until its binlog checkpoint has passed (crash recovery): repeat.
    await waitFor('the purge to take effect', async () => {
      await conn.query(`PURGE BINARY LOGS TO '${newest}'`);
      const [left] = await conn.query<import('mysql2').RowDataPacket[]>('SHOW BINARY LOGS');
      return left.length === 1 && left[0]?.['Log_name'] === newest ? true : undefined;
    });
    await conn.end();
    startAgent();

    const gap = await withAgentLog(
      waitFor('the gap state', async () => {
        const r = await replica();
        return r.state === 'gap' ? r : undefined;
      }),
    );
    expect(gap.problems[0]?.code).toBe('BINLOG_PURGED');
    expect(gap.problems[0]?.message).toContain(`its oldest is ${newest}`);
    expect(gap.problems[0]?.message).toContain('hotspare base');
    const result = await check();
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^HOTSPARE CRITICAL - standby-a gap: BINLOG_PURGED: /);
    const health = await getJson<{ reasons: Array<{ code: string }> }>('/healthz');
    expect(health.status).toBe(503);
    expect(health.body.reasons.map((r) => r.code)).toContain('BINLOG_PURGED');
  });

  it('check: UNKNOWN when the endpoint cannot be read or the arguments are wrong', async () => {
    const port = await freePort();
    const unreachable = await runHotspare(['check', '--url', `http://127.0.0.1:${port}`]);
    expect(unreachable.code).toBe(3);
    expect(unreachable.stdout).toMatch(/^HOTSPARE UNKNOWN - cannot read /);
    const usage = await runHotspare(['check', '--url', base, '--max-lag-seconds', 'x']);
    expect(usage.code).toBe(3);
    expect(usage.stdout).toMatch(/^HOTSPARE UNKNOWN - usage: --max-lag-seconds/);
    const notFound = await fetch(`${base}/nope`);
    expect(notFound.status).toBe(404);
    const post = await fetch(`${base}/lag`, { method: 'POST' });
    expect(post.status).toBe(405);
  });
});
