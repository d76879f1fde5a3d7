import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';

/**
 * Goal: a base backup in progress never holds up a stop. Stopping the agent (SIGTERM) while a
 * base it was asked for waits, or interrupting `hotspare base` itself, abandons the backup at
 * once: the command exits, the backup's session on the primary is gone (no FLUSH TABLES WITH
 * READ LOCK left queued, to be granted later to nobody), nothing partial stays in the archive,
 * and the complete bases are untouched. Before, the agent waited for the backup, here up to the
 * lock wait timeout, in real life for as long as a backup of the whole database takes.
 * Method: a real primary whose FLUSH TABLES WITH READ LOCK is made to wait behind a session
 * holding LOCK TABLES ... WRITE; the real agent and `hotspare base` processes.
 */
describe('a base backup abandoned by a stop', () => {
  let dir: string;
  let primary: MariadbServer;
  let conn: Connection;
  let locker: Connection;
  let archive: string;
  let config: string;
  const running: HotspareProcess[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-base-abandon-'));
    primary = await MariadbServer.start({ serverId: 61, binlog: true, baseDir: join(dir, 'primary') });
    conn = await primary.connect();
    locker = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.t (id INT PRIMARY KEY, v TEXT) ENGINE=InnoDB');
    await conn.query("INSERT INTO app.t VALUES (1, 'a'), (2, 'b')");
    archive = join(dir, 'archive');
    config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(running.map((p) => p.kill('SIGKILL')));
    await locker?.end();
    await conn?.end();
    await primary?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const start = (args: string[]): HotspareProcess => {
    const p = new HotspareProcess(args);
    running.push(p);
    return p;
  };
  const waitingLockQueries = async (): Promise<number> => {
    const [rows] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'FLUSH TABLES WITH READ LOCK%'");
    return Number(rows[0]?.['n']);
  };
  const baseFolders = (): string[] => readdirSync(join(archive, 'base')).sort();

  it('SIGTERM to the agent while a base it was asked for waits: the agent exits at once, the request fails with BASE_ABORTED, nothing partial stays', async () => {
    const agent = start(['agent', '--config', config]);
    await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
    await waitFor('the control socket', () => existsSync(join(dir, 'state', 'agent.sock')), 30_000);
    const before = baseFolders();
    expect(before).toHaveLength(1);

    await locker.query('LOCK TABLES app.t WRITE');
    const request = start(['base', '--config', config]);
    await waitFor('the base to wait for the global read lock', async () => (await waitingLockQueries()) === 1, 30_000);

    // The stop no longer waits for the backup (it waited for it to end, here for as long as the lock is held).
    expect(await agent.kill('SIGTERM', 15_000)).toBe(0);
    expect(await request.exited).toBe(1);
    expect(request.stderr).toContain('error BASE_ABORTED');
    expect(baseFolders()).toEqual(before);
    await waitFor('the primary to end the backup session', async () => (await waitingLockQueries()) === 0, 10_000);
    await locker.query('UNLOCK TABLES');
  }, 240_000);

  it('SIGTERM to `hotspare base` (no agent running) while it waits, logical or physical (mariabackup): it exits with BASE_ABORTED, its primary session ends, nothing partial stays', async () => {
    const before = baseFolders();
    await locker.query('LOCK TABLES app.t WRITE');
    const base = start(['base', '--config', config]);
    await waitFor('the base to wait for the global read lock', async () => (await waitingLockQueries()) === 1, 30_000);
    expect(await base.kill('SIGTERM', 15_000)).toBe(1);
    expect(base.stderr).toContain('error BASE_ABORTED');
    expect(baseFolders()).toEqual(before);
    await waitFor('the primary to end the backup session', async () => (await waitingLockQueries()) === 0, 10_000);
    await locker.query('UNLOCK TABLES');

    // A physical base: mariabackup is stopped too.
    await locker.query('LOCK TABLES app.t WRITE');
    const physical = start(['base', '--config', config, '--method', 'physical']);
    await waitFor('mariabackup to wait behind the lock', async () => {
      const [rows] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'BACKUP STAGE%' OR INFO LIKE 'FLUSH%'");
      return Number(rows[0]?.['n']) > 0;
    }, 30_000);
    expect(await physical.kill('SIGTERM', 15_000)).toBe(1);
    expect(physical.stderr).toContain('error BASE_ABORTED');
    expect(baseFolders()).toEqual(before);
    await waitFor('the primary to end mariabackup\'s session', async () => {
      const [rows] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE 'BACKUP STAGE%' OR INFO LIKE 'FLUSH%'");
      return Number(rows[0]?.['n']) === 0;
    }, 10_000);
    await locker.query('UNLOCK TABLES');

    // The primary is as before: a base now completes.
    const again = start(['base', '--config', config]);
    expect(await again.exited).toBe(0);
    expect(baseFolders()).toHaveLength(before.length + 1);
  }, 240_000);
});
