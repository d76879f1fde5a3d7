import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { HeadPoller, type HeadObservation } from '../../src/primary/head-poller.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: while a replica has no stream, the head is checked every 50 ms, but the primary is
 * asked for its whole binlog list (SHOW BINARY LOGS, which looks at every file) only once per
 * interval; the head file's size in between is the head position, and a list read just after
 * the head is cut back to the head (one observation, one moment). Method: a real primary, its
 * own statement counters, writes without pause and a rotation during the fast checks.
 */
describe('head poller', () => {
  let primary: MariadbServer;
  let conn: Connection;

  beforeAll(async () => {
    primary = await MariadbServer.start({ serverId: 41, binlog: true });
    conn = await primary.connect();
    await conn.query('CREATE DATABASE d');
    await conn.query('CREATE TABLE d.t (n INT) ENGINE=InnoDB');
  }, 60_000);

  afterAll(async () => {
    await conn?.end();
    await primary?.destroy();
  });

  const counter = async (name: string): Promise<number> => {
    const [rows] = await conn.query<RowDataPacket[]>(`SHOW GLOBAL STATUS LIKE '${name}'`);
    return Number(rows[0]?.['Value'] ?? 0);
  };

  it('checks the head fast and lists the files once per interval, the head file sized by the head', async () => {
    const observations: HeadObservation[] = [];
    const poller = new HeadPoller({
      primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4401 },
      intervalMs: 1_000,
      fastIntervalMs: 20,
      wantFast: () => true,
      clock: systemClock,
      logger: silentLogger(),
      onObservation: (o) => observations.push(o),
      onFailure: () => undefined,
    });
    const listsBefore = await counter('Com_show_binlogs');
    // A second writer without pauses: writes land between a check's head and its list.
    const busy = await primary.connect();
    let writing = true;
    const hammer = (async () => {
      while (writing) await busy.query('INSERT INTO d.t VALUES (-1)');
    })();
    const startedAt = Date.now();
    poller.start();
    let stoppedAt = startedAt;
    try {
      // At least 20 writes, and on until the poller has checked 30 times (a loaded machine
      // checks less often than every 20 ms), within a minute.
      for (let i = 0; i < 20 || (observations.length < 30 && Date.now() - startedAt < 60_000); i++) {
        await conn.query('INSERT INTO d.t VALUES (?)', [i]);
        if (i === 10) await conn.query('FLUSH BINARY LOGS');
        await new Promise((r) => setTimeout(r, 30));
      }
      writing = false;
      await hammer;
      await busy.end();
      await waitFor('a check after the last write', async () => {
        const [rows] = await conn.query<RowDataPacket[]>('SHOW MASTER STATUS');
        const last = observations.at(-1);
        return last !== undefined && last.head.file === String(rows[0]?.['File']) && last.head.position === Number(rows[0]?.['Position']);
      });
    } finally {
      await poller.stop();
      stoppedAt = Date.now();
    }
    const lists = (await counter('Com_show_binlogs')) - listsBefore;
    expect(observations.length).toBeGreaterThanOrEqual(30);
    // The first check's, one per interval (1 s) after it, and one for the rotation: far fewer
    // than the checks, however fast the machine checks.
    expect(lists).toBeLessThanOrEqual(2 + Math.ceil((stoppedAt - startedAt) / 1_000));
    for (const o of observations) {
      const newest = o.files.at(-1);
      expect(newest?.name).toBe(o.head.file);
      expect(newest?.sizeBytes).toBe(o.head.position);
    }
    // The list the primary gives now agrees with the last observation's.
    const [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
    expect(observations.at(-1)?.files).toEqual(rows.map((r) => ({ name: String(r['Log_name']), sizeBytes: Number(r['File_size']) })));
  });

  it("reads the primary's binlog_format again now and then: a SET GLOBAL under a running agent is seen", async () => {
    const observations: HeadObservation[] = [];
    const poller = new HeadPoller({
      primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4402 },
      intervalMs: 20,
      settingsRefreshMs: 20,
      clock: systemClock,
      logger: silentLogger(),
      onObservation: (o) => observations.push(o),
      onFailure: () => undefined,
    });
    poller.start();
    try {
      await waitFor('a first reading', () => observations.some((o) => o.binlogFormat === 'ROW'), 10_000, 5);
      await conn.query('SET GLOBAL binlog_format = MIXED');
      await waitFor('the change to be seen', () => observations.some((o) => o.binlogFormat === 'MIXED'), 10_000, 5);
    } finally {
      await conn.query('SET GLOBAL binlog_format = ROW');
      await poller.stop();
    }
  });
});
