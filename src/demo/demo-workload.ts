import type { Connection } from 'mysql2/promise';

/**
 * The demo's application: an emoncms-style feed (MyISAM, no primary key, FLOAT values written
 * every few milliseconds) and a gateway's message table (InnoDB, transactions).
 */
export async function createDemoSchema(conn: Connection): Promise<void> {
  await conn.query('CREATE DATABASE IF NOT EXISTS emoncms');
  await conn.query('CREATE TABLE IF NOT EXISTS emoncms.feed_1 (time INT UNSIGNED, data FLOAT) ENGINE=MyISAM');
  await conn.query('CREATE DATABASE IF NOT EXISTS gateway');
  await conn.query(
    'CREATE TABLE IF NOT EXISTS gateway.messages (id BIGINT PRIMARY KEY AUTO_INCREMENT, recipient VARCHAR(32), body TEXT, state ENUM("queued","sent") NOT NULL, created DATETIME(6)) ENGINE=InnoDB',
  );
}

/** One tick of writes: a feed sample, and a message queued then marked sent. */
export async function demoTick(conn: Connection, tick: number): Promise<void> {
  await conn.query('INSERT INTO emoncms.feed_1 VALUES (?, ?)', [1_795_000_000 + tick, Math.sin(tick / 10) * 1000 + 0.123456789]);
  await conn.query('BEGIN');
  await conn.query('INSERT INTO gateway.messages (recipient, body, state, created) VALUES (?, ?, "queued", NOW(6))', [`+4479${tick % 1000}`, `message ${tick}`]);
  await conn.query('UPDATE gateway.messages SET state = "sent" WHERE id % 3 = ?', [tick % 3]);
  await conn.query('COMMIT');
}
