import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { compareArchiveWithPrimary, primaryBinlogFiles } from '../../src/sandbox/binlog-compare.js';
import { HotspareProcess, runHotspare, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { purgeBinlogsTo } from '../support/primary-head.js';

/** A snapshot of every file in a folder (name → bytes), to prove a refusal changed nothing. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    if (!existsSync(d)) return;
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.set(p, readFileSync(p).toString('base64'));
    }
  };
  walk(dir);
  return out;
}

/**
 * Goal: each way the agent can be misused or meet a broken primary gives its own clear
 * error (code and hint, or the config field), and leaves the archive as it was.
 * Method: real sandbox primaries, the real `hotspare agent` process.
 */
describe('agent refusals', () => {
  let primary: MariadbServer;
  let dir: string;
  let archive: string;
  let config: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-errors-'));
    primary = await MariadbServer.start({ serverId: 21, binlog: true, baseDir: join(dir, 'primary') });
    archive = join(dir, 'archive');
    config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
    // A first run fills the archive, so every refusal below has something to leave alone.
    const conn = await primary.connect();
    await conn.query('CREATE DATABASE d');
    await conn.query('CREATE TABLE d.t (a INT)');
    await conn.query('INSERT INTO d.t VALUES (1)');
    await conn.end();
    const agent = new HotspareProcess(['agent', '--config', config]);
    await waitFor('first archive', () => existsSync(join(archive, 'binlog')) && compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir).differences.length === 0 && readdirSync(join(archive, 'binlog')).length > 0);
    await agent.kill('SIGTERM');
  });

  afterAll(async () => {
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('names the field of a wrong config value and exits 2', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify({ primary: { host: '127.0.0.1', port: 'x', user: 'root', serverId: 1 }, stateDir: 's', replicas: [{ name: 'a', type: 'file', path: archive }] }));
    const before = snapshot(archive);
    const result = await runHotspare(['agent', '--config', bad]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('config error: primary.port: expected a number, received "x"');
    const unknown = join(dir, 'unknown.yaml');
    writeFileSync(unknown, `primary: {host: 127.0.0.1, port: ${primary.port}, user: root, serverId: 1, colour: blue}\nstateDir: s\nreplicas: [{name: a, type: file, path: ${archive}}]\n`);
    const second = await runHotspare(['agent', '--config', unknown]);
    expect(second.code).toBe(2);
    expect(second.stderr).toContain('config error: primary: unknown key "colour"');
    expect(snapshot(archive)).toEqual(before);
  });

  it('a second agent on the same stateDir is refused with CONTROL_SOCKET_IN_USE before it opens a replica; the first streams on', async () => {
    const first = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the first agent to stream', () => first.logs().some((l) => l['msg'] === 'streaming binlog to replica'), 60_000);
      const second = await runHotspare(['agent', '--config', config]);
      expect(second.code).toBe(1);
      expect(second.stderr).toContain('error CONTROL_SOCKET_IN_USE');
      expect(second.stderr).toMatch(/hint: .*stateDir/);
      // Refused before its replica check, which would have met the archive's lock instead.
      expect(second.stderr).not.toContain('ARCHIVE_LOCKED');
      expect(first.child.exitCode).toBeNull();
    } finally {
      await first.kill('SIGTERM');
    }
    expect(await first.exited).toBe(0);
  });

  it('refuses a primary in MIXED format with a hint', async () => {
    const conn = await primary.connect();
    await conn.query('SET GLOBAL binlog_format = MIXED');
    try {
      const before = snapshot(archive);
      const result = await runHotspare(['agent', '--config', config]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('error BINLOG_FORMAT: binlog_format is MIXED');
      expect(result.stderr).toContain("hint: SET GLOBAL binlog_format=ROW and add binlog_format=ROW to the server's config");
      expect(snapshot(archive)).toEqual(before);
    } finally {
      await conn.query('SET GLOBAL binlog_format = ROW');
      await conn.end();
    }
  });

  it('refuses a primary that encrypts its binlog (its dump is not its files\' bytes), writing nothing', async () => {
    const keys = join(dir, 'binlog-keys.txt');
    writeFileSync(keys, `1;${'a1'.repeat(32)}\n`);
    const encrypted = await MariadbServer.start({
      serverId: 22,
      binlog: true,
      baseDir: join(dir, 'encrypted'),
      extraArgs: ['--plugin-load-add=file_key_management', `--file-key-management-filename=${keys}`, '--encrypt-binlog=ON'],
    });
    try {
      const encryptedArchive = join(dir, 'encrypted-archive');
      const encryptedConfig = writeAgentConfig(join(dir, 'encrypted'), encrypted, [{ name: 'a', type: 'file', path: encryptedArchive }]);
      const result = await runHotspare(['agent', '--config', encryptedConfig]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('error BINLOG_ENCRYPTED: the primary encrypts its binlog');
      expect(result.stderr).toContain("hint: set encrypt_binlog=OFF in the server's config");
      expect(existsSync(join(encryptedArchive, 'binlog')) ? readdirSync(join(encryptedArchive, 'binlog')) : []).toEqual([]);
    } finally {
      await encrypted.destroy();
    }
  });

  it('refuses a user without REPLICATION SLAVE', async () => {
    const conn = await primary.connect();
    await conn.query("CREATE USER 'weak'@'127.0.0.1' IDENTIFIED BY 'pw'");
    await conn.query("GRANT SELECT ON *.* TO 'weak'@'127.0.0.1'");
    await conn.end();
    const weak = join(dir, 'weak.json');
    writeFileSync(weak, JSON.stringify({ primary: { host: '127.0.0.1', port: primary.port, user: 'weak', password: 'pw', serverId: 4242 }, stateDir: 's', replicas: [{ name: 'a', type: 'file', path: archive }] }));
    const before = snapshot(archive);
    const result = await runHotspare(['agent', '--config', weak]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('error PRIVILEGES');
    expect(result.stderr).toContain('hint: GRANT REPLICATION SLAVE');
    expect(result.stderr).not.toContain('pw');
    expect(snapshot(archive)).toEqual(before);
  });

  it('refuses at start a user without what the head checks or the base backups need, naming the GRANT (it ran on, archiving nothing)', async () => {
    const conn = await primary.connect();
    const cases = [
      { user: 'nomonitor', grant: 'REPLICATION SLAVE', says: "lacks BINLOG MONITOR, which the agent's head checks (how far each standby is behind) and base backups need", hint: 'hint: GRANT BINLOG MONITOR ON *.*' },
      { user: 'nobase', grant: 'REPLICATION SLAVE, BINLOG MONITOR', says: 'lacks RELOAD, SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER, which a consistent base backup needs', hint: 'hint: GRANT RELOAD, SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.*' },
    ];
    try {
      for (const c of cases) {
        await conn.query(`CREATE USER '${c.user}'@'127.0.0.1' IDENTIFIED BY 'pw3'`);
        await conn.query(`GRANT ${c.grant} ON *.* TO '${c.user}'@'127.0.0.1'`);
        const path = join(dir, `${c.user}.json`);
        writeFileSync(path, JSON.stringify({ primary: { host: '127.0.0.1', port: primary.port, user: c.user, password: 'pw3', serverId: 4242 }, stateDir: join(dir, `${c.user}-state`), replicas: [{ name: 'a', type: 'file', path: archive }] }));
        const before = snapshot(archive);
        const result = await runHotspare(['agent', '--config', path]);
        expect(result.code, result.stderr.slice(-2000)).toBe(1);
        expect(result.stderr).toContain(`error PRIVILEGES: the hotspare user ${c.says}`);
        expect(result.stderr).toContain(c.hint);
        expect(snapshot(archive)).toEqual(before);
      }
    } finally {
      for (const c of cases) await conn.query(`DROP USER IF EXISTS '${c.user}'@'127.0.0.1'`);
      await conn.end();
    }
  });

  it("a user who may not read SHOW SLAVE HOSTS: the agent streams, and warns with the server ids it could not check", async () => {
    const conn = await primary.connect();
    // README's GRANT, without REPLICATION MASTER ADMIN.
    await conn.query("CREATE USER 'plain'@'127.0.0.1' IDENTIFIED BY 'pw2'");
    await conn.query("GRANT REPLICATION SLAVE, BINLOG MONITOR, RELOAD, SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO 'plain'@'127.0.0.1'");
    const plainArchive = join(dir, 'archive-plain');
    const plainConfig = join(dir, 'plain.json');
    const write = (user: string, password: string): void =>
      writeFileSync(plainConfig, JSON.stringify({ primary: { host: '127.0.0.1', port: primary.port, user, password, serverId: 4242 }, stateDir: join(dir, 'plain-state'), replicas: [{ name: 'a', type: 'file', path: plainArchive }, { name: 'b', type: 'file', path: `${plainArchive}-b` }] }));
    const streamed = async (): Promise<string> => {
      const agent = new HotspareProcess(['agent', '--config', plainConfig]);
      try {
        await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica') || agent.stderr.includes('"level":50'), 120_000);
        expect(agent.stderr).not.toContain('"level":50');
      } finally {
        expect(await agent.kill('SIGTERM')).toBe(0);
      }
      return agent.stderr;
    };
    try {
      write('plain', 'pw2');
      const without = (await streamed()).split('\n').filter((l) => l.includes('SERVER_IDS_UNCHECKED')).map((l) => JSON.parse(l) as { level: number; serverIds: number[]; msg: string; hint: string });
      expect(without).toHaveLength(1);
      expect(without[0]).toMatchObject({ level: 40, serverIds: [4242, 4243], hint: expect.stringContaining('GRANT REPLICATION MASTER ADMIN') });
      expect(without[0]?.msg).toContain('(4242, 4243)');
      // With the privilege the list is read and nothing is said.
      await conn.query("GRANT REPLICATION MASTER ADMIN ON *.* TO 'plain'@'127.0.0.1'");
      expect(await streamed()).not.toContain('SERVER_IDS_UNCHECKED');
    } finally {
      await conn.query("DROP USER 'plain'@'127.0.0.1'");
      await conn.end();
    }
  });

  it('refuses a serverId a connected replica uses, which the dump would push off the primary', async () => {
    // A real replica of the primary with the agent's serverId (writeAgentConfig: 4242).
    const replica = await MariadbServer.start({ serverId: 4242, binlog: false, baseDir: join(dir, 'replica'), extraArgs: ['--report-host=127.0.0.1'] });
    const conn = await primary.connect();
    const replicaConn = await replica.connect();
    try {
      await replicaConn.query(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=no`);
      await replicaConn.query('START SLAVE');
      await waitFor('the replica to register', async () => {
        const [rows] = await conn.query('SHOW SLAVE HOSTS');
        return (rows as Array<{ Server_id: number }>).some((r) => Number(r.Server_id) === 4242);
      });
      const before = snapshot(archive);
      // Bounded: an agent that is not refused would stream on and never exit.
      const agent = new HotspareProcess(['agent', '--config', config]);
      const exited = await Promise.race([agent.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 30_000))]);
      if (exited === 'running') await agent.kill('SIGTERM');
      const result = { code: exited, stderr: agent.stderr };
      expect(result.code, result.stderr.slice(-3000)).toBe(1);
      expect(result.stderr).toContain('error SERVER_ID_IN_USE: a replica of the primary (127.0.0.1:');
      expect(result.stderr).toContain('already uses server_id 4242');
      expect(result.stderr).toContain('hint: the primary would disconnect that replica');
      expect(snapshot(archive)).toEqual(before);
      // The replica was left alone.
      const [[status]] = (await replicaConn.query('SHOW SLAVE STATUS')) as unknown as [Array<Record<string, unknown>>];
      expect(status?.['Slave_IO_Running']).toBe('Yes');
    } finally {
      await replicaConn.query('STOP SLAVE').catch(() => undefined);
      await replicaConn.end();
      await replica.destroy();
      // The primary lists a replica until its dump thread notices it is gone: end it now.
      const [dumps] = await conn.query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
      for (const { ID } of dumps as Array<{ ID: number }>) await conn.query(`KILL ${Number(ID)}`).catch(() => undefined);
      await waitFor('the primary to forget the replica', async () => ((await conn.query('SHOW SLAVE HOSTS'))[0] as unknown[]).length === 0);
      await conn.end();
    }
  });

  it('a replica with its serverId that connects later: SERVER_ID_IN_USE, retried at the backoff cap, not every few ms', async () => {
    const agent = new HotspareProcess(['agent', '--config', config]);
    const replica = await MariadbServer.start({ serverId: 4242, binlog: false, baseDir: join(dir, 'late-replica') });
    const replicaConn = await replica.connect();
    try {
      await waitFor('the agent to stream', () => agent.logs().some((l) => l['msg'] === 'streaming binlog to replica'), 60_000);
      await replicaConn.query(`CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${primary.port}, MASTER_USER='root', MASTER_PASSWORD='', MASTER_USE_GTID=no`);
      await replicaConn.query('START SLAVE');
      const failure = await waitFor('the dump to meet the replica', () => agent.logs().find((l) => l['code'] === 'SERVER_ID_IN_USE'), 60_000);
      expect(failure['hint']).toMatch(/unused by every server/);
      // The default cap (binlog.retryDelayMsMax, 30 s), less its jitter: the replica is left in peace meanwhile.
      expect(Number(failure['retryInMs'])).toBeGreaterThanOrEqual(20_000);
    } finally {
      await replicaConn.query('STOP SLAVE').catch(() => undefined);
      await replicaConn.end();
      await replica.destroy();
      await agent.kill('SIGTERM');
      const conn = await primary.connect();
      const [dumps] = await conn.query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'");
      for (const { ID } of dumps as Array<{ ID: number }>) await conn.query(`KILL ${Number(ID)}`).catch(() => undefined);
      await conn.end();
    }
  });

  it("refuses another primary's archive", async () => {
    const other = await MariadbServer.start({ serverId: 22, binlog: true, baseDir: join(dir, 'other') });
    try {
      const otherConfig = writeAgentConfig(join(dir, 'other'), other, [{ name: 'a', type: 'file', path: archive }]);
      const before = snapshot(archive);
      const result = await runHotspare(['agent', '--config', otherConfig]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/error ARCHIVE_FOREIGN: replica a: archive .* belongs to primary server_id 21/);
      expect(snapshot(archive)).toEqual(before);
    } finally {
      await other.destroy();
    }
  });

  it('reports purged binlog as BINLOG_PURGED and does not skip ahead', async () => {
    // A copy of the archive that still ends in the primary's first file...
    const stale = join(dir, 'stale');
    cpSync(archive, stale, { recursive: true });
    const staleFiles = readdirSync(join(stale, 'binlog'));
    // ...then the primary moves on and purges that file.
    const conn = await primary.connect();
    await conn.query('FLUSH BINARY LOGS');
    await conn.query('INSERT INTO d.t VALUES (2)');
    const files = primaryBinlogFiles(primary.datadir);
    await purgeBinlogsTo(conn, files[files.length - 1] as string);
    await conn.end();
    // `onPurged: stop` keeps the gap for an operator; the default restarts the chain at a new
    // base (binlog-gap-restart.test.ts).
    const staleConfig = writeAgentConfig(join(dir, 'stale-config'), primary, [{ name: 's', type: 'file', path: stale }], { binlog: { onPurged: 'stop' } });
    const before = snapshot(stale);
    const agent = new HotspareProcess(['agent', '--config', staleConfig]);
    try {
      await waitFor('the purge error', () => agent.logs().some((l) => l['code'] === 'BINLOG_PURGED'), 30_000);
    } finally {
      await agent.kill('SIGTERM');
    }
    const line = agent.logs().find((l) => l['code'] === 'BINLOG_PURGED');
    expect(String(line?.['hint'])).toContain('set it to "new-base" and restart the agent');
    expect(readdirSync(join(stale, 'binlog'))).toEqual(staleFiles);
    expect(snapshot(stale)).toEqual(before);
  });

  it('SIGTERM while the preflight waits for the primary: exit 0, archive unchanged', async () => {
    // A "primary" that accepts the connection and never answers: the preflight hangs in it.
    const sockets: Socket[] = [];
    let connected = false;
    const silent = createServer((socket) => {
      connected = true;
      sockets.push(socket);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const before = snapshot(archive);
      const cfg = writeAgentConfig(join(dir, 'silent'), { port }, [{ name: 'a', type: 'file', path: archive }]);
      const agent = new HotspareProcess(['agent', '--config', cfg]);
      await waitFor('the preflight connection', () => connected);
      expect(await agent.kill('SIGTERM')).toBe(0);
      expect(agent.stderr).not.toMatch(/"level":(50|60)/);
      expect(snapshot(archive)).toEqual(before);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });
});
