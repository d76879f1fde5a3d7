import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBaseBackups } from '../../src/archive/base-catalog.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { takeBaseBackup } from '../../src/primary/base/take-base-backup.js';
import { withClientDefaultsFile } from '../../src/platform/client-defaults-file.js';
import { restoreBase } from '../../src/standby/base-restore.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { WorkloadRunner, createWorkloadSchema } from '../../src/sandbox/write-workload.js';
import { HotspareProcess, runHotspare, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { primaryHead } from '../support/primary-head.js';
import { promoteInto } from '../support/promote-into.js';

/**
 * Goal: `hotspare base` works while the agent runs (the agent holds the archive's lock), by
 * asking the agent through its control socket; the base it takes while writes go on is exact
 * and consistent: promoting from it gives every table's CHECKSUM TABLE of the primary.
 * Method: a real primary and standby, the real agent process, the real `hotspare base`.
 */
/**
 * Takes a logical base of `from` into the archive folder `archive` (as replication client
 * `serverId`), restores it into `into`, and expects every table's CHECKSUM TABLE equal on both.
 */
async function baseRestoresExactly(from: MariadbServer, into: MariadbServer, archive: string, serverId: number) {
  const files = new LocalArchiveFiles(archive);
  const primary = { socketPath: from.socketPath, user: 'root', password: '', serverId };
  const base = await takeBaseBackup({ primary, files, clock: systemClock, logger: silentLogger() });
  await withClientDefaultsFile({ user: 'root', password: '', socketPath: into.socketPath }, (defaults) => restoreBase(archive, base, defaults));
  const [source, restored] = await Promise.all([from.connect(), into.connect()]);
  try {
    expect(await tableChecksums(restored)).toEqual(await tableChecksums(source));
  } finally {
    await Promise.all([source.end(), restored.end()]);
  }
  return { base, files, primary };
}

describe('hotspare base through the running agent', () => {
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let conn: Connection;
  let standbyConn: Connection;
  let archive: string;
  let config: string;
  let agent: HotspareProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-basectl-'));
    primary = await MariadbServer.start({ serverId: 31, binlog: true, baseDir: join(dir, 'primary') });
    standby = await MariadbServer.start({ serverId: 32, binlog: false, baseDir: join(dir, 'standby'), extraArgs: ['--read-only=ON'] });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await createWorkloadSchema(conn);
    // Values that must survive the server-rendered literals: line breaks, quotes, backslashes,
    // NUL and Ctrl-Z inside text, latin1 and gbk bytes, every byte value in a blob; the same
    // without line breaks (quoted, not hex); a text of 9,000 short lines.
    await conn.query(`CREATE TABLE app.tricky (id INT PRIMARY KEY, t TEXT CHARACTER SET utf8mb4, l VARCHAR(40) CHARACTER SET latin1,
      g VARCHAR(40) CHARACTER SET gbk, b BLOB, f FLOAT) ENGINE=InnoDB`);
    await conn.query(`INSERT INTO app.tricky VALUES
      (1, CONCAT('a', CHAR(10), 'b', CHAR(13), 'c\\\\d''e"f', CHAR(0), CHAR(26), 'ü'), _latin1 X'5C27E9FF0A', _gbk X'955C', (SELECT GROUP_CONCAT(CHAR(seq) SEPARATOR '') FROM app.seq_0_to_255), 16777215),
      (2, 'NULL', 'NULL', NULL, X'', 123.456789), (3, NULL, NULL, NULL, NULL, NULL),
      (4, CONCAT('c\\\\d''e"f', CHAR(0), CHAR(26), 'ü'), _latin1 X'5C27E9FF', _gbk X'955C', (SELECT GROUP_CONCAT(CHAR(seq) SEPARATOR '') FROM app.seq_0_to_255 WHERE seq NOT IN (10, 13)), 1.5),
      (5, REPEAT(CONCAT('line ', CHAR(13), CHAR(10)), 9000), NULL, NULL, NULL, NULL)`);
    archive = join(dir, 'archive');
    config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
  }, 120_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await conn?.end();
    await standbyConn?.end();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('takes the base through the agent while it streams; promotion from that base equals the primary', async () => {
    const files = new LocalArchiveFiles(archive);
    agent = new HotspareProcess(['agent', '--config', config]);
    await waitFor('the agent to stream', () => agent?.stderr.includes('streaming binlog to replica') === true, 120_000);
    const socket = join(dir, 'state', 'agent.sock');
    await waitFor('the control socket', () => existsSync(socket), 30_000);
    const [first] = await listBaseBackups(files);
    expect(first).toBeDefined();

    const runner = new WorkloadRunner(conn, { blobBytes: 512 * 1024, firstStep: 0 });
    runner.start();
    await waitFor('writes before the base', () => runner.steps > 60, 60_000);
    // --method overrides the agent's configured (logical) method for one request.
    const physical = await runHotspare(['base', '--config', config, '--method', 'physical']);
    expect(physical.code).toBe(0);
    expect(physical.stdout).toMatch(/^a: base \S+ at mysql-bin\.\d+:\d+ .*, physical-mariabackup \(taken by the running agent, pid \d+\)$/m);
    const result = await runHotspare(['base', '--config', config]);
    expect(result.stderr).not.toContain('ARCHIVE_LOCKED');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^a: base \S+ at mysql-bin\.\d+:\d+ .*\(taken by the running agent, pid \d+\)$/m);
    await waitFor('writes after the base', () => runner.steps > 160, 60_000);
    await runner.stop();

    const bases = await listBaseBackups(files);
    expect(bases.map((b) => b.method)).toEqual(['logical-exact', 'physical-mariabackup', 'logical-exact']);
    const second = bases[2];
    expect(result.stdout).toContain(`base ${second?.id} at ${second?.binlog.file}:${second?.binlog.position}`);

    const expected = await tableChecksums(conn);
    const end = await primaryHead(conn);
    const archivedPath = join(archive, 'binlog', end.file);
    await waitFor('the archive to catch up', () => existsSync(archivedPath) && statSync(archivedPath).size >= end.position, 60_000);
    expect(await agent.kill('SIGTERM')).toBe(0);
    expect(existsSync(socket)).toBe(false);

    const plan = await promoteInto(standby, archive, { kind: 'end' }, { replace: false });
    expect(plan.base.id).toBe(second?.id);
    expect(plan.replay.length).toBeGreaterThan(0);
    expect(await tableChecksums(standbyConn)).toEqual(expected);
  }, 300_000);

  it('without a running agent, hotspare base opens the archive itself', async () => {
    const result = await runHotspare(['base', '--config', config]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^a: base \S+ at mysql-bin\.\d+:\d+/m);
    expect(result.stdout).not.toContain('running agent');
    expect(await listBaseBackups(new LocalArchiveFiles(archive))).toHaveLength(4);
  }, 120_000);

  it('a row too large with its line-broken values in hex is rendered again with them escaped: it dumps and restores exactly', async () => {
    const small = await MariadbServer.start({ serverId: 36, binlog: true, baseDir: join(dir, 'small-lines'), extraArgs: ['--max-allowed-packet=1M'] });
    const target = await MariadbServer.start({ serverId: 37, binlog: false, baseDir: join(dir, 'small-lines-target') });
    try {
      const c = await small.connect();
      await c.query('CREATE DATABASE d');
      await c.query('CREATE TABLE d.t (id INT PRIMARY KEY, v MEDIUMTEXT, b MEDIUMBLOB) ENGINE=InnoDB');
      // 600 KB each: as hex 1.2 MB, past the 1 MiB packet; escaped, a little over 600 KB. (Few
      // line breaks: escaping takes time in proportion to their number times the length.)
      await c.query(`INSERT INTO d.t VALUES (1, CONCAT(REPEAT('x', 300000), CHAR(10), REPEAT('y', 300000), CHAR(13)), NULL),
        (2, NULL, CONCAT(REPEAT(X'00', 300000), X'0D0A', REPEAT(X'FF', 300000))), (3, 'short\nlines', X'0A'),
        (4, CONCAT(REPEAT('a', 200000), CHAR(10), REPEAT('b', 200000)), CONCAT(REPEAT(X'01', 200000), X'0A', REPEAT(X'02', 200000)))`);
      // (Row 4: each value's hex fits, the row's does not: 1.6 MB.)
      await c.end();
      await baseRestoresExactly(small, target, join(dir, 'archive-small-lines'), 4302);
    } finally {
      await Promise.all([small.destroy(), target.destroy()]);
    }
  }, 120_000);

  it('a row whose literal would exceed max_allowed_packet fails the backup with BASE_ROW_TOO_LARGE; nothing is kept', async () => {
    const small = await MariadbServer.start({ serverId: 33, binlog: true, baseDir: join(dir, 'small'), extraArgs: ['--max-allowed-packet=1M'] });
    try {
      const c = await small.connect();
      await c.query('CREATE DATABASE d');
      await c.query('CREATE TABLE d.t (id INT PRIMARY KEY, v MEDIUMTEXT) ENGINE=InnoDB');
      // 600 KB of backslashes: stored fine, but QUOTE() doubles them past the 1 MB packet limit.
      await c.query("INSERT INTO d.t VALUES (1, 'ok'), (2, REPEAT('\\\\', 600000)), (3, 'ok')");
      await c.end();
      const files = new LocalArchiveFiles(join(dir, 'archive-small'));
      const attempt = takeBaseBackup({ primary: { socketPath: small.socketPath, user: 'root', password: '', serverId: 4300 }, files, clock: systemClock, logger: silentLogger() });
      await expect(attempt).rejects.toMatchObject({ code: 'BASE_ROW_TOO_LARGE', message: expect.stringContaining('d.t') });
      expect(await files.list('base')).toEqual([]);
    } finally {
      await small.destroy();
    }
  }, 120_000);

  it('whatever the primary\'s global sql_mode, the rows restore exactly; a system-versioned table is refused, not restored empty', async () => {
    // NO_BACKSLASH_ESCAPES would turn the dump's escaped line breaks into text.
    const odd = await MariadbServer.start({ serverId: 34, binlog: true, baseDir: join(dir, 'odd'), extraArgs: ['--sql-mode=NO_BACKSLASH_ESCAPES,ANSI_QUOTES'] });
    const target = await MariadbServer.start({ serverId: 35, binlog: false, baseDir: join(dir, 'odd-target') });
    try {
      const c = await odd.connect();
      await c.query('CREATE DATABASE d');
      await c.query('CREATE TABLE d.t (id INT PRIMARY KEY, v TEXT, l VARCHAR(10) CHARACTER SET latin1) ENGINE=InnoDB');
      await c.query("INSERT INTO d.t VALUES (1, CONCAT('a', CHAR(10), 'b', CHAR(13), CHAR(92), 'c'), CHAR(233)), (2, '', NULL)");
      // Names need not be ASCII (nor free of line breaks).
      await c.query('CREATE TABLE d.`tä\nx` (`cö` INT PRIMARY KEY, `€` VARCHAR(5)) ENGINE=MyISAM');
      await c.query("INSERT INTO d.`tä\nx` VALUES (1, 'ü'), (2, NULL)");
      // A MERGE table shows its tables' rows: copied once, through the tables themselves.
      await c.query('CREATE TABLE d.part (a INT) ENGINE=MyISAM');
      await c.query('CREATE TABLE d.whole (a INT) ENGINE=MERGE UNION=(d.part) INSERT_METHOD=LAST');
      await c.query('INSERT INTO d.part VALUES (1), (2), (3)');
      const { base, files, primary } = await baseRestoresExactly(odd, target, join(dir, 'archive-odd'), 4301);

      await c.query('CREATE TABLE d.history (id INT PRIMARY KEY, v INT) WITH SYSTEM VERSIONING');
      await c.end();
      const attempt = takeBaseBackup({ primary, files, clock: systemClock, logger: silentLogger() });
      await expect(attempt).rejects.toMatchObject({ code: 'BASE_UNSUPPORTED', message: expect.stringContaining('d.history') });
      expect(await files.list('base')).toEqual([base.id]);
    } finally {
      await Promise.all([odd.destroy(), target.destroy()]);
    }
  }, 120_000);

  it('a standby whose max_allowed_packet is below the rows: raised for the restore and the replay, then put back', async () => {
    // A row in the base (its literal, hex, twice its size) and one after it (its row event, as a
    // BINLOG statement, 4/3 of it) both beyond the 1 MiB the standby allows.
    await conn.query('CREATE TABLE app.wide (id INT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB');
    await conn.query('INSERT INTO app.wide VALUES (1, ?)', [Buffer.alloc(700 * 1024, 7)]);
    const base = await runHotspare(['base', '--config', config]);
    expect(base.code).toBe(0);
    await conn.query('INSERT INTO app.wide VALUES (2, ?)', [Buffer.alloc(3 * 1024 * 1024, 9)]);
    const expected = await tableChecksums(conn);
    const end = await primaryHead(conn);
    agent = new HotspareProcess(['agent', '--config', config]);
    const archivedPath = join(archive, 'binlog', end.file);
    await waitFor('the archive to catch up', () => existsSync(archivedPath) && statSync(archivedPath).size >= end.position, 60_000);
    expect(await agent.kill('SIGTERM')).toBe(0);

    const narrow = await MariadbServer.start({ serverId: 34, binlog: false, baseDir: join(dir, 'narrow'), extraArgs: ['--max-allowed-packet=1M'] });
    try {
      const plan = await promoteInto(narrow, archive, { kind: 'end' }, { replace: false });
      expect(plan.replay.length).toBeGreaterThan(0);
      const n = await narrow.connect();
      expect(await tableChecksums(n)).toEqual(expected);
      const [[row]] = (await n.query('SELECT @@global.max_allowed_packet AS p')) as [Array<{ p: number | string }>, unknown];
      expect(Number(row?.p)).toBe(1024 * 1024);
      await n.end();
    } finally {
      await narrow.destroy();
    }
  }, 180_000);
});
