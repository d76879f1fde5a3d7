import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { PrimaryConnection } from '../../config/load.js';
import { fromMysqlError } from '../mysql-error.js';
import { mysqlOptions } from '../mysql-options.js';

/** Opens a session on the primary for a base backup (or its checks); errors carry the endpoint. */
export async function connectForBase(primary: PrimaryConnection, what: string, endpoint: string): Promise<Connection> {
  try {
    return await createConnection(mysqlOptions(primary));
  } catch (err) {
    throw fromMysqlError(err, what, endpoint);
  }
}

/** One query's rows; a server error becomes the HotspareError of its errno, naming the statement. */
export async function queryRows(conn: Connection, sql: string, endpoint: string): Promise<RowDataPacket[]> {
  try {
    const [rows] = await conn.query<RowDataPacket[]>(sql);
    return Array.isArray(rows) ? rows : [];
  } catch (err) {
    throw fromMysqlError(err, sql.split(' ').slice(0, 4).join(' '), endpoint);
  }
}

/**
 * The global privileges in `wanted` the session's user does not hold, read from SHOW GRANTS
 * (ALL PRIVILEGES holds them all). BINLOG MONITOR is also held under its older name
 * REPLICATION CLIENT, and through SUPER.
 */
export async function missingGlobalPrivileges(conn: Connection, wanted: readonly string[]): Promise<string[]> {
  const [rows] = await conn.query<RowDataPacket[]>('SHOW GRANTS');
  const global = rows
    .map((r) => String(Object.values(r)[0]).toUpperCase())
    .filter((g) => / ON \*\.\* /.test(g))
    .join('\n');
  if (/ALL PRIVILEGES/.test(global)) return [];
  const has = (p: string): boolean => new RegExp(`\\b${p}\\b`).test(global) || (p === 'BINLOG MONITOR' && /\b(REPLICATION CLIENT|SUPER)\b/.test(global));
  return wanted.filter((p) => !has(p));
}
