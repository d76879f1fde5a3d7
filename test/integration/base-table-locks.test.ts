import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { systemClock } from '../../src/platform/clock.js';
import { takeBaseBackup } from '../../src/primary/base/take-base-backup.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { captureLogger } from '../support/capture-logger.js';
import { waitFor } from '../support/wait.js';

const FEED_ROWS = 1_500_000;

/**
 * Goal: a logical base holds the primary's global read lock only for the schema, not for the
 * copy of its MyISAM tables. Copied under the global lock, an emoncms primary's feeds stopped
 * every write, InnoDB ones included, for as long as the copy took (12 s on the benchmark's 12 M
 * feed rows). Now the MyISAM tables are locked for read by a session of their own before the
 * global lock goes: writes to them wait for their copy, every other write goes on.
 * Method: a real primary with a 1.5 M-row MyISAM feed and an InnoDB table; during the feed's copy
 * an InnoDB INSERT must complete, and a feed INSERT must wait until the feed's locks are released.
 * Neither is in the base (both came after its coordinates).
 */
describe('the non-transactional tables of a logical base', () => {
  let dir: string;
  let primary: MariadbServer;
  let conn: Connection;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-tablelocks-'));
    primary = await MariadbServer.start({ serverId: 72, binlog: true, baseDir: join(dir, 'primary') });
    conn = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.orders (id INT PRIMARY KEY, note VARCHAR(20)) ENGINE=InnoDB');
    await conn.query("INSERT INTO app.orders VALUES (1, 'first')");
    await conn.query('CREATE DATABASE feeds');
    await conn.query('CREATE TABLE feeds.feed_1 (time INT UNSIGNED NOT NULL, data FLOAT) ENGINE=MyISAM');
    await conn.query(`INSERT INTO feeds.feed_1 SELECT seq, seq * 0.25 FROM feeds.seq_1_to_${FEED_ROWS}`);
    await conn.query('CREATE TABLE feeds.feed_2 LIKE feeds.feed_1');
    await conn.query('INSERT INTO feeds.feed_2 SELECT * FROM feeds.feed_1');
    // Small: read last, once one of the two streams is done with its big feed.
    await conn.query('CREATE TABLE feeds.feed_small LIKE feeds.feed_1');
    await conn.query('INSERT INTO feeds.feed_small VALUES (1, 0.5)');
  }, 120_000);

  /** The PROCESSLIST state of the statement that matches `pattern` ('' when none runs). */
  const stateOf = async (pattern: string): Promise<string> => {
    const [rows] = await conn.query<RowDataPacket[]>('SELECT STATE FROM information_schema.PROCESSLIST WHERE INFO LIKE ?', [pattern]);
    return String(rows[0]?.['STATE'] ?? '');
  };

  const primaryOf = (): { socketPath: string; user: string; password: string; serverId: number } => ({ socketPath: primary.socketPath, user: 'root', password: '', serverId: 4301 });

  afterAll(async () => {
    await conn?.end();
    await primary?.destroy();
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('lets InnoDB writers go on while the MyISAM feed is copied, and holds back only the feed\'s writers', async () => {
    const { logger, lines } = captureLogger();
    const files = new LocalArchiveFiles(join(dir, 'archive'));
    const base = takeBaseBackup({ primary: primaryOf(), files, clock: systemClock, logger });
    const said = (text: string): boolean => lines().some((l) => l.msg.includes(text));
    await waitFor('the global read lock to be released', async () => said('global read lock released'), 30_000);
    expect(said('their read locks released')).toBe(false);

    // The feed's copy is still under way: an InnoDB write goes through now...
    const feedWriter = await primary.connect();
    const feedInsert = feedWriter.query('INSERT INTO feeds.feed_1 VALUES (4000000000, 1.5)');
    await conn.query("INSERT INTO app.orders VALUES (2, 'during')");
    expect(said('their read locks released')).toBe(false);
    // ...while the feed's own writer waits for the feed's locks (it is seen waiting on them).
    await waitFor('the feed\'s INSERT to wait on its table lock', async () => /table level lock|metadata lock/i.test(await stateOf('INSERT INTO feeds.feed_1%')), 10_000);
    await feedInsert;
    await feedWriter.end();

    const meta = await base;
    expect(meta.lockHeldMs).toBeLessThan(meta.tableLockHeldMs ?? 0);
    // The feed's INSERT waited for the feed's copy: it is not in the base (nor the InnoDB one, after the coordinates).
    expect(meta.tables.find((t) => t.name === 'feed_1')).toMatchObject({ rows: FEED_ROWS, consistency: 'locked' });
    expect(meta.tables.find((t) => t.name === 'orders')).toMatchObject({ rows: 1, consistency: 'snapshot' });
  }, 120_000);

  it('a DDL statement on a feed not yet read waits for the base instead of stopping it (every table is held open from under the global lock)', async () => {
    const { logger, lines } = captureLogger();
    const files = new LocalArchiveFiles(join(dir, 'archive-ddl'));
    const base = takeBaseBackup({ primary: primaryOf(), files, clock: systemClock, logger });
    await waitFor('the global read lock to be released', async () => lines().some((l) => l.msg.includes('global read lock released')), 30_000);
    // Queued behind the base's locks on feed_small: had a stream opened feed_small only now, it
    // would have waited behind this ALTER, and the ALTER behind the base, for a day.
    const ddl = await primary.connect();
    const altered = ddl.query('ALTER TABLE feeds.feed_small ADD COLUMN note INT');
    // The case at hand: the ALTER queued on a feed before the base has read it.
    await waitFor('the ALTER to wait behind the base', async () => /metadata lock/i.test(await stateOf('ALTER TABLE feeds.feed_small%')), 10_000);
    expect(lines().some((l) => l.msg.includes('their read locks released'))).toBe(false);
    const meta = await base;
    await altered;
    await ddl.end();
    expect(meta.tables.find((t) => t.name === 'feed_small')).toMatchObject({ rows: 1 });
    const [columns] = await conn.query<RowDataPacket[]>("SELECT COUNT(*) AS n FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = 'feeds' AND TABLE_NAME = 'feed_small'");
    expect(Number(columns[0]?.['n'])).toBe(3);
  }, 120_000);

  it('the session holding the feeds\' locks killed during their copy: BASE_TABLE_LOCK_LOST, and no base is kept', async () => {
    const { logger, lines } = captureLogger();
    const files = new LocalArchiveFiles(join(dir, 'archive-killed'));
    const base = takeBaseBackup({ primary: primaryOf(), files, clock: systemClock, logger });
    base.catch(() => undefined);
    await waitFor('the global read lock to be released', async () => lines().some((l) => l.msg.includes('global read lock released')), 30_000);
    const session = lines().find((l) => l.msg.includes('locked, snapshot taken'))?.['tableLockSession'];
    expect(typeof session).toBe('number');
    await conn.query(`KILL ${Number(session)}`);
    await expect(base).rejects.toMatchObject({ code: 'BASE_TABLE_LOCK_LOST' });
    expect(await files.list('base')).toEqual([]);
  }, 120_000);
});
