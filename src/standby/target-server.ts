import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import { HotspareError } from '../core/errors.js';
import type { ClientCredentials } from '../platform/client-defaults-file.js';

/**
 * The server a standby is promoted into, over one mysql2 connection: who it is, which
 * databases it holds, and the few changes promotion makes besides restore and replay.
 */
export class TargetServer {
  private constructor(
    private readonly conn: Connection,
    readonly describe: string,
  ) {}

  static async connect(credentials: ClientCredentials, describe: string): Promise<TargetServer> {
    try {
      const conn = await createConnection({
        ...(credentials.socketPath !== undefined ? { socketPath: credentials.socketPath } : { host: credentials.host, port: credentials.port }),
        user: credentials.user,
        password: credentials.password,
        connectTimeout: 10_000,
      });
      return new TargetServer(conn, describe);
    } catch (err) {
      const e = err as { code?: string; message?: string };
      throw new HotspareError('TARGET_UNREACHABLE', `cannot connect to the target ${describe}: ${e.code ?? e.message ?? String(err)}`, {
        cause: err,
        hint: 'check that the standby server runs and that --target names its user, password, host and port (or socket)',
      });
    }
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => undefined);
  }

  async #query(sql: string): Promise<RowDataPacket[]> {
    try {
      const [rows] = await this.conn.query<RowDataPacket[]>(sql);
      return Array.isArray(rows) ? rows : [];
    } catch (err) {
      throw new HotspareError('TARGET_ERROR', `the target ${this.describe} refused ${sql.slice(0, 60)}: ${(err as Error).message}`, {
        cause: err,
        hint: 'the promotion user needs ALL PRIVILEGES on the standby (it creates databases and replays binlog)',
      });
    }
  }

  /** The target's identity in the archive's terms, to refuse promoting into the primary itself. */
  async identity(): Promise<PrimaryIdentity> {
    const [row] = await this.#query('SELECT @@server_id AS id, @@version AS v, @@hostname AS h, @@log_bin_basename AS b');
    const version = String(row?.['v'] ?? '');
    const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
    let serverUuid: string | null = null;
    if (flavor === 'mysql') serverUuid = String((await this.#query('SELECT @@server_uuid AS u'))[0]?.['u'] ?? '') || null;
    return {
      serverId: Number(row?.['id']),
      serverUuid,
      flavor,
      version,
      hostname: String(row?.['h'] ?? ''),
      binlogBasename: row?.['b'] === null || row?.['b'] === undefined ? '' : String(row['b']),
    };
  }

  async databases(): Promise<string[]> {
    return (await this.#query('SHOW DATABASES')).map((r) => String(Object.values(r)[0]));
  }

  async dropDatabase(name: string): Promise<void> {
    await this.#query(`DROP DATABASE \`${name.replaceAll('`', '``')}\``);
  }

  /** Where the target keeps its files, to check a physical restore's --target-datadir. */
  async serverFiles(): Promise<{ datadir: string; hostname: string; pidFile: string }> {
    const [row] = await this.#query('SELECT @@datadir AS d, @@hostname AS h, @@pid_file AS p');
    return { datadir: String(row?.['d'] ?? ''), hostname: String(row?.['h'] ?? ''), pidFile: String(row?.['p'] ?? '') };
  }

  /** SHUTDOWN: the server stops (the caller waits for its process); this connection ends with it. */
  async shutdown(): Promise<void> {
    await this.#query('SHUTDOWN');
    await this.close();
  }

  async setReadOnly(on: boolean): Promise<void> {
    await this.#query(`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`);
  }
}
