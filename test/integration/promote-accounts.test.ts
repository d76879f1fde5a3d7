import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { HotspareProcess, runHotspare, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { primaryHead } from '../support/primary-head.js';

/**
 * Goal: an account of the primary the standby cannot take does not stop a failover, and the
 * operator learns of it from the promotion's own report, not only from a log line (applications
 * log in with those accounts). Method: a real primary with an account on an authentication
 * plugin the standby has not loaded (ed25519), the real agent and `hotspare promote`.
 */
describe('promote with accounts the standby cannot take', () => {
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let conn: Connection;
  let standbyConn: Connection;
  let archive: string;
  let expected: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-accounts-'));
    primary = await MariadbServer.start({ serverId: 61, binlog: true, baseDir: join(dir, 'primary') });
    standby = await MariadbServer.start({ serverId: 62, binlog: false, baseDir: join(dir, 'standby') });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await conn.query("INSTALL SONAME 'auth_ed25519'");
    await conn.query("CREATE USER 'meter'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('s3cret')");
    await conn.query("CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw'");
    await conn.query('CREATE DATABASE feeds');
    await conn.query('CREATE TABLE feeds.feed_1 (time INT UNSIGNED PRIMARY KEY, data FLOAT) ENGINE=MyISAM');
    await conn.query("GRANT SELECT, INSERT ON feeds.* TO 'app'@'%'");
    await conn.query('INSERT INTO feeds.feed_1 VALUES (1, 0.5), (2, 0.75)');
    archive = join(dir, 'archive');
    const config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      await conn.query('INSERT INTO feeds.feed_1 VALUES (3, 1.25)');
      expected = await tableChecksums(conn);
      const end = await primaryHead(conn);
      const archived = join(archive, 'binlog', end.file);
      await waitFor('the archive to catch up', () => existsSync(archived) && statSync(archived).size >= end.position, 60_000);
    } finally {
      expect(await agent.kill('SIGTERM')).toBe(0);
    }
  }, 300_000);

  afterAll(async () => {
    await conn?.end();
    await standbyConn?.end();
    await primary?.destroy();
    await standby?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('promotes, restores the accounts it can, and says in its report which it could not', async () => {
    const target = `mysql://root@localhost?socket=${encodeURIComponent(standby.socketPath)}`;
    const json = await runHotspare(['promote', '--archive', archive, '--target', target, '--json']);
    expect(json.code, json.stderr.slice(-2000)).toBe(0);
    const report = JSON.parse(json.stdout) as { accountsNotRestored?: string };
    expect(report.accountsNotRestored).toMatch(/meter/);
    expect(report.accountsNotRestored).toMatch(/ed25519/);
    expect(await tableChecksums(standbyConn)).toEqual(expected);
    const [users] = (await standbyConn.query("SELECT CONCAT(User, '@', Host) AS u FROM mysql.user WHERE User IN ('app', 'meter')")) as [RowDataPacket[], unknown];
    expect(users.map((r) => String(r['u']))).toEqual(['app@%']);
    // The text report says it too, on a WARNING line.
    const again = await runHotspare(['promote', '--archive', archive, '--target', target, '--replace']);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect(again.stdout).toMatch(/^ {2}WARNING: +some of the primary's accounts or grants were not restored \(BASE_ACCOUNTS_PARTLY\): .*meter.* -> ERROR \d+/m);
    // Each failed statement with its error, not the client's echo of it between lines of dashes.
    expect(again.stdout).not.toMatch(/WARNING: .*-{14}/);
  });

  it('a promote user without GRANT OPTION, then the account its failed attempt left: each RESTORE_FAILED says what to do', async () => {
    // An account and a grant made after the base: the replay of the archived binlog runs them.
    const config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      await conn.query("CREATE USER 'late'@'%' IDENTIFIED BY 'late-pw'");
      await conn.query("GRANT SELECT ON feeds.* TO 'late'@'%'");
      const end = await primaryHead(conn);
      const archived = join(archive, 'binlog', end.file);
      await waitFor('the archive to catch up', () => existsSync(archived) && statSync(archived).size >= end.position, 60_000);
    } finally {
      expect(await agent.kill('SIGTERM')).toBe(0);
    }
    // The grant an operator may well give: everything, but no GRANT OPTION.
    await standbyConn.query("CREATE USER 'promote'@'localhost' IDENTIFIED BY 'promote-pw'");
    await standbyConn.query("GRANT ALL PRIVILEGES ON *.* TO 'promote'@'localhost'");
    const target = `mysql://promote:promote-pw@localhost?socket=${encodeURIComponent(standby.socketPath)}`;
    const denied = await runHotspare(['promote', '--archive', archive, '--target', target, '--replace']);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^error RESTORE_FAILED: .*ERROR 10(44|45)/m);
    expect(denied.stderr).toMatch(/^hint: the promote user lacks a privilege .*GRANT ALL PRIVILEGES ON \*\.\* TO that user WITH GRANT OPTION, then run promote again with --replace/m);

    await standbyConn.query("GRANT ALL PRIVILEGES ON *.* TO 'promote'@'localhost' WITH GRANT OPTION");
    const exists = await runHotspare(['promote', '--archive', archive, '--target', target, '--replace']);
    expect(exists.code).toBe(1);
    expect(exists.stderr).toMatch(/^error RESTORE_FAILED: .*ERROR 1396/m);
    expect(exists.stderr).toMatch(/^hint: an account the archive creates exists on the target already.*DROP USER it on the standby/m);

    await standbyConn.query("DROP USER 'late'@'%'");
    const done = await runHotspare(['promote', '--archive', archive, '--target', target, '--replace', '--json']);
    expect(done.code, done.stderr.slice(-2000)).toBe(0);
    // A promote user that is not root restores every grant but mariadb-install-db's PROXY ones
    // (the standby's own install gave them): only the account it cannot take is reported.
    const report = JSON.parse(done.stdout) as { accountsNotRestored?: string };
    expect(report.accountsNotRestored).toMatch(/meter/);
    expect(report.accountsNotRestored).not.toMatch(/PROXY|ERROR 1698|ERROR 1044/);
    expect(await tableChecksums(standbyConn)).toEqual(await tableChecksums(conn));
    const [grants] = (await standbyConn.query("SHOW GRANTS FOR 'late'@'%'")) as [RowDataPacket[], unknown];
    expect(grants.map((r) => String(Object.values(r)[0])).join('\n')).toMatch(/GRANT SELECT ON `feeds`\.\* TO `late`@`%`/);
  });
});
