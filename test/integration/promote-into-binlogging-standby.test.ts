import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { HotspareProcess, runHotspare, waitFor } from '../support/agent-process.js';
import { primaryHead } from '../support/primary-head.js';

/**
 * Goal: a standby that runs with log_bin (so that replicas can follow it once it is the primary)
 * holds in its binlog, after a promotion, only the primary's transactions: promote's own
 * statements (the DROP of an empty database the base restores, the redo-log flush after the
 * replay) are not binlogged, or replicas that later follow the new primary would replay
 * transactions of the standby's server_id the old primary never had. Method: real servers (socket
 * only, no TCP port), the real agent and `hotspare promote`; the standby's binlog is reset before
 * the promotion, so every GTID of its own server_id there afterwards came from promote.
 */
describe('promote into a standby that writes a binlog', () => {
  const PRIMARY_ID = 71;
  const STANDBY_ID = 72;
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let conn: Connection;
  let standbyConn: Connection;
  let archive: string;
  let expected: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-binlogging-standby-'));
    primary = await MariadbServer.start({ serverId: PRIMARY_ID, binlog: true, baseDir: join(dir, 'primary'), extraArgs: ['--skip-networking'] });
    standby = await MariadbServer.start({ serverId: STANDBY_ID, binlog: true, baseDir: join(dir, 'standby'), extraArgs: ['--skip-networking'] });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
    await conn.query("INSERT INTO app.t VALUES (1, 'before')");
    // Empty on both, as the `test` that mariadb-install-db makes: promote drops it on the standby.
    await conn.query('CREATE DATABASE test_empty');
    await standbyConn.query('CREATE DATABASE test_empty');
    archive = join(dir, 'archive');
    mkdirSync(join(dir, 'agent'), { recursive: true });
    const config = join(dir, 'agent', 'agent.json');
    writeFileSync(
      config,
      JSON.stringify({ primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 }, stateDir: join(dir, 'agent', 'state'), replicas: [{ name: 'a', type: 'file', path: archive }] }),
    );
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      await conn.query("INSERT INTO app.t VALUES (2, 'after the base')");
      expected = await tableChecksums(conn);
      const end = await primaryHead(conn);
      const archived = join(archive, 'binlog', end.file);
      await waitFor('the archive to catch up', () => existsSync(archived) && statSync(archived).size >= end.position, 60_000);
    } finally {
      expect(await agent.kill('SIGTERM')).toBe(0);
    }
    // From here, anything of the standby's own server_id in its binlog is promote's.
    await standbyConn.query('RESET MASTER');
  }, 300_000);

  afterAll(async () => {
    await conn?.end();
    await standbyConn?.end();
    await primary?.destroy();
    await standby?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const target = (): string => `mysql://root@localhost?socket=${encodeURIComponent(standby.socketPath)}`;

  it("leaves no transaction of the standby's own server_id in its binlog", async () => {
    const result = await runHotspare(['promote', '--archive', archive, '--target', target()]);
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    expect(await tableChecksums(standbyConn)).toEqual(expected);
    const [[state]] = (await standbyConn.query('SELECT @@global.gtid_binlog_state AS s')) as [RowDataPacket[], unknown];
    const gtids = String(state?.['s'] ?? '').split(',').filter((g) => g !== '');
    // The replay is binlogged with the primary's own GTIDs (replicas follow on from them) ...
    expect(gtids.some((g) => g.split('-')[1] === String(PRIMARY_ID))).toBe(true);
    // ... and nothing else is.
    expect(gtids.filter((g) => g.split('-')[1] === String(STANDBY_ID))).toEqual([]);
    const [logs] = (await standbyConn.query('SHOW BINARY LOGS')) as [RowDataPacket[], unknown];
    const statements: string[] = [];
    for (const log of logs) {
      const [events] = (await standbyConn.query(`SHOW BINLOG EVENTS IN '${String(log['Log_name'])}'`)) as [RowDataPacket[], unknown];
      for (const e of events) if (e['Event_type'] === 'Query') statements.push(String(e['Info']));
    }
    expect(statements.filter((s) => /FLUSH|DROP DATABASE/i.test(s))).toEqual([]);
  });
});
