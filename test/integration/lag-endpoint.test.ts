import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LagReport, ReplicaLagReport } from '../../src/agent/lag-monitor.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { DEFAULT_PURGE_WARNING_FILES } from '../../src/config/defaults.js';
import { compareBinlogPositions } from '../../src/core/lag.js';
import { AgentProcess, runHotspare, waitFor, writeAgentConfig } from '../support/lag-agent-process.js';
import { expectArchiveEqual } from '../support/binlog-compare.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';
import { purgeBinlogsTo } from '../support/primary-head.js';

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

async function getJson<T>(path: string, at = base): Promise<{ status: number; body: T }> {
  const res = await fetch(at + path);
  return { status: res.status, body: (await res.json()) as T };
}

async function lag(at = base): Promise<LagReport> {
  const { status, body } = await getJson<LagReport>('/lag', at);
  expect(status).toBe(200);
  return body;
}

async function replica(name = REPLICA, at = base): Promise<ReplicaLagReport> {
  return replicaIn(await lag(at), name);
}

function replicaIn(report: LagReport, name: string): ReplicaLagReport {
  const r = report.replicas.find((x) => x.name === name);
  if (r === undefined) throw new Error(`no ${name} in /lag`);
  return r;
}

async function metrics(at = base): Promise<ReturnType<typeof parsePrometheusText>> {
  const res = await fetch(`${at}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return parsePrometheusText(await res.text());
}

const check = (...flags: string[]) => runHotspare(['check', '--url', base, ...flags]);
const checkAt = (at: string) => runHotspare(['check', '--url', at]);

// /healthz answers a JSON list of reasons (the contract), empty when healthy.
type Health = Array<{ replica: string; code: string; message: string }>;

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

/** On a failure, the agent's log says why; it goes into the error (the folder is removed after). */
async function withAgentLog<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    const tail = agent?.log().split('\n').slice(-15).join('\n') ?? '';
    throw new Error(`${(err as Error).message}\nagent running: ${String(agent?.running)}\nagent log (tail):\n${tail}`);
  }
}

describe('lag endpoint', () => {
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
      // The purge cases check the `gap` state that `onPurged: stop` keeps; the default (a new
      // base and a restarted chain) is checked in binlog-gap-restart.test.ts.
      binlog: { onPurged: 'stop' },
      replicas: [{ name: REPLICA, type: 'file', path: join(dir, 'archive-a'), thresholds: { maxLagSeconds: MAX_LAG_SECONDS, maxLagBytes: MAX_LAG_BYTES } }],
    });
    startAgent();
  });

  afterAll(async () => {
    await agent?.stop();
    await primary?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

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
      const health = await getJson<unknown[]>('/healthz');
      expect(health).toEqual({ status: 200, body: [] });
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
    // This agent streamed the whole archive (a new one, never restarted so far): every event byte in it.
    const binlogDir = join(dir, 'archive-a', 'binlog');
    const archivedEventBytes = readdirSync(binlogDir).reduce((n, f) => n + statSync(join(binlogDir, f)).size - 4, 0);
    expect(after.binlog.bytesShippedTotal).toBe(archivedEventBytes);
    expect(sampleValue(samples, 'hotspare_files_bytes_shipped_total', labels)).toBe(0);
    expect(sampleValue(samples, 'hotspare_replica_up', labels)).toBe(1);
    // A file replica's archive volume: read by the agent, the same in both forms.
    expect(after.volume).not.toBeNull();
    expect(after.volume?.totalBytes).toBeGreaterThan(0);
    expect(after.volume?.freeBytes).toBeGreaterThan(0);
    expect(after.volume?.freeBytes).toBeLessThanOrEqual(after.volume?.totalBytes ?? 0);
    expect(sampleValue(samples, 'hotspare_archive_volume_size_bytes', labels)).toBe(after.volume?.totalBytes);
    expect(sampleValue(samples, 'hotspare_archive_volume_free_bytes', labels)).toBe(after.volume?.freeBytes);
    expect(families.get('hotspare_archive_volume_free_bytes')?.type).toBe('gauge');
    expect(sampleValue(samples, 'hotspare_archive_volume_checked_timestamp_seconds', labels)).toBe(Date.parse(after.volume?.checkedAt ?? '') / 1000);
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
    const unhealthy = await getJson<Array<{ replica: string; code: string }>>('/healthz');
    expect(unhealthy.status).toBe(503);
    expect(unhealthy.body.map((r) => r.code)).toContain('LAG_SECONDS');
    expect(unhealthy.body.every((r) => r.replica === REPLICA)).toBe(true);
    const { samples } = await metrics();
    expect(sampleValue(samples, 'hotspare_replica_up', { replica: REPLICA })).toBe(0);
    expect(sampleValue(samples, 'hotspare_replica_lag_seconds', { replica: REPLICA })).toBeGreaterThan(MAX_LAG_SECONDS);

    await primary.restart();
    // OK again, then caught up (the first OK may come while the last bytes after the restart
    // are on their way: under its thresholds, not yet at 0).
    const recovered = await waitFor('check to report OK again, caught up', async () => {
      const result = await check();
      return result.code === 0 && /^HOTSPARE OK - standby-a streaming 0 s 0 B/.test(result.stdout) ? result : undefined;
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
    await purgeBinlogsTo(conn, newest);
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
    expect(gap.problems[0]?.message).toContain('set binlog.onPurged to "new-base" and restart the agent');
    const result = await check();
    expect(result.code).toBe(2);
    expect(result.stdout).toMatch(/^HOTSPARE CRITICAL - standby-a gap: BINLOG_PURGED: /);
    const health = await getJson<Array<{ code: string }>>('/healthz');
    expect(health.status).toBe(503);
    expect(health.body.map((r) => r.code)).toContain('BINLOG_PURGED');
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

// The same endpoint with two replicas in one agent: a `file` archive and a real `hotspare
// receive` on loopback, which the tests stop and start again under a write load.
describe('lag endpoint with a remote standby whose receiver stops', () => {
  const LOCAL = 'local';
  const REMOTE = 'standby-b';
  const LOCAL_THRESHOLDS = { maxLagSeconds: 10, maxLagBytes: 64 * 1024 * 1024 };
  let rdir: string;
  let rprimary: MariadbServer;
  let ragent: AgentProcess | undefined;
  let receiver: ReceiverProcess;
  let rbase: string;
  let httpPort: number;
  let receiverPort: number;
  let tokenFile: string;
  let remoteArchive: string;

  function configure(remoteThresholds: { maxLagSeconds: number; maxLagBytes: number }): string {
    return writeAgentConfig(rdir, rprimary, {
      httpPort,
      // The purge cases check the `gap` state that `onPurged: stop` keeps; the default (a new
      // base and a restarted chain) is checked in binlog-gap-restart.test.ts.
      binlog: { onPurged: 'stop' },
      replicas: [
        { name: LOCAL, type: 'file', path: join(rdir, 'archive-local'), thresholds: LOCAL_THRESHOLDS },
        { name: REMOTE, type: 'remote', address: `127.0.0.1:${receiverPort}`, tokenFile, thresholds: remoteThresholds },
      ],
    });
  }

  const both = async (): Promise<{ report: LagReport; local: ReplicaLagReport; remote: ReplicaLagReport }> => {
    const report = await lag(rbase);
    return { report, local: replicaIn(report, LOCAL), remote: replicaIn(report, REMOTE) };
  };

  const caughtUp = (r: ReplicaLagReport, report: LagReport): boolean =>
    r.state === 'streaming' &&
    r.binlog.bytesBehind === 0 &&
    r.binlog.secondsBehind === 0 &&
    r.binlog.file === report.primary.file &&
    r.binlog.position === report.primary.position;

  /** On a failure, the agent's and the receiver's logs say why. */
  async function withLogs<T>(work: Promise<T>): Promise<T> {
    try {
      return await work;
    } catch (err) {
      const agentTail = ragent?.log().split('\n').slice(-15).join('\n') ?? '';
      const receiverTail = receiver.stderr.split('\n').slice(-10).join('\n');
      throw new Error(`${(err as Error).message}\nagent log (tail):\n${agentTail}\nreceiver log (tail):\n${receiverTail}`);
    }
  }

  async function purgeTo(conn: Connection, file: string): Promise<void> {
    // MariaDB keeps a file until its binlog checkpoint has passed (crash recovery): repeat.
    await waitFor(`the primary to purge up to ${file}`, async () => {
      await conn.query(`PURGE BINARY LOGS TO '${file}'`);
      const [left] = await conn.query<import('mysql2').RowDataPacket[]>('SHOW BINARY LOGS');
      return left[0]?.['Log_name'] === file ? true : undefined;
    });
  }

  async function binlogNames(conn: Connection): Promise<string[]> {
    const [rows] = await conn.query<import('mysql2').RowDataPacket[]>('SHOW BINARY LOGS');
    return rows.map((r) => String(r['Log_name']));
  }

  beforeAll(async () => {
    rdir = mkdtempSync(join(tmpdir(), 'hotspare-lag-remote-'));
    rprimary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(rdir, 'primary') });
    const conn = await rprimary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(64)) ENGINE=InnoDB');
    await conn.end();
    tokenFile = join(rdir, 'token');
    writeFileSync(tokenFile, 'lag-endpoint-test-token-0123456789\n');
    remoteArchive = join(rdir, 'archive-remote');
    receiverPort = await freePort();
    receiver = new ReceiverProcess(['--archive', remoteArchive, '--listen', `127.0.0.1:${receiverPort}`, '--token-file', tokenFile]);
    await receiver.start();
    httpPort = await freePort();
    rbase = `http://127.0.0.1:${httpPort}`;
    ragent = AgentProcess.start(configure({ maxLagSeconds: MAX_LAG_SECONDS, maxLagBytes: MAX_LAG_BYTES }), join(rdir, 'agent.log'));
  });

  afterAll(async () => {
    await ragent?.stop();
    await receiver?.stop();
    await rprimary?.destroy();
    if (rdir !== undefined) rmSync(rdir, { recursive: true, force: true });
  });

  it('receiver killed under a steady write load: both figures grow, disconnected, 503, CRITICAL; restarted: back to 0, 200, OK; the file replica stays healthy', async () => {
    await withLogs(waitFor('both replicas to stream and catch up', async () => {
      const { report, local, remote } = await both();
      return caughtUp(local, report) && caughtUp(remote, report) ? true : undefined;
    }));
    const conn = await rprimary.connect();
    const load = writeLoad(conn);
    try {
      await waitFor('rows to reach the remote standby', async () => ((await replica(REMOTE, rbase)).binlog.bytesShippedTotal > 10_000 ? true : undefined));
      expect(await receiver.stop('SIGKILL')).toBe(null);

      const down = await withLogs(waitFor('the remote replica to be disconnected', async () => {
        const r = await replica(REMOTE, rbase);
        return r.state === 'disconnected' && !r.up ? r : undefined;
      }));
      const stoppedAt = { file: down.binlog.file as string, position: down.binlog.position as number };
      // Successive polls: each one further behind than the last, in seconds and in bytes,
      // while the durable point stays where the receiver died. The file replica meanwhile
      // streams on: every sample of it is healthy.
      const locals: ReplicaLagReport[] = [];
      const remotes: ReplicaLagReport[] = [down];
      for (let step = 1; step <= 4; step++) {
        const previous = remotes[remotes.length - 1] as ReplicaLagReport;
        remotes.push(
          await waitFor(`the remote lag to grow (poll ${step})`, async () => {
            const { local, remote } = await both();
            locals.push(local);
            return remote.binlog.secondsBehind > previous.binlog.secondsBehind && remote.binlog.bytesBehind > previous.binlog.bytesBehind ? remote : undefined;
          }),
        );
      }
      for (const r of remotes) {
        expect(r.state).toBe('disconnected');
        expect(r.up).toBe(false);
        expect({ file: r.binlog.file, position: r.binlog.position }).toEqual(stoppedAt);
      }
      expect(locals.length).toBeGreaterThanOrEqual(4);
      for (const l of locals) {
        expect(l.state).toBe('streaming');
        expect(l.up).toBe(true);
        expect(l.problems).toEqual([]);
      }
      // ... and its durable point moved on past where the remote one stopped.
      const local = await waitFor('the file replica to pass the remote one', async () => {
        const l = await replica(LOCAL, rbase);
        return l.binlog.file !== null && compareBinlogPositions({ file: l.binlog.file, position: l.binlog.position as number }, stoppedAt) > 0 ? l : undefined;
      });
      expect(local.state).toBe('streaming');

      const critical = await waitFor('check to report CRITICAL', async () => {
        const result = await checkAt(rbase);
        return result.code === 2 ? result : undefined;
      });
      const summary = critical.stdout.split(' | ')[0] as string;
      expect(summary).toMatch(/^HOTSPARE CRITICAL - standby-b /);
      expect(summary).not.toContain(LOCAL);
      const unhealthy = await waitFor('/healthz to give both reasons', async () => {
        const h = await getJson<Health>('/healthz', rbase);
        const codes = h.body.map((r) => r.code);
        return codes.includes('DISCONNECTED') && codes.includes('LAG_SECONDS') ? h : undefined;
      });
      expect(unhealthy.status).toBe(503);
      expect(unhealthy.body.every((r) => r.replica === REMOTE)).toBe(true);
      expect(unhealthy.body.find((r) => r.code === 'DISCONNECTED')?.message).toMatch(/^no stream for \d+ s \(RECEIVER_/);
      const { samples } = await metrics(rbase);
      expect(sampleValue(samples, 'hotspare_replica_up', { replica: REMOTE })).toBe(0);
      expect(sampleValue(samples, 'hotspare_replica_up', { replica: LOCAL })).toBe(1);
      expect(sampleValue(samples, 'hotspare_replica_state', { replica: REMOTE, state: 'disconnected' })).toBe(1);
      expect(sampleValue(samples, 'hotspare_replica_lag_seconds', { replica: REMOTE })).toBeGreaterThan(MAX_LAG_SECONDS);
      expect(sampleValue(samples, 'hotspare_replica_lag_bytes', { replica: REMOTE })).toBeGreaterThan((remotes[remotes.length - 1] as ReplicaLagReport).binlog.bytesBehind - 1);

      // Started again on the same port and archive, while the load goes on.
      await receiver.start();
      await withLogs(waitFor('check to report OK again', async () => ((await checkAt(rbase)).code === 0 ? true : undefined)));
      await waitFor('/healthz 200', async () => ((await getJson('/healthz', rbase)).status === 200 ? true : undefined));
      const back = await waitFor('the remote replica at 0 s and 0 bytes under the load', async () => {
        const r = await replica(REMOTE, rbase);
        return r.state === 'streaming' && r.binlog.bytesBehind === 0 && r.binlog.secondsBehind === 0 ? r : undefined;
      });
      expect(back.up).toBe(true);
    } finally {
      await load.stop();
      await conn.end();
    }
    // The load stopped: both stand exactly at the primary's head.
    await waitFor('both replicas at the head', async () => {
      const { report, local, remote } = await both();
      return caughtUp(local, report) && caughtUp(remote, report) ? true : undefined;
    });
    expect(await getJson('/healthz', rbase)).toEqual({ status: 200, body: [] });
    // Asked again if a late head check made one answer a moment behind.
    const okLine = /^HOTSPARE OK - local streaming 0 s 0 B, standby-b streaming 0 s 0 B \|/;
    const ok = await waitFor('the check to say both are at the head', async () => {
      const answer = await checkAt(rbase);
      return okLine.test(answer.stdout) ? answer : undefined;
    });
    expect(ok.code).toBe(0);
    // What the standby holds after the kill and the restart is the primary's binlog, byte for byte.
    await expectArchiveEqual(rprimary, remoteArchive);
  });

  it('binlog purged while the receiver is down: PURGE_SOON as the oldest file nears the one it needs, then gap, 503, CRITICAL', async () => {
    // Thresholds far beyond the test's length, so that the purge is the only reason for 503.
    await withLogs(waitFor('the agent to stream', async () => ((await replica(LOCAL, rbase)).state === 'streaming' ? true : undefined)));
    expect(await ragent?.stop()).toBe(0);
    ragent = AgentProcess.start(configure({ maxLagSeconds: 3_600, maxLagBytes: 1024 * 1024 * 1024 }), join(rdir, 'agent.log'));
    const conn = await rprimary.connect();
    try {
      // Several files before the one the standby will need, so that the primary can come
      // close to it one purge at a time.
      for (let i = 0; i <= DEFAULT_PURGE_WARNING_FILES + 1; i++) await conn.query('FLUSH BINARY LOGS');
      await withLogs(waitFor('both replicas to stream and catch up', async () => {
        const { report, local, remote } = await both();
        return caughtUp(local, report) && caughtUp(remote, report) ? true : undefined;
      }));
      expect(await receiver.stop('SIGTERM')).toBe(0);
      const down = await waitFor('the remote replica to be disconnected', async () => {
        const r = await replica(REMOTE, rbase);
        return r.state === 'disconnected' ? r : undefined;
      });
      const need = down.binlog.file as string;

      await conn.query("INSERT INTO app.t (v) VALUES ('not on the standby')");
      await conn.query('FLUSH BINARY LOGS');
      const behind = await waitFor('the head to move past the needed file', async () => {
        const { report, remote } = await both();
        return report.primary.file !== need && remote.binlog.bytesBehind > 0 ? remote : undefined;
      });
      // Far from purge yet: no warning, healthy.
      const names = await binlogNames(conn);
      const needIndex = names.indexOf(need);
      expect(needIndex).toBeGreaterThan(DEFAULT_PURGE_WARNING_FILES);
      expect(behind.warnings).toEqual([]);
      expect(await getJson('/healthz', rbase)).toEqual({ status: 200, body: [] });
      expect(sampleValue((await metrics(rbase)).samples, 'hotspare_replica_purge_warning', { replica: REMOTE })).toBe(0);

      // The oldest file comes within DEFAULT_PURGE_WARNING_FILES of the needed one: a warning.
      await purgeTo(conn, names[needIndex - DEFAULT_PURGE_WARNING_FILES] as string);
      const warned = await waitFor('the purge warning', async () => {
        const r = await replica(REMOTE, rbase);
        return r.warnings.length > 0 ? r : undefined;
      });
      expect(warned.state).toBe('disconnected');
      expect(warned.warnings).toEqual([
        { code: 'PURGE_SOON', message: `the primary keeps only ${DEFAULT_PURGE_WARNING_FILES} binlog file(s) older than ${need}, which this archive still needs` },
      ]);
      const warnedHealth = await getJson<Health>('/healthz', rbase);
      expect(warnedHealth.status).toBe(503);
      expect(warnedHealth.body).toEqual([{ replica: REMOTE, ...warned.warnings[0] }]);
      const warnedMetrics = (await metrics(rbase)).samples;
      expect(sampleValue(warnedMetrics, 'hotspare_replica_purge_warning', { replica: REMOTE })).toBe(1);
      expect(sampleValue(warnedMetrics, 'hotspare_replica_purge_warning', { replica: LOCAL })).toBe(0);
      const warning = await checkAt(rbase);
      expect(warning.code).toBe(1);
      expect(warning.stdout).toMatch(/^HOTSPARE WARNING - /);
      expect(warning.stdout).toContain(`standby-b: PURGE_SOON: the primary keeps only ${DEFAULT_PURGE_WARNING_FILES} binlog file(s) older than ${need}`);

      // The needed file itself goes: gap, with the reason.
      const head = (await lag(rbase)).primary.file as string;
      await purgeTo(conn, head);
      const gap = await waitFor('the gap state', async () => {
        const r = await replica(REMOTE, rbase);
        return r.state === 'gap' ? r : undefined;
      });
      expect(gap.problems[0]?.code).toBe('BINLOG_PURGED');
      expect(gap.problems[0]?.message).toContain(`the primary no longer has ${need}`);
      expect(gap.problems[0]?.message).toContain(`its oldest is ${head}`);
      expect(gap.warnings).toEqual([]);
      const gapHealth = await getJson<Health>('/healthz', rbase);
      expect(gapHealth.status).toBe(503);
      expect(gapHealth.body.map((r) => [r.replica, r.code])).toEqual([[REMOTE, 'BINLOG_PURGED']]);
      const critical = await checkAt(rbase);
      expect(critical.code).toBe(2);
      expect(critical.stdout).toMatch(/^HOTSPARE CRITICAL - standby-b gap: BINLOG_PURGED: /);
      const gapMetrics = (await metrics(rbase)).samples;
      expect(sampleValue(gapMetrics, 'hotspare_replica_state', { replica: REMOTE, state: 'gap' })).toBe(1);
      expect(sampleValue(gapMetrics, 'hotspare_replica_purge_warning', { replica: REMOTE })).toBe(0);
      const local = await replica(LOCAL, rbase);
      expect(local.state).toBe('streaming');
      expect(local.problems).toEqual([]);

      // The receiver comes back: the agent does not skip the missing binlog.
      await receiver.start();
      const refused = await withLogs(waitFor('the stream to fail with BINLOG_PURGED', async () => {
        const r = await replica(REMOTE, rbase);
        return r.error?.code === 'BINLOG_PURGED' ? r : undefined;
      }));
      expect(refused.state).toBe('gap');
      expect(refused.up).toBe(false);
    } finally {
      await conn.end();
    }
  });
});
