import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { primaryHead } from '../support/primary-head.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: an agent restarted while a standby is down reports that standby's lag from where it
 * last stood (the bytes written since), not from the primary's oldest binlog file (the whole
 * binlog, which a `hotspare_replica_lag_bytes` alert took for real), and its age from the last
 * commit it holds, not from the agent's start. Method: a real primary,
 * a real receiver stopped between two runs of the real agent sharing one stateDir.
 */
describe('lag of a standby an agent restarted without', () => {
  let dir: string;
  let primary: MariadbServer;
  let receiver: ReceiverProcess | undefined;
  let agent: SyncAgent | undefined;

  beforeAll(async () => {
    dir = tempDir('lag-restart');
    primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
  });

  afterAll(async () => {
    await agent?.stop();
    await receiver?.stop();
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('counts from the durable point the last run saved', async () => {
    const conn = await primary.connect();
    try {
      await conn.query('CREATE DATABASE app');
      await conn.query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v MEDIUMBLOB) ENGINE=InnoDB');
      // History: far more than what is written while the standby is away.
      for (let i = 0; i < 16; i++) await conn.query('INSERT INTO app.t (v) VALUES (REPEAT(RANDOM_BYTES(1024), 128))');
      const tokenFile = join(dir, 'token');
      writeFileSync(tokenFile, 'restart-token\n');
      const port = await freePort();
      receiver = new ReceiverProcess(['--archive', join(dir, 'archive'), '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
      await receiver.start();
      const replicas = [{ name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }];
      agent = await startAgent(primary, replicas, dir);
      const head = await primaryHead(conn);
      await waitFor('the standby caught up', () => {
        const durable = agent?.trackers[0]?.snapshot.durable;
        return durable !== undefined && compareBinlogPositions(durable, head) >= 0;
      }, 60_000);
      await agent.stop();
      agent = undefined;
      await receiver.stop();
      receiver = undefined;

      // While the standby is away, a little more, a while after what it holds; then the agent
      // starts again without it.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      await conn.query('INSERT INTO app.t (v) VALUES (REPEAT(RANDOM_BYTES(1024), 16))');
      const after = await primaryHead(conn);
      agent = await startAgent(primary, replicas, dir);
      let reportedAtMs = 0;
      const report = await waitFor('a head check', () => {
        reportedAtMs = Date.now();
        const r = agent?.lag.report(reportedAtMs);
        return r?.primary.file !== null ? r : undefined;
      });
      const standby = report.replicas[0];
      expect(standby?.binlog.file).toBe(head.file);
      expect(standby?.binlog.position).toBe(head.position);
      // Its age counts from when the last run last saw it hold everything (its saved "caught up
      // by" time: the last commit's second, ended), not from this run's first head check, a
      // moment before the report; so it spans most of the 2 s waited above.
      const commitS = agent.trackers[0]?.snapshot.durable?.commitTimestampS;
      const caughtUpAtMs = agent.trackers[0]?.snapshot.caughtUpAtMs;
      expect(commitS).toBeDefined();
      expect(caughtUpAtMs).toBeGreaterThanOrEqual((commitS ?? 0) * 1000);
      expect(standby?.binlog.secondsBehind).toBeGreaterThanOrEqual(1);
      expect(standby?.binlog.secondsBehind).toBeCloseTo((reportedAtMs - (caughtUpAtMs ?? 0)) / 1000, 2);
      // The bytes written since (one 16 KiB row and its events), not the 2 MiB of history.
      // One row does not rotate the file: the bytes behind are exactly those written since.
      expect(after.file).toBe(head.file);
      expect(standby?.binlog.bytesBehind).toBe(after.position - head.position);
      expect(standby?.binlog.bytesBehind).toBeGreaterThan(16 * 1024);
      expect(standby?.binlog.bytesBehind).toBeLessThan(64 * 1024);
    } finally {
      await conn.end();
    }
  });
});
