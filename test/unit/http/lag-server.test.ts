import { afterEach, describe, expect, it } from 'vitest';
import { waitFor } from '../../support/wait.js';
import type { LagReport } from '../../../src/agent/lag-monitor.js';
import { LagServer } from '../../../src/http/lag-server.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { parsePrometheusText, sampleValue } from '../../support/prometheus-text.js';
import { captureLogger } from '../../support/capture-logger.js';
import { connect } from 'node:net';

// The real server on loopback, with a clock the test moves and a report that counts how
// often it is asked for: the bodies are rendered per interval, not per request.
function reportAt(nowMs: number, secondsBehind: number): LagReport {
  return {
    primary: { file: 'mysql-bin.000001', position: 1_000, checkedAt: new Date(nowMs).toISOString(), reachable: true, oldestFile: 'mysql-bin.000001', expireLogsSeconds: 0, error: null },
    replicas: [
      {
        name: 'a',
        state: secondsBehind > 1 ? 'catching-up' : 'streaming',
        up: true,
        binlog: { file: 'mysql-bin.000001', position: 900, bytesBehind: 100, secondsBehind, lastAckAt: null, bytesShippedTotal: 900, caughtUpAt: null },
        files: { pendingChanges: 0, pendingBytes: 0, oldestPendingSeconds: 0, bytesShippedTotal: 0 },
        thresholds: { maxLagSeconds: 1, maxLagBytes: 1_000_000 },
        problems: secondsBehind > 1 ? [{ code: 'LAG_SECONDS', message: `${secondsBehind} s behind` }] : [],
        warnings: [],
        error: null,
        volume: { totalBytes: 1_000_000_000, freeBytes: 400_000_000, checkedAt: new Date(nowMs).toISOString() },
      },
    ],
  };
}

/**
 * Our own series from an exposition. The process metrics are left out: in a registry a few
 * milliseconds old, prom-client prints the empty event-loop histogram's mean as `Nan`.
 */
function hotspareSamples(text: string): ReturnType<typeof parsePrometheusText>['samples'] {
  const ours = text.split('\n').filter((line) => /^(# (HELP|TYPE) )?hotspare_/.test(line));
  return parsePrometheusText(`${ours.join('\n')}\n`).samples;
}

let server: LagServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function start(report: (nowMs: number) => LagReport, clock: { nowMs: () => number }): Promise<string> {
  server = await LagServer.listen({ host: '127.0.0.1', port: 0, report, clock, logger: silentLogger(), renderIntervalMs: 10, metricsRenderIntervalMs: 1_000 });
  return `http://${server.address}`;
}

describe('LagServer', () => {
  it('answers a request target that does not parse (GET //) with 400, logging no error, and serves on', async () => {
    const logs = captureLogger();
    server = await LagServer.listen({ host: '127.0.0.1', port: 0, report: (now) => reportAt(now, 0), clock: { nowMs: () => 1_000 }, logger: logs.logger, renderIntervalMs: 10, metricsRenderIntervalMs: 1_000 });
    const [host, port] = server.address.split(':');
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), host ?? '127.0.0.1', () => socket.end('GET // HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.on('data', (c: Buffer) => (text += c.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(logs.lines().filter((l) => Number(l.level) >= 50)).toEqual([]);
    expect((await fetch(`http://${server.address}/lag`)).status).toBe(200);
  });

  it('holds at most connectionsMax connections: idle ones past it are dropped, and /lag is served once they go', async () => {
    server = await LagServer.listen({ host: '127.0.0.1', port: 0, report: (now) => reportAt(now, 0), clock: { nowMs: () => 1_000 }, logger: silentLogger(), renderIntervalMs: 10, connectionsMax: 3 });
    const [host, port] = server.address.split(':');
    // Each an unfinished request, as a scanner or a leaking client leaves them.
    const idle = Array.from({ length: 10 }, () => {
      const socket = connect(Number(port), host ?? '127.0.0.1', () => socket.write('GET /lag HTTP/1.1\r\nHost: x\r\n'));
      socket.on('error', () => undefined);
      return socket;
    });
    try {
      await waitFor('the connections past the limit to be dropped', () => idle.filter((s) => s.destroyed).length === 7, 10_000, 20);
      for (const s of idle) s.destroy();
      await waitFor('/lag served again', async () => (await fetch(`http://${server?.address ?? ''}/lag`).catch(() => undefined))?.status === 200, 10_000, 50);
    } finally {
      for (const s of idle) s.destroy();
    }
  });

  it('renders /lag and /healthz once per interval, whatever the number of requests', async () => {
    let now = 1_000_000;
    let calls = 0;
    let secondsBehind = 0;
    const base = await start((nowMs) => {
      calls++;
      return reportAt(nowMs, secondsBehind);
    }, { nowMs: () => now });

    const bodies = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/lag`).then((r) => r.text())));
    expect(new Set(bodies).size).toBe(1);
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect(calls).toBe(1);

    // Within the interval the figures stay as rendered; after it they are rendered again.
    secondsBehind = 5;
    now += 9;
    expect(((await (await fetch(`${base}/lag`)).json()) as LagReport).replicas[0]?.binlog.secondsBehind).toBe(0);
    now += 1;
    expect(((await (await fetch(`${base}/lag`)).json()) as LagReport).replicas[0]?.binlog.secondsBehind).toBe(5);
    const unhealthy = await fetch(`${base}/healthz`);
    expect(unhealthy.status).toBe(503);
    expect(((await unhealthy.json()) as Array<{ code: string }>).map((r) => r.code)).toEqual(['LAG_SECONDS']);
    expect(calls).toBe(2);
  });

  it('/metrics shows the figures of the /lag served at the same moment, rendered again only when they change or its interval passes', async () => {
    let now = 2_000_000;
    let secondsBehind = 0.25;
    const base = await start((nowMs) => reportAt(Math.floor(nowMs / 10_000) * 10_000, secondsBehind), { nowMs: () => now });
    const scrape = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();

    const first = await scrape();
    expect(sampleValue(hotspareSamples(first), 'hotspare_replica_lag_seconds', { replica: 'a' })).toBe(0.25);
    // Same figures, later /lag renderings: the same exposition (process metrics included).
    now += 500;
    expect(await scrape()).toBe(first);
    // New figures: /metrics follows /lag at once.
    secondsBehind = 3;
    now += 20;
    const lag = (await (await fetch(`${base}/lag`)).json()) as LagReport;
    const changed = hotspareSamples(await scrape());
    expect(sampleValue(changed, 'hotspare_replica_lag_seconds', { replica: 'a' })).toBe(lag.replicas[0]?.binlog.secondsBehind);
    expect(sampleValue(changed, 'hotspare_replica_lag_seconds', { replica: 'a' })).toBe(3);
    // Unchanged figures but an old rendering: the process metrics are collected again.
    const settled = await scrape();
    now += 1_000;
    expect(await scrape()).not.toBe(settled);
  });
});
