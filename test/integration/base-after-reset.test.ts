import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { listBaseBackups } from '../../src/archive/base-catalog.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { createWorkloadSchema, workloadStep } from '../../src/sandbox/write-workload.js';
import { HotspareProcess, runHotspare, waitFor, writeAgentConfig } from '../support/agent-process.js';

/**
 * Goal: after RESET MASTER on the primary, a base asked of the running agent is refused
 * (BINLOG_GAP), also for an archive the agent began in this very run (its session opened on an
 * empty archive, so only where the archive has got to since tells the timelines apart): a base
 * of the new timeline in the old archive would be restored with the old binlog of the same names.
 * Method: a real primary, the real agent process, RESET MASTER while it streams, `hotspare base`.
 */
describe('hotspare base through the agent after RESET MASTER', () => {
  let dir: string;
  let primary: MariadbServer;
  let conn: Connection;
  let agent: HotspareProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-reset-'));
    primary = await MariadbServer.start({ serverId: 51, binlog: true, baseDir: join(dir, 'primary') });
    conn = await primary.connect();
    await createWorkloadSchema(conn);
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await conn?.end();
    await primary?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('is refused with BINLOG_GAP, and no base is added', async () => {
    const archive = join(dir, 'archive');
    const config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
    agent = new HotspareProcess(['agent', '--config', config]);
    await waitFor('the agent to stream', () => agent?.stderr.includes('streaming binlog to replica') === true, 120_000);
    // Several files archived, so the new timeline's head lies in an older one.
    for (let n = 0; n < 3; n += 1) {
      for (let s = 0; s < 10; s += 1) await workloadStep(conn, n * 10 + s, { blobBytes: 4096 });
      await conn.query('FLUSH BINARY LOGS');
    }
    await waitFor('the archive to reach the fourth file', () => existsSync(join(archive, 'binlog', 'mysql-bin.000004')), 60_000);
    const before = (await listBaseBackups(new LocalArchiveFiles(archive))).map((b) => b.id);
    expect(before).toHaveLength(1);
    await conn.query('RESET MASTER');
    await conn.query("INSERT INTO app.orders (customer, amount) VALUES ('after the reset', 1)");
    await waitFor('the stream to meet BINLOG_GAP', () => agent?.logs().some((l) => l['code'] === 'BINLOG_GAP') === true, 60_000);
    const result = await runHotspare(['base', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('error BINLOG_GAP');
    // Refused by the running agent (the command asks it through its control socket).
    expect(result.stderr).toContain('the running agent: ');
    expect((await listBaseBackups(new LocalArchiveFiles(archive))).map((b) => b.id)).toEqual(before);
    expect(await agent.kill('SIGTERM')).toBe(0);
    agent = undefined;
  }, 180_000);
});
