import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { LagReport } from '../../src/agent/lag-monitor.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';

/**
 * Goal: a primary restarted without its binlog (--skip-log-bin) while the agent runs is
 * reported as the preflight would report it: BINLOG_DISABLED with its hint on the replica and
 * in `primary.error`, and the primary still `reachable` (it answers: "primary gone" must not
 * page); back with its binlog, the replica streams again. Method: a real primary (the same
 * datadir and socket, started once with and once without --log-bin), the real agent process.
 */
describe('primary restarted without its binlog', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-binlog-off-'));
  const servers: MariadbServer[] = [];

  afterAll(async () => {
    for (const s of servers) await s.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('BINLOG_DISABLED on the replica (state error) and in primary.error, primary.reachable true; streams again once the binlog is back', async () => {
    const baseDir = join(dir, 'primary');
    const primary = await MariadbServer.start({ serverId: 61, binlog: true, baseDir });
    servers.push(primary);
    const httpPort = await freePort();
    const config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: join(dir, 'archive') }], {
      // Over the socket: the same path whichever way the server is started.
      primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 },
      http: { listen: `127.0.0.1:${httpPort}` },
      binlog: { retryDelayMsMax: 1_000, headPollIntervalMs: 200 },
    });
    const lag = async (): Promise<LagReport> => (await (await fetch(`http://127.0.0.1:${httpPort}/lag`)).json()) as LagReport;
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.logs().some((l) => l['msg'] === 'streaming binlog to replica'), 60_000);
      await primary.stop();
      const without = await MariadbServer.start({ serverId: 61, binlog: false, baseDir });
      servers.push(without);
      const report = await waitFor(
        'BINLOG_DISABLED on the replica and the primary',
        async () => {
          const r = await lag().catch(() => undefined);
          return r?.replicas[0]?.error?.code === 'BINLOG_DISABLED' && r.primary.error?.code === 'BINLOG_DISABLED' ? r : undefined;
        },
        30_000,
      );
      const replica = report.replicas[0];
      expect(replica?.state).toBe('error');
      expect(replica?.error?.hint).toContain('log_bin');
      expect(report.primary.reachable).toBe(true);
      const metrics = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
      expect(metrics).toMatch(/^hotspare_primary_reachable 1$/m);

      await without.stop();
      await primary.restart();
      await waitFor(
        'the replica to stream again',
        async () => {
          const r = await lag().catch(() => undefined);
          return r?.replicas[0]?.state === 'streaming' && r.primary.error === null && r.primary.reachable ? true : undefined;
        },
        60_000,
      );
    } finally {
      expect(await agent.kill('SIGTERM')).toBe(0);
    }
  }, 180_000);
});
