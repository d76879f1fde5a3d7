import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { PrimaryConnection } from '../../config/load.js';
import { HotspareError } from '../../core/errors.js';
import { fromMysqlError } from '../mysql-error.js';
import { mysqlOptions } from '../mysql-options.js';
import { DEFAULT_BASE_KILL_CONNECT_TIMEOUT_MS } from '../../config/defaults.js';

/** Opens a session on the primary for a base backup (or its checks); errors carry the endpoint. */
export async function connectForBase(primary: PrimaryConnection, what: string, endpoint: string): Promise<Connection> {
  try {
    const conn = await createConnection(mysqlOptions(primary));
    // A connection lost while no query is in flight (the primary restarting while the rows are
    // read elsewhere, endBaseSession) is an 'error' event; without a listener it would end the
    // process. The backup's next query on it fails, and that is where the failure is reported.
    conn.on('error', () => undefined);
    return conn;
  } catch (err) {
    throw fromMysqlError(err, what, endpoint);
  }
}

/**
 * Ends a base backup's session on the primary now: KILL from a second session, so that a
 * statement it waits in (FLUSH TABLES WITH READ LOCK queued behind a long query) ends on the
 * server at once instead of being granted later to a client that is gone, then the socket is
 * closed. The KILL is best effort: the socket closes whatever it answers.
 */
export async function endBaseSession(primary: PrimaryConnection, conn: Connection): Promise<void> {
  try {
    const killer = await createConnection({ ...mysqlOptions(primary), connectTimeout: DEFAULT_BASE_KILL_CONNECT_TIMEOUT_MS });
    await killer.query(`KILL ${Number(conn.threadId)}`).catch(() => undefined);
    await killer.end().catch(() => undefined);
  } catch {
    // the primary is unreachable: closing the socket is all there is to do
  } finally {
    socketOf(conn)?.destroy();
  }
}

/**
 * The socket under a mysql2 connection. mysql2's own destroy() marks the connection as closing
 * and then never settles the query in flight (a FLUSH TABLES WITH READ LOCK that waits would
 * hold its caller forever); a socket closed underneath makes mysql2 fail that query
 * (PROTOCOL_CONNECTION_LOST) and every later one.
 */
function socketOf(conn: Connection): { destroy(): void } | undefined {
  return (conn as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
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

/**
 * What a base backup stopped by its AbortSignal (the agent stopping, `hotspare base` interrupted)
 * fails with; a cause that already is that error is returned as it is.
 */
export function baseAbortedError(cause?: unknown): HotspareError {
  if (cause instanceof HotspareError && cause.code === 'BASE_ABORTED') return cause;
  return new HotspareError('BASE_ABORTED', 'the base backup was abandoned: asked to stop (the agent stopping, or SIGTERM/SIGINT) before it completed', {
    ...(cause === undefined ? {} : { cause }),
    hint: 'nothing partial was kept; the next `hotspare base` (or an agent start on an archive without a base) takes one again',
  });
}

/** Whether `signal` has aborted (a call, so a check made earlier does not narrow a later one). */
export function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}
