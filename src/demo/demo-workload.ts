import { appendFileSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

/** Lays out the gateway's spool directory: configuration, a queue, a counter, a feed data file. */
export function createDemoSpool(root: string): void {
  mkdirSync(join(root, 'queue'), { recursive: true });
  mkdirSync(join(root, 'log'), { recursive: true });
  writeFileSync(join(root, 'server.cfg'), 'listen=0.0.0.0:2775\nsmsc=demo-smsc\n', { mode: 0o640 });
  writeFileSync(join(root, 'routing'), '+44 demo-smsc\n');
  symlinkSync('server.cfg', join(root, 'active.cfg'));
  writeFileSync(join(root, 'seqno'), '0\n');
}

/**
 * The files half of a tick: the message's queue file, the gateway's seqno counter rewritten in
 * place, an emoncms-style 9-byte record (null flag, time, float) appended to the feed's data
 * file, and the queue file of an older message removed once "sent". log/ is excluded from sync.
 */
export function demoFilesTick(root: string, tick: number): void {
  writeFileSync(join(root, 'queue', `${tick}.msg`), `to=+4479${tick % 1000}\nbody=message ${tick}\n`);
  writeFileSync(join(root, 'seqno'), `${tick}\n`);
  const record = Buffer.alloc(9);
  record.writeUInt32LE(1_795_000_000 + tick, 1);
  record.writeFloatLE(Math.sin(tick / 10) * 1000, 5);
  appendFileSync(join(root, 'feed_1.dat'), record);
  appendFileSync(join(root, 'log', 'gateway.log'), `sent ${tick}\n`);
  if (tick >= 20) rmSync(join(root, 'queue', `${tick - 20}.msg`), { force: true });
}
