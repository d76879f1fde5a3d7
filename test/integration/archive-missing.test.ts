import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { compareArchiveWithPrimary } from '../../src/sandbox/binlog-compare.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { primaryHead } from '../support/primary-head.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: an archive that vanishes from its path (moved away, or a volume not mounted: its mount
 * point an empty folder) is ARCHIVE_MISSING, state error, and nothing is created in its place;
 * once it is back, streaming goes on where it stood. Before, the agent began a new archive at
 * the old path (a new base, /lag green) while the real one stopped growing. Method: a real
 * primary and the real agent, the archive folder renamed away and back, while the agent runs
 * and across a restart.
 */
describe('an archive gone from its path', () => {
  let dir: string;
  let primary: MariadbServer;
  let conn: Connection;
  let agent: SyncAgent | undefined;
  let archive: string;
  const moved = (): string => `${archive}-moved`;

  const caughtUp = async (): Promise<void> => {
    const head = await primaryHead(conn);
    await waitFor('the archive caught up', () => {
      const durable = agent?.trackers[0]?.snapshot.durable;
      return durable !== undefined && compareBinlogPositions(durable, head) >= 0;
    }, 60_000);
  };
  const missing = (): Promise<unknown> =>
    waitFor('ARCHIVE_MISSING', () => {
      const r = agent?.lag.report(Date.now()).replicas[0];
      return agent?.trackers[0]?.snapshot.failure?.code === 'ARCHIVE_MISSING' && r?.state === 'error' ? r : undefined;
    }, 30_000);

  beforeAll(async () => {
    dir = tempDir('archive-missing');
    archive = join(dir, 'archive');
    primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
    conn = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100))');
  });

  afterAll(async () => {
    await agent?.stop();
    await conn?.end();
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('while the agent runs: refused, nothing created at the old path; moved back, it goes on', async () => {
    agent = await startAgent(primary, [{ name: 'a', type: 'file', path: archive }], dir);
    await conn.query("INSERT INTO app.t (v) VALUES ('before')");
    await caughtUp();
    renameSync(archive, moved());
    // No new binlog file: the writer's open file went with the folder, and only the session's
    // check of its folder sees it (a rehearsal's agent wrote on, /lag green, until a rotation,
    // and made the old path's state/ again meanwhile).
    await conn.query("INSERT INTO app.t (v) VALUES ('while away')");
    const report = (await missing()) as { problems: { code: string }[] };
    expect(agent.trackers[0]?.snapshot.failure?.hint).toContain('durable-points.json');
    expect(report.problems.map((p) => p.code)).toContain('ARCHIVE_MISSING');
    expect(existsSync(archive)).toBe(false);
    renameSync(moved(), archive);
    await caughtUp();
    expect(compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir).differences).toEqual([]);
  });

  it('across a restart: the saved point says the archive held binlog there', async () => {
    await agent?.stop();
    agent = undefined;
    renameSync(archive, moved());
    await conn.query("INSERT INTO app.t (v) VALUES ('agent down')");
    agent = await startAgent(primary, [{ name: 'a', type: 'file', path: archive }], dir);
    await missing();
    expect(existsSync(archive)).toBe(false);
    renameSync(moved(), archive);
    await caughtUp();
    expect(compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir).differences).toEqual([]);
  });
});
