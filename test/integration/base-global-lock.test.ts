import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listBaseBackups } from '../../src/archive/base-catalog.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { systemClock } from '../../src/platform/clock.js';
import { acquireGlobalReadLock } from '../../src/primary/base/global-read-lock.js';
import { takeBaseBackup } from '../../src/primary/base/take-base-backup.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { captureLogger } from '../support/capture-logger.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: a logical base backup never makes the primary's writers wait behind a long statement.
 * FLUSH TABLES WITH READ LOCK takes the global read lock and then waits for every statement
 * using a table: issued while a report query runs for minutes, it holds every writer that long.
 * The base asks for it only once no writing statement has run for 2 s (for 10 s at most), in
 * attempts of 2 s, and gives up with BASE_LOCK_TIMEOUT naming what held it up.
 * Method: a real primary; a long SELECT (SLEEP) and a session holding LOCK TABLES; a writer
 * whose INSERT must complete while the long SELECT still runs.
 */
describe('the global read lock of a logical base', () => {
  let dir: string;
  let primary: MariadbServer;
  let conn: Connection;
  let other: Connection;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-ftwrl-'));
    primary = await MariadbServer.start({ serverId: 71, binlog: true, baseDir: join(dir, 'primary') });
    conn = await primary.connect();
    other = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.report (id INT PRIMARY KEY) ENGINE=InnoDB');
    await conn.query('INSERT INTO app.report VALUES (1)');
    await conn.query('CREATE TABLE app.feed (t INT, v FLOAT) ENGINE=MyISAM');
  }, 120_000);

  afterAll(async () => {
    await other?.end();
    await conn?.end();
    await primary?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  const running = async (pattern: string): Promise<boolean> => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE INFO LIKE ?', [pattern]);
    return Number(rows[0]?.['n']) > 0;
  };

  it('waits for a long writing statement without holding the writers (a long read does not count), then takes the base', async () => {
    const reader = await primary.connect();
    const read = reader.query('SELECT SLEEP(8) FROM app.report');
    const long = other.query('UPDATE app.report SET id = id WHERE SLEEP(6) = 0');
    await waitFor('the long statement to run for 2 s', async () => {
      const [rows] = await conn.query<RowDataPacket[]>("SELECT TIME FROM information_schema.PROCESSLIST WHERE INFO LIKE 'UPDATE app.report%'");
      return Number(rows[0]?.['TIME'] ?? 0) >= 2;
    }, 10_000);
    const { logger, lines } = captureLogger();
    const files = new LocalArchiveFiles(join(dir, 'archive'));
    const base = takeBaseBackup({ primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4300 }, files, clock: systemClock, logger });
    // (Waiting in its own way: a log line here; FLUSH TABLES WITH READ LOCK queued, before.)
    await waitFor('the base to wait for the long statement', async () => lines().some((l) => l.msg.includes('waiting for long statements')) || (await running('FLUSH TABLES WITH READ LOCK%')), 10_000);

    // A writer goes through at once: the long UPDATE is still running when its INSERT is done.
    await conn.query('INSERT INTO app.feed VALUES (1, 0.5)');
    expect(await running('UPDATE app.report%')).toBe(true);
    const waitedFor = lines().find((l) => l.msg.includes('waiting for long statements'))?.['statements'] as { info: string }[] | undefined;
    expect(waitedFor?.map((s) => s.info)).toEqual(['UPDATE app.report SET id = id WHERE SLEEP(6) = 0']);

    await long;
    await read;
    await reader.end();
    const meta = await base;
    expect((await listBaseBackups(files)).map((b) => b.id)).toEqual([meta.id]);
    expect(meta.tables.find((t) => t.name === 'feed')?.rows).toBe(1);
  }, 60_000);

  it('behind a session holding LOCK TABLES, gives up with BASE_LOCK_TIMEOUT and leaves no lock request queued', async () => {
    await other.query('LOCK TABLES app.report WRITE');
    const session = await primary.connect();
    try {
      const { logger, lines } = captureLogger();
      const attempt = acquireGlobalReadLock(session, { endpoint: 'primary', clock: systemClock, logger, waitMaxS: 5 });
      await expect(attempt).rejects.toMatchObject({ code: 'BASE_LOCK_TIMEOUT' });
      expect(lines().filter((l) => l.msg.includes('not granted in time')).length).toBeGreaterThan(0);
      // The lock was never left granted or queued: a writer of another table goes through at
      // once (behind a queued FTWRL it would wait its lock_wait_timeout and fail). The server
      // clears the statement's text from PROCESSLIST a moment after it sent the error, so that
      // view is polled briefly rather than read once.
      await conn.query('SET STATEMENT lock_wait_timeout = 2 FOR INSERT INTO app.feed VALUES (2, 1.5)');
      await waitFor('the lock request to leave the process list', async () => !(await running('FLUSH TABLES WITH READ LOCK%')), 2_000, 20);
    } finally {
      await other.query('UNLOCK TABLES');
      await session.end();
    }
  }, 60_000);
});
