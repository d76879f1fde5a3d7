import type { Connection, RowDataPacket } from 'mysql2/promise';
import { HotspareError } from '../../core/errors.js';
import { dumpColumn, type DumpColumn } from '../../core/sql-literal.js';

/** Schemas that belong to the server, never to the application. */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

/**
 * Engines whose tables hold no rows of their own (a MERGE table shows its underlying tables'
 * rows, FEDERATED/CONNECT/SPIDER another server's): they come with the schema, and their rows
 * are not copied (a restored MERGE table would insert them into its tables a second time).
 */
const NO_OWN_DATA_ENGINES = new Set(['mrg_myisam', 'merge', 'federated', 'federatedx', 'connect', 'spider', 'blackhole']);

/** Engines whose tables a consistent snapshot covers; everything else is copied under the lock. */
const TRANSACTIONAL_ENGINES = new Set(['innodb']);

export interface DumpTable {
  schema: string;
  name: string;
  engine: string;
  transactional: boolean;
  /** The server's estimate of the table's size (DATA_LENGTH): the biggest tables are read first. */
  bytes: number;
  /** Stored columns only: generated columns are recomputed by the server on load. */
  columns: DumpColumn[];
}

/** The application's databases and base tables (views and sequences come with the schema). */
export async function readTableInventory(conn: Connection): Promise<{ databases: string[]; tables: DumpTable[] }> {
  const excluded = SYSTEM_SCHEMAS.map((s) => conn.escape(s)).join(',');
  const [schemaRows] = await conn.query<RowDataPacket[]>(
    `SELECT SCHEMA_NAME AS name FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN (${excluded}) ORDER BY SCHEMA_NAME`,
  );
  const databases = schemaRows.map((r) => String(r['name']));
  if (databases.length === 0) return { databases, tables: [] };
  // A system-versioned table (TABLE_TYPE 'SYSTEM VERSIONED') would come with the schema and
  // without its rows, and its history needs system_versioning_insert_history to be written
  // back: refused, rather than restored empty.
  const [versioned] = await conn.query<RowDataPacket[]>(
    `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) AS t FROM information_schema.TABLES
      WHERE TABLE_SCHEMA NOT IN (${excluded}) AND TABLE_TYPE = 'SYSTEM VERSIONED' ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  if (versioned.length > 0) {
    throw new HotspareError('BASE_UNSUPPORTED', `a logical base cannot copy system-versioned tables (${versioned.map((r) => String(r['t'])).join(', ')})`, {
      hint: 'take a physical base (`hotspare base --method physical`, or base.method "physical" in the agent config), which copies them whole',
    });
  }
  const [tableRows] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, ENGINE AS e, DATA_LENGTH AS b FROM information_schema.TABLES
      WHERE TABLE_SCHEMA NOT IN (${excluded}) AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_SCHEMA, TABLE_NAME`,
  );
  const [columnRows] = await conn.query<RowDataPacket[]>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS c, DATA_TYPE AS dt, CHARACTER_SET_NAME AS cs, IS_GENERATED AS g
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA NOT IN (${excluded}) ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
  );
  const columns = new Map<string, DumpColumn[]>();
  for (const row of columnRows) {
    if (String(row['g']).toUpperCase() === 'ALWAYS') continue;
    const key = `${String(row['s'])}\0${String(row['t'])}`;
    const list = columns.get(key) ?? [];
    list.push(dumpColumn(String(row['c']), String(row['dt']), row['cs'] === null ? null : String(row['cs'])));
    columns.set(key, list);
  }
  const tables = tableRows.filter((row) => !NO_OWN_DATA_ENGINES.has(String(row['e'] ?? '').toLowerCase())).map((row): DumpTable => {
    const engine = String(row['e'] ?? '');
    return {
      schema: String(row['s']),
      name: String(row['t']),
      engine,
      transactional: TRANSACTIONAL_ENGINES.has(engine.toLowerCase()),
      bytes: Number(row['b'] ?? 0),
      columns: columns.get(`${String(row['s'])}\0${String(row['t'])}`) ?? [],
    };
  });
  return { databases, tables };
}
