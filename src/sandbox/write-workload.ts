import type { Connection } from 'mysql2/promise';

/**
 * A write workload of many kinds for tests, benchmarks and the demo: multi-statement
 * transactions with updates and deletes, DDL between them, an append-only MyISAM feed table
 * without a primary key (emoncms-like), rows with every MariaDB 10.11 column type and its edge
 * values (FLOAT 16777215 and 123.456789 among them), large BLOBs, and FLUSH BINARY LOGS.
 */
export const WORKLOAD_SCHEMA = [
  'CREATE DATABASE app',
  'CREATE DATABASE feeds',
  `CREATE TABLE app.orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(40) NOT NULL, amount DECIMAL(12,2), note TEXT) ENGINE=InnoDB`,
  `CREATE TABLE feeds.feed_1 (time INT UNSIGNED NOT NULL, data FLOAT) ENGINE=MyISAM`,
  `CREATE TABLE app.settings (name VARCHAR(40) PRIMARY KEY, value DOUBLE) ENGINE=Aria`,
  `CREATE TABLE app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, body LONGBLOB) ENGINE=InnoDB`,
  `CREATE TABLE app.types (
     id INT AUTO_INCREMENT PRIMARY KEY,
     ti TINYINT, si SMALLINT, mi MEDIUMINT, i INT, bi BIGINT, ubi BIGINT UNSIGNED,
     dec65 DECIMAL(65,30), f FLOAT, d DOUBLE, b64 BIT(64), b1 BIT(1),
     dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), y YEAR,
     c CHAR(5), vc VARCHAR(100) CHARACTER SET utf8mb4, l1 VARCHAR(20) CHARACTER SET latin1,
     bn BINARY(4), vb VARBINARY(50), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
     tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
     e ENUM('a','b','c'), st SET('x','y','z'), j JSON,
     g GEOMETRY, p POINT, ls LINESTRING, pg POLYGON, mp MULTIPOINT, mls MULTILINESTRING, mpg MULTIPOLYGON, gc GEOMETRYCOLLECTION,
     i4 INET4, i6 INET6, u UUID,
     gen BIGINT AS (i * 2) VIRTUAL, gens BIGINT AS (ti + si) STORED
   ) ENGINE=InnoDB`,
  // Text of two character sets and nothing binary: a row read as one string of the widest set
  // would turn the latin1 bytes into utf8 ones. Line breaks and a backslash inside values.
  `CREATE TABLE app.names (id INT PRIMARY KEY, l VARCHAR(20) CHARACTER SET latin1, u VARCHAR(20) CHARACTER SET utf8mb4) ENGINE=InnoDB`,
  'CREATE TRIGGER app.orders_note BEFORE INSERT ON app.orders FOR EACH ROW SET NEW.note = IFNULL(NEW.note, CONCAT(\'by \', NEW.customer))',
  'CREATE VIEW app.big_orders AS SELECT id, amount FROM app.orders WHERE amount > 100',
];

const COLUMNS =
  'ti,si,mi,i,bi,ubi,dec65,f,d,b64,b1,dt,dtm,ts,tm,y,c,vc,l1,bn,vb,tb,bl,mb,lb,tt,tx,mt,lt,e,st,j,g,p,ls,pg,mp,mls,mpg,gc,i4,i6,u';

/** Rows at the edges of every type, and one of NULLs. */
export const EDGE_ROWS = [
  `(127,32767,8388607,2147483647,9223372036854775807,18446744073709551615,
    '99999999999999999999999999999999999.999999999999999999999999999999',16777215,1.7976931348623157e308,b'1111111111111111111111111111111111111111111111111111111111111111',b'1',
    '9999-12-31','9999-12-31 23:59:59.999999','2038-01-19 03:14:07.999999','838:59:59.000000',2155,
    'é',_utf8mb4 X'F09F9880',_latin1 X'E9FF',X'00FF00FF',X'FF00',X'00',REPEAT(X'AB',1000),REPEAT(X'CD',70000),REPEAT(X'EF',300000),
    'tiny','text',REPEAT('m',70000),REPEAT('l',200000),'c','x,y,z','{"k":[1,2.5,"x",null,true]}',
    ST_GeomFromText('POINT(1 2)'),POINT(1.5,-2.25),ST_GeomFromText('LINESTRING(0 0,1 1,2 2)'),ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0))'),
    ST_GeomFromText('MULTIPOINT(0 0,1 1)'),ST_GeomFromText('MULTILINESTRING((0 0,1 1),(2 2,3 3))'),ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))'),
    ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))'),'255.255.255.255','ffff::1','123e4567-e89b-12d3-a456-426614174000')`,
  `(-128,-32768,-8388608,-2147483648,-9223372036854775808,0,
    '-99999999999999999999999999999999999.999999999999999999999999999999',123.456789,-2.2250738585072014e-308,b'0',b'0',
    '1000-01-01','0000-00-00 00:00:00','1970-01-01 00:00:01','-838:59:59.000000',0,
    '','',_latin1 X'',X'',X'',X'',X'',X'',X'','','','','','a','','[]',
    ST_GeomFromText('POINT(0 0)'),POINT(0,0),ST_GeomFromText('LINESTRING(0 0,0 1)'),ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'),
    ST_GeomFromText('MULTIPOINT(0 0)'),ST_GeomFromText('MULTILINESTRING((0 0,1 1))'),ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)))'),
    ST_GeomFromText('GEOMETRYCOLLECTION(POINT(0 0))'),'0.0.0.0','::','00000000-0000-0000-0000-000000000000')`,
  `(${COLUMNS.split(',').map(() => 'NULL').join(',')})`,
];

export async function createWorkloadSchema(conn: Connection): Promise<void> {
  await conn.query("SET time_zone = '+00:00'");
  for (const sql of WORKLOAD_SCHEMA) await conn.query(sql);
  await conn.query(`INSERT INTO app.types (${COLUMNS}) VALUES ${EDGE_ROWS.join(',')}`);
  await conn.query("INSERT INTO app.names VALUES (1, _latin1 X'E9FF', _utf8mb4 X'C3A9F09F9880'), (2, 'a\\nb\\\\c', 'line\\r\\nbreak')");
}

/** A float that FLOAT stores exactly only with all of its bits (a 6-digit dump loses it). */
function awkwardFloat(n: number): string {
  return (n % 7 === 0 ? 16777215 - n : 123.456789 * (n % 1000) + n / 7).toPrecision(17);
}

/**
 * Runs one step of the workload (step number `n` decides which kind). Each step is one or a
 * few transactions; every 60th is DDL, every 97th a FLUSH BINARY LOGS, every 41st a large BLOB.
 */
export async function workloadStep(conn: Connection, n: number, options: { blobBytes: number }): Promise<void> {
  if (n % 97 === 96) {
    await conn.query('FLUSH BINARY LOGS');
    return;
  }
  if (n % 60 === 59) {
    await conn.query(`ALTER TABLE app.orders ADD COLUMN c${n} INT DEFAULT ${n}`);
    await conn.query(`CREATE TABLE app.t${n} (k INT PRIMARY KEY, v FLOAT) ENGINE=InnoDB`);
    await conn.query(`INSERT INTO app.t${n} VALUES (1, ${awkwardFloat(n)}), (2, NULL)`);
    return;
  }
  if (n % 41 === 40) {
    await conn.query('INSERT INTO app.blobs (body) VALUES (RANDOM_BYTES(1024) ), (REPEAT(?, 1))', [Buffer.alloc(options.blobBytes, n % 256)]);
    return;
  }
  switch (n % 5) {
    case 0: {
      await conn.query('START TRANSACTION');
      await conn.query('INSERT INTO app.orders (customer, amount) VALUES (?, ?), (?, ?), (?, ?)', [`c${n}`, n % 500, `d${n}`, (n * 3.07) % 999, `e${n}`, 0.01]);
      await conn.query('UPDATE app.orders SET amount = amount + 1.5 WHERE id % 7 = ?', [n % 7]);
      await conn.query('DELETE FROM app.orders WHERE id % 11 = ? AND id < ?', [n % 11, n]);
      await conn.query('COMMIT');
      return;
    }
    case 1:
    case 2:
      await conn.query(`INSERT INTO feeds.feed_1 VALUES (?, ${awkwardFloat(n)}), (?, NULL)`, [1_700_000_000 + n * 10, 1_700_000_000 + n * 10 + 5]);
      return;
    case 3:
      await conn.query(`UPDATE feeds.feed_1 SET data = data + 0.5 WHERE time = ?`, [1_700_000_000 + (n - 2) * 10]);
      await conn.query(`REPLACE INTO app.settings VALUES (?, ?)`, [`s${n % 13}`, n / 3]);
      return;
    case 4:
      await conn.query(
        `INSERT INTO app.types (ti, i, bi, f, d, dtm, ts, vc, vb, e, st, j, u) VALUES (?, ?, ?, ${awkwardFloat(n)}, ${(n / 3).toPrecision(17)}, NOW(6), NOW(6), ?, RANDOM_BYTES(16), 'b', 'x,z', JSON_OBJECT('n', ?), UUID())`,
        [n % 127, n, -n * 1_000_000_007, `row ${n} ü`, n],
      );
      await conn.query('DELETE FROM app.types WHERE id > 3 AND id % 9 = ?', [n % 9]);
      return;
  }
}

/** Runs workload steps until stopped; `pause()` resolves once no step is running. */
export class WorkloadRunner {
  #step = 0;
  #stopped = false;
  #paused = false;
  #running: Promise<void> | undefined;
  #idle: (() => void) | undefined;
  failure: unknown;

  constructor(
    private readonly conn: Connection,
    private readonly options: { blobBytes: number; firstStep?: number },
  ) {
    this.#step = options.firstStep ?? 0;
  }

  get steps(): number {
    return this.#step;
  }

  start(): void {
    this.#running = this.#loop();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped) {
      if (this.#paused) {
        this.#idle?.();
        await new Promise((r) => setTimeout(r, 10));
        continue;
      }
      try {
        await workloadStep(this.conn, this.#step, this.options);
      } catch (err) {
        this.failure = err;
        this.#stopped = true;
        this.#idle?.();
        return;
      }
      this.#step += 1;
    }
  }

  pause(): Promise<void> {
    this.#paused = true;
    return new Promise((resolve) => {
      this.#idle = () => {
        this.#idle = undefined;
        resolve();
      };
    });
  }

  resume(): void {
    this.#paused = false;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#running;
    if (this.failure !== undefined) throw this.failure;
  }
}
