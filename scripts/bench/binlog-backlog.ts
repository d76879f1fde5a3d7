import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';

/**
 * Fills a sandbox primary with at least `bytes` of binlog: 1 KB rows doubled with
 * INSERT ... SELECT (each doubling is one large transaction), over several files.
 */
export async function buildBinlogBacklog(primary: MariadbServer, bytes: number): Promise<{ files: number; totalBytes: number }> {
  const conn = await primary.connect();
  try {
    await conn.query('CREATE DATABASE IF NOT EXISTS bench');
    await conn.query('CREATE TABLE IF NOT EXISTS bench.rows (id INT PRIMARY KEY AUTO_INCREMENT, pad VARCHAR(1000), n DOUBLE) ENGINE=InnoDB');
    await conn.query("INSERT INTO bench.rows (pad, n) SELECT REPEAT(MD5(seq), 31), seq FROM bench.seq_1_to_1000");
    for (;;) {
      const [rows] = await conn.query('SHOW BINARY LOGS');
      const list = rows as { File_size: string | number }[];
      const total = list.reduce((n, r) => n + Number(r.File_size), 0);
      if (total >= bytes) return { files: list.length, totalBytes: total };
      await conn.query('INSERT INTO bench.rows (pad, n) SELECT pad, n * 2 FROM bench.rows LIMIT 65536');
      await conn.query('FLUSH BINARY LOGS');
    }
  } finally {
    await conn.end();
  }
}

/** Total size of the primary's binlog files now. */
export async function binlogTotalBytes(primary: MariadbServer): Promise<number> {
  const conn = await primary.connect();
  try {
    const [rows] = await conn.query('SHOW BINARY LOGS');
    return (rows as { File_size: string | number }[]).reduce((n, r) => n + Number(r.File_size), 0);
  } finally {
    await conn.end();
  }
}
