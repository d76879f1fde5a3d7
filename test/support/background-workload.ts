import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';

/**
 * A continuous write workload on a sandbox primary: small transactions in a loop, with a
 * larger one and a FLUSH BINARY LOGS now and then so the stream crosses file boundaries.
 */
export class Workload {
  #running = false;
  #done: Promise<void> = Promise.resolve();
  transactions = 0;

  constructor(private readonly server: MariadbServer) {}

  async prepare(): Promise<void> {
    const conn = await this.server.connect();
    await conn.query('CREATE DATABASE IF NOT EXISTS app');
    await conn.query('CREATE TABLE IF NOT EXISTS app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(200), b MEDIUMBLOB) ENGINE=InnoDB');
    await conn.end();
  }

  start(options: { flushEvery?: number } = {}): void {
    this.#running = true;
    this.#done = (async () => {
      const conn = await this.server.connect();
      try {
        while (this.#running) {
          this.transactions += 1;
          const n = this.transactions;
          if (n % 50 === 0) await conn.query('INSERT INTO app.t (v, b) VALUES (?, ?)', [`big ${n}`, Buffer.alloc(200_000, n % 251)]);
          else await conn.query('INSERT INTO app.t (v) VALUES (?)', [`row ${n}`]);
          if (n % 20 === 0) await conn.query('UPDATE app.t SET v = CONCAT(v, "+") WHERE id % 7 = ?', [n % 7]);
          if (options.flushEvery !== undefined && n % options.flushEvery === 0) await conn.query('FLUSH BINARY LOGS');
        }
      } finally {
        await conn.end();
      }
    })();
  }

  async stop(): Promise<void> {
    this.#running = false;
    await this.#done;
  }
}
