import type { Connection, RowDataPacket } from 'mysql2/promise';
import { createWorkloadSchema, workloadStep } from '../../src/sandbox/write-workload.js';

/** MyISAM feed tables (emoncms-like: time, FLOAT value, no primary key). */
const FEED_TABLES = 6;

export interface BaseData {
  tables: number;
  rows: number;
  /** DATA_LENGTH + INDEX_LENGTH over the application's tables. */
  bytes: number;
}

/**
 * Fills a sandbox primary with data for the base-backup benchmark: the workload schema (every
 * column type at its edges, a trigger, a view, MyISAM and Aria tables), MyISAM feed tables of
 * FLOAT values with all their bits used (a six-digit text dump changes them), an InnoDB table
 * of readings with a secondary index, and an InnoDB table of incompressible blobs. `scale` 1 is
 * about 300 MB. Rows are generated on the server (the sequence engine), so building is quick.
 */
export async function buildBaseData(conn: Connection, scale: number): Promise<BaseData> {
  await createWorkloadSchema(conn);
  for (let n = 0; n < 120; n += 1) await workloadStep(conn, n, { blobBytes: 256 * 1024 });
  const feedRows = Math.round(2_000_000 * scale);
  for (let f = 2; f < 2 + FEED_TABLES; f += 1) {
    await conn.query(`CREATE TABLE feeds.feed_${f} (time INT UNSIGNED NOT NULL, data FLOAT) ENGINE=MyISAM`);
    // RAND() * 1e5 as FLOAT uses all 24 bits of the mantissa; some NULLs like a real feed's gaps.
    await conn.query(
      `INSERT INTO feeds.feed_${f} SELECT 1600000000 + seq * 10, IF(seq % 97 = 0, NULL, RAND(${f}) * 100000 - 20000) FROM app.seq_1_to_${feedRows}`,
    );
  }
  await conn.query(`CREATE TABLE app.readings (
      id BIGINT AUTO_INCREMENT PRIMARY KEY, feed INT NOT NULL, time INT UNSIGNED NOT NULL, value FLOAT, exact DOUBLE,
      label VARCHAR(64) CHARACTER SET utf8mb4, created DATETIME(3) NOT NULL, KEY by_feed_time (feed, time)) ENGINE=InnoDB`);
  const readingRows = Math.round(1_500_000 * scale);
  await conn.query(
    `INSERT INTO app.readings (feed, time, value, exact, label, created)
       SELECT seq % 50, 1600000000 + seq, RAND(7) * 5000, RAND(8) * 1e9, CONCAT('sensor ', seq % 977, ' ü ', MD5(seq)), FROM_UNIXTIME(1600000000 + seq / 3)
         FROM app.seq_1_to_${readingRows}`,
  );
  await conn.query('CREATE TABLE app.documents (id INT AUTO_INCREMENT PRIMARY KEY, title VARCHAR(200), body MEDIUMBLOB) ENGINE=InnoDB');
  const documents = Math.round(1_500 * scale);
  await conn.query(`INSERT INTO app.documents (title, body) SELECT CONCAT('doc ', seq), RANDOM_BYTES(1024) FROM app.seq_1_to_${documents}`);
  // RANDOM_BYTES is limited to 1 KB; 32 of them make a 32 KB incompressible body.
  await conn.query(`UPDATE app.documents SET body = CONCAT(${Array.from({ length: 32 }, () => 'RANDOM_BYTES(1024)').join(',')})`);
  await conn.query('ANALYZE TABLE app.readings, app.documents, app.orders, app.types, app.blobs');
  const [rows] = await conn.query<RowDataPacket[]>(
    `SELECT COUNT(*) AS n, SUM(TABLE_ROWS) AS r, SUM(DATA_LENGTH + INDEX_LENGTH) AS b FROM information_schema.TABLES
      WHERE TABLE_SCHEMA IN ('app', 'feeds') AND TABLE_TYPE = 'BASE TABLE'`,
  );
  return { tables: Number(rows[0]?.['n']), rows: Number(rows[0]?.['r']), bytes: Number(rows[0]?.['b']) };
}

/**
 * Writes after the base (what promotion replays): row updates across the readings, appended
 * feed rows, deletes, and a multi-statement transaction per round, about `bytes` of binlog.
 */
export async function writeAfterBase(conn: Connection, bytes: number): Promise<void> {
  const startBytes = await binlogBytes(conn);
  for (let round = 0; ; round += 1) {
    if ((await binlogBytes(conn)) - startBytes >= bytes) return;
    await conn.query(`UPDATE app.readings SET value = value * 1.000001 + ${round}, label = CONCAT('r', ${round}, ' ', id) WHERE id % 20 = ${round % 20}`);
    await conn.query(`INSERT INTO feeds.feed_2 SELECT 1700000000 + ${round} * 100000 + seq, RAND() * 1000 FROM app.seq_1_to_20000`);
    // Deletes only where there is a key: row-based replay of a delete on a table without one scans it per row.
    await conn.query(`DELETE FROM app.readings WHERE id % 400 = ${round % 400}`);
    await conn.query('START TRANSACTION');
    await conn.query(`INSERT INTO app.orders (customer, amount) SELECT CONCAT('bench ', seq), seq % 1000 FROM app.seq_1_to_2000`);
    await conn.query(`UPDATE app.orders SET amount = amount + 1 WHERE id % 3 = ${round % 3}`);
    await conn.query('COMMIT');
  }
}

async function binlogBytes(conn: Connection): Promise<number> {
  const [rows] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
  return rows.reduce((n, r) => n + Number(r['File_size']), 0);
}

/**
 * Has InnoDB write its dirty pages until its checkpoint is within `maxAgeBytes` of the redo
 * log's end. A physical backup then copies little redo, and its prepare has little to apply:
 * two backups taken one after the other (ours and mariabackup's) each start settled, instead
 * of the first one carrying the redo of everything written before it.
 */
export async function settleCheckpoint(conn: Connection, maxAgeBytes = 1024 * 1024, timeoutMs = 60_000): Promise<void> {
  const [[was]] = (await conn.query('SELECT @@global.innodb_max_dirty_pages_pct AS p, @@global.innodb_max_dirty_pages_pct_lwm AS l')) as [RowDataPacket[], unknown];
  await conn.query('SET GLOBAL innodb_max_dirty_pages_pct_lwm = 0, innodb_max_dirty_pages_pct = 0');
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [rows] = await conn.query<RowDataPacket[]>("SHOW GLOBAL STATUS LIKE 'Innodb_checkpoint_age'");
      if (Number(rows[0]?.['Value']) <= maxAgeBytes) return;
      if (Date.now() > deadline) throw new Error(`InnoDB's checkpoint age stayed above ${maxAgeBytes} bytes for ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await conn.query(`SET GLOBAL innodb_max_dirty_pages_pct = ${Number(was?.['p'])}, innodb_max_dirty_pages_pct_lwm = ${Number(was?.['l'])}`);
  }
}
