import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { HotspareProcess, runHotspare, waitFor } from '../support/agent-process.js';
import { primaryHead } from '../support/primary-head.js';
import { ReceiverProcess } from '../support/receiver-process.js';

/**
 * Goal: the day after a failover, the old primary coming back with its old datadir and its
 * agent's old config (split brain) must not stream its new timeline into the archive the new
 * primary was promoted from: that archive would then end in transactions the new primary never
 * had, `status` would call them restorable, and a later promotion would restore them. Promotion
 * to the end with --fence (a failover) fences the archive (state/promoted.json) and the agent,
 * through a `file` replica or a receiver, is refused with ARCHIVE_PROMOTED; without it (a
 * rehearsal from a live archive, a test of the backups) or for a point in time it does not. Method: real servers, the real agent, receiver and `hotspare promote`.
 */
describe('an archive promoted from is fenced against its old primary', () => {
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let conn: Connection;
  let standbyConn: Connection;
  let archive: string;
  let config: string;

  const target = (): string => `mysql://root@localhost?socket=${encodeURIComponent(standby.socketPath)}`;
  const archivedBytes = (): number => readdirSync(join(archive, 'binlog')).filter((n) => !n.startsWith('.')).reduce((n, f) => n + statSync(join(archive, 'binlog', f)).size, 0);
  const writeConfig = (replica: Record<string, unknown>): void =>
    writeFileSync(
      config,
      JSON.stringify({ primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 }, stateDir: join(dir, 'agent', 'state'), replicas: [replica] }),
    );

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-promote-fence-'));
    primary = await MariadbServer.start({ serverId: 81, binlog: true, baseDir: join(dir, 'primary'), extraArgs: ['--skip-networking'] });
    standby = await MariadbServer.start({ serverId: 82, binlog: true, baseDir: join(dir, 'standby'), extraArgs: ['--skip-networking'] });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.t (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB');
    await conn.query("INSERT INTO app.t VALUES (1, 'before')");
    archive = join(dir, 'archive');
    mkdirSync(join(dir, 'agent'), { recursive: true });
    config = join(dir, 'agent', 'agent.json');
    writeConfig({ name: 'a', type: 'file', path: archive });
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      await conn.query("INSERT INTO app.t VALUES (2, 'after the base')");
      const end = await primaryHead(conn);
      await waitFor('the archive to catch up', () => existsSync(join(archive, 'binlog', end.file)) && statSync(join(archive, 'binlog', end.file)).size >= end.position, 60_000);
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

  it('without --fence (a rehearsal, hooks run or not), and for a point in time with it, the archive stays open', async () => {
    const rehearsal = await runHotspare(['promote', '--archive', archive, '--target', target()]);
    expect(rehearsal.code, rehearsal.stderr.slice(-2000)).toBe(0);
    expect(rehearsal.stdout).toMatch(/\[ \] fence-archive: not without --fence/);
    const head = await primaryHead(conn);
    const pointInTime = await runHotspare(['promote', '--archive', archive, '--target', target(), '--replace', '--fence', '--until-position', `${head.file}:${head.position}`]);
    expect(pointInTime.code, pointInTime.stderr.slice(-2000)).toBe(0);
    expect(pointInTime.stdout).toMatch(/\[ \] fence-archive: not for a point in time/);
    expect(existsSync(join(archive, 'state', 'promoted.json'))).toBe(false);
  });

  it('a promotion to the end fences it; the old primary\'s agent is refused, through a file replica and a receiver, and the archive gets nothing of its new writes', async () => {
    const result = await runHotspare(['promote', '--archive', archive, '--target', target(), '--replace', '--fence']);
    expect(result.code, result.stderr.slice(-2000)).toBe(0);
    expect(result.stdout).toMatch(/\[x\] fence-archive: write state\/promoted.json/);
    const expected = await tableChecksums(standbyConn);
    const fence = JSON.parse(readFileSync(join(archive, 'state', 'promoted.json'), 'utf8')) as { target: string; stopAt: { file: string } };
    expect(fence.target).toContain('root@localhost');
    expect(fence.target).not.toContain('password');
    const status = await runHotspare(['status', '--archive', archive]);
    expect(status.stdout).toMatch(/^ {2}PROMOTED: at .* into root@localhost.*ARCHIVE_PROMOTED/m);

    // The old primary is back and takes writes (split brain); its agent starts with its old config.
    await conn.query("INSERT INTO app.t VALUES (3, 'split brain')");
    const bytes = archivedBytes();
    const agent = new HotspareProcess(['agent', '--config', config]);
    expect(await agent.exited).toBe(1);
    expect(agent.stderr).toMatch(/^error ARCHIVE_PROMOTED: .*was promoted from at /m);
    expect(agent.stderr).toMatch(/^hint: keep applications off this server \(split brain\)/m);

    // The same archive served by a receiver on the standby's host.
    const port = await freePort();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'fence-token-0123456789\n');
    const receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    await receiver.start();
    try {
      writeConfig({ name: 'a', type: 'remote', address: `127.0.0.1:${port}`, tokenFile });
      const remote = new HotspareProcess(['agent', '--config', config]);
      expect(await remote.exited).toBe(1);
      expect(remote.stderr).toMatch(/^error ARCHIVE_PROMOTED: .*was promoted from at /m);
    } finally {
      await receiver.stop();
    }
    expect(archivedBytes()).toBe(bytes);
    // What a promotion from the archive gives is still the new primary's starting point.
    const again = await runHotspare(['promote', '--archive', archive, '--target', target(), '--replace']);
    expect(again.code, again.stderr.slice(-2000)).toBe(0);
    expect(await tableChecksums(standbyConn)).toEqual(expected);
  });

  it('an agent already streaming when the archive is fenced: its next write ends the session, and the archive keeps none of it (a file replica and a receiver)', async () => {
    const cases: Array<{ name: string; replica: (path: string) => Promise<{ replica: Record<string, unknown>; stop: () => Promise<void> }> }> = [
      { name: 'file', replica: (path) => Promise.resolve({ replica: { name: 'a', type: 'file', path }, stop: () => Promise.resolve() }) },
      {
        name: 'remote',
        replica: async (path) => {
          const port = await freePort();
          const tokenFile = join(dir, 'token-live');
          writeFileSync(tokenFile, 'fence-live-token-0123456789\n');
          const receiver = new ReceiverProcess(['--archive', path, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
          await receiver.start();
          return {
            replica: { name: 'a', type: 'remote', address: `127.0.0.1:${port}`, tokenFile },
            stop: async () => {
              await receiver.stop();
            },
          };
        },
      },
    ];
    for (const c of cases) {
      // A new archive, streamed into by an agent that runs through the promotion (the old
      // primary's agent, whose dump outlives a crash of its server or reconnects after it).
      const live = join(dir, `live-${c.name}`);
      const { replica, stop } = await c.replica(live);
      writeConfig(replica);
      const agent = new HotspareProcess(['agent', '--config', config]);
      try {
        await waitFor(`the ${c.name} agent to stream`, () => agent.stderr.includes('streaming binlog to replica'), 120_000);
        await conn.query(`INSERT INTO app.t VALUES (10${c.name.length}, 'fence pre ${c.name}')`);
        const head = await primaryHead(conn);
        const liveBytes = (): number => readdirSync(join(live, 'binlog')).filter((n) => !n.startsWith('.')).reduce((n, f) => n + statSync(join(live, 'binlog', f)).size, 0);
        await waitFor(`the ${c.name} archive to catch up`, () => existsSync(join(live, 'binlog', head.file)) && statSync(join(live, 'binlog', head.file)).size >= head.position, 60_000);

        const promoted = await runHotspare(['promote', '--archive', live, '--target', target(), '--replace', '--fence']);
        expect(promoted.code, promoted.stderr.slice(-2000)).toBe(0);
        const fenced = liveBytes();
        await conn.query(`INSERT INTO app.t VALUES (20${c.name.length}, 'split ${c.name}')`);
        await waitFor(`the ${c.name} agent to meet the fence`, () => /ARCHIVE_PROMOTED/.test(agent.stderr), 60_000);
        expect(liveBytes()).toBe(fenced);
        // The agent goes on (state error, retried), refused at each new session: SIGTERM stops it with 0.
      } finally {
        expect(await agent.kill('SIGTERM')).toBe(0);
        await stop();
      }
    }
  });
});
