import type { Connection } from 'mysql2/promise';

/** A deterministic pseudo-random source, so a failing workload can be replayed from its seed. */
export function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Creates the schema of the mixed workload: InnoDB with keys, MyISAM feed without a key, blobs. */
export async function createMixedSchema(conn: Connection): Promise<void> {
  await conn.query('CREATE DATABASE IF NOT EXISTS app');
  await conn.query(
    'CREATE TABLE IF NOT EXISTS app.accounts (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64), balance DECIMAL(14,2), updated DATETIME(6)) ENGINE=InnoDB',
  );
  await conn.query('CREATE TABLE IF NOT EXISTS app.feed (t INT UNSIGNED, v FLOAT) ENGINE=MyISAM');
  await conn.query('CREATE TABLE IF NOT EXISTS app.blobs (id INT PRIMARY KEY, data LONGBLOB) ENGINE=InnoDB');
}

/**
 * One step of a mixed workload: multi-statement transactions, updates, deletes, MyISAM
 * appends, an occasional large row, DDL, and binlog rotation. `step` makes each call differ.
 */
export async function mixedWorkloadStep(conn: Connection, step: number, random: () => number): Promise<void> {
  await conn.query('BEGIN');
  for (let i = 0; i < 5; i += 1) {
    await conn.query('INSERT INTO app.accounts (name, balance, updated) VALUES (?, ?, NOW(6))', [`n${step}-${i}`, (random() * 1e6).toFixed(2)]);
  }
  await conn.query('UPDATE app.accounts SET balance = balance + 1 WHERE id % 7 = ?', [step % 7]);
  await conn.query('COMMIT');
  await conn.query('INSERT INTO app.feed VALUES (?, ?), (?, ?)', [step, random() * 1000, step, 16777215]);
  if (step % 5 === 0) await conn.query('DELETE FROM app.accounts WHERE id % 11 = ?', [step % 11]);
  if (step % 17 === 0) await conn.query('REPLACE INTO app.blobs VALUES (?, ?)', [step % 3, Buffer.alloc(300_000 + step, step % 256)]);
  if (step % 23 === 0) await conn.query(`CREATE TABLE IF NOT EXISTS app.t${step} (a INT) ENGINE=InnoDB`);
  if (step % 29 === 0) await conn.query('FLUSH BINARY LOGS');
}
