import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { HotspareProcess, runHotspare, waitFor } from '../support/agent-process.js';

const ROOT = new URL('../..', import.meta.url).pathname;
import { primaryHead } from '../support/primary-head.js';

/**
 * Goal: a standby that runs with log_bin (so that replicas can follow it once it is the primary)
 * holds in its binlog, after a promotion, only the primary's transactions: promote's own
 * statements (the DROP of an empty database the base restores, the redo-log flush after the
 * replay) are not binlogged, or replicas that later follow the new primary would replay
 * transactions of the standby's server_id the old primary never had. Method: real servers (socket
 * only, no TCP port), the real agent and `hotspare promote`; the standby's binlog is reset before
 * the promotion, so every GTID of its own server_id there afterwards came from promote.
 * The same promotions check what a spool source's post-promotion hook gets in its environment.
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
  let spool: string;
  /** The spool source's newest change as the archive records it, after the last commit (a second later at least). */
  let spoolChangedMs: number;
  /** What the hook last saw: its HOTSPARE_* variables. */
  const hookEnv = (): Record<string, string> =>
    Object.fromEntries(
      readFileSync(join(dir, 'hook-env.txt'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );

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
    // The standby's own promote user, with a password (a target URL that holds one).
    await standbyConn.query("CREATE USER 'promoter'@'localhost' IDENTIFIED BY 'pw-s3cret'");
    await standbyConn.query("GRANT ALL PRIVILEGES ON *.* TO 'promoter'@'localhost' WITH GRANT OPTION");
    spool = join(dir, 'gateway');
    mkdirSync(spool);
    writeFileSync(join(spool, 'seqno'), '1\n');
    archive = join(dir, 'archive');
    mkdirSync(join(dir, 'agent'), { recursive: true });
    const config = join(dir, 'agent', 'agent.json');
    writeFileSync(
      config,
      JSON.stringify({
        primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 },
        stateDir: join(dir, 'agent', 'state'),
        replicas: [{ name: 'a', type: 'file', path: archive }],
        spool: [{ name: 'gateway', path: spool, hooks: [{ run: `env | grep '^HOTSPARE_' | sort > ${join(dir, 'hook-env.txt')}; test ! -e ${join(dir, 'fail-hook')}` }] }],
      }),
    );
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      await waitFor("the spool source's first pass", () => agent.stderr.includes('first full pass of the spool source committed'), 60_000);
      await conn.query("INSERT INTO app.t VALUES (2, 'after the base')");
      expected = await tableChecksums(conn);
      const end = await primaryHead(conn);
      const archived = join(archive, 'binlog', end.file);
      await waitFor('the archive to catch up', () => existsSync(archived) && statSync(archived).size >= end.position, 60_000);
      // The files' newest change comes after the last commit, in a later second.
      await new Promise((r) => setTimeout(r, 1_100));
      const lastChange = async (): Promise<number> => {
        const status = await runHotspare(['status', '--archive', archive, '--json']);
        return Date.parse((JSON.parse(status.stdout) as { spool: Array<{ lastChange: string }> }).spool[0]?.lastChange ?? '');
      };
      const before = await lastChange();
      writeFileSync(join(spool, 'seqno'), '2\n');
      await waitFor('the spool change to be archived', async () => (spoolChangedMs = await lastChange()) > before, 60_000);
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
    const result = await runHotspare(['promote', '--archive', archive, '--target', target(), '--files-root', join(dir, 'files-1')]);
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
    // The replayed GTIDs (the primary's server_id) count in gtid_current_pos, as a replica's
    // applied ones do: what a base taken on the new primary records, and where a replica of it starts.
    const [[pos]] = (await standbyConn.query('SELECT @@global.gtid_current_pos AS c, @@global.gtid_binlog_pos AS b')) as [RowDataPacket[], unknown];
    expect(String(pos?.['b'])).toMatch(new RegExp(`^0-${PRIMARY_ID}-\\d+$`));
    expect(String(pos?.['c'])).toBe(String(pos?.['b']));
  });

  it("a hook gets the archive's absolute path, the target without its password, and the promotion's point", async () => {
    // The archive as typed relative to promote's folder; a target URL with a password.
    const url = `mysql://promoter:pw-s3cret@localhost?socket=${encodeURIComponent(standby.socketPath)}`;
    const result = await runHotspare(['promote', '--archive', relative(ROOT, archive), '--target', url, '--replace', '--files-root', join(dir, 'files-2'), '--json']);
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    const report = JSON.parse(result.stdout) as { lastTransaction: { commitTime: string } };
    const env = hookEnv();
    expect(env).toMatchObject({
      HOTSPARE_ARCHIVE: archive,
      HOTSPARE_SOURCE_PATH: join(dir, 'files-2', 'gateway'),
      HOTSPARE_TARGET: `mysql://promoter@localhost?socket=${encodeURIComponent(standby.socketPath)}`,
      HOTSPARE_TARGET_USER: 'promoter',
      HOTSPARE_TARGET_HOST: 'localhost',
      HOTSPARE_TARGET_PORT: '',
      HOTSPARE_TARGET_SOCKET: standby.socketPath,
      HOTSPARE_RESTORE_POINT_COMMIT_TIME: report.lastTransaction.commitTime,
    });
    expect(JSON.stringify(env) + result.stdout + result.stderr).not.toContain('pw-s3cret');
    // To the end, the point is the files' newest change, which came after the last commit: the
    // database and the files are both the primary's as of then (README, Spool directories).
    expect(Date.parse(env['HOTSPARE_RESTORE_POINT_TIME'] ?? '')).toBe(spoolChangedMs);
    expect(Date.parse(env['HOTSPARE_RESTORE_POINT_TIME'] ?? '')).toBeGreaterThan(Date.parse(report.lastTransaction.commitTime));
  });

  it('a failed hook: the report gives the command line that runs it again as it ran, environment and all', async () => {
    writeFileSync(join(dir, 'fail-hook'), '');
    const result = await runHotspare(['promote', '--archive', archive, '--target', target(), '--replace', '--files-root', join(dir, 'files-3')]);
    unlinkSync(join(dir, 'fail-hook'));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error HOOK_FAILED: .*gateway/m);
    expect(result.stderr).toMatch(/^hint: .*"run again:" line/m);
    // Without HOTSPARE_LOG_LEVEL, which the test gave promote (a hook inherits promote's environment).
    const { HOTSPARE_LOG_LEVEL: _level, ...failedEnv } = hookEnv();
    const line = /^ {4}run again: +(env .*)$/m.exec(result.stdout)?.[1];
    expect(line, result.stdout).toBeDefined();
    rmSync(join(dir, 'hook-env.txt'));
    // Pasted into a shell (elsewhere: the paths are absolute), with the cause gone, it succeeds as it would have.
    execFileSync('/bin/sh', ['-c', line ?? 'false'], { cwd: tmpdir() });
    expect(hookEnv()).toEqual(failedEnv);
    expect(failedEnv['HOTSPARE_SOURCE_PATH']).toBe(join(dir, 'files-3', 'gateway'));
  });

  it('a wrong password for the target is TARGET_AUTH, not TARGET_UNREACHABLE, and changes nothing', async () => {
    const before = await tableChecksums(standbyConn);
    const url = `mysql://promoter:not-the-pw@localhost?socket=${encodeURIComponent(standby.socketPath)}`;
    const result = await runHotspare(['promote', '--archive', archive, '--target', url, '--replace']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^error TARGET_AUTH: the target promoter@localhost\?socket=.* refused the login: Access denied for user 'promoter'@'localhost'/m);
    expect(result.stderr).toMatch(/^hint: check the user and password in --target/m);
    expect(result.stderr).not.toContain('not-the-pw');
    expect(await tableChecksums(standbyConn)).toEqual(before);
  });
});
