import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import type { PrimaryConnection } from '../config/load.js';
import { HotspareError } from '../core/errors.js';
import { fromMysqlError } from './mysql-error.js';
import { describeEndpoint, mysqlOptions } from './mysql-options.js';

export interface BinlogFileInfo {
  name: string;
  sizeBytes: number;
}

/**
 * Cheap questions to the primary over one ordinary connection: preflight, identity, the
 * binlog files it still has, and its head position. Only this folder speaks to MySQL.
 */
export class MysqlProbe {
  private constructor(
    private readonly conn: Connection,
    private readonly endpoint: string,
  ) {}

  static async connect(primary: PrimaryConnection): Promise<MysqlProbe> {
    const endpoint = describeEndpoint(primary);
    try {
      return new MysqlProbe(await createConnection(mysqlOptions(primary)), endpoint);
    } catch (err) {
      throw fromMysqlError(err, 'connect', endpoint);
    }
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => undefined);
  }

  async #query<T extends RowDataPacket>(sql: string, what: string): Promise<T[]> {
    try {
      const [rows] = await this.conn.query<T[]>(sql);
      return rows;
    } catch (err) {
      throw fromMysqlError(err, what, this.endpoint);
    }
  }

  /**
   * Checks what streaming needs from the primary and returns its identity. Each failure is
   * a HotspareError whose hint says how to fix the server.
   */
  async preflight(agentServerIds: readonly number[]): Promise<PrimaryIdentity> {
    const [vars] = await this.#query<RowDataPacket>(
      'SELECT @@log_bin AS logBin, @@binlog_format AS format, @@binlog_checksum AS checksum, @@server_id AS serverId, ' +
        '@@version AS version, @@hostname AS hostname, @@log_bin_basename AS basename',
      'preflight',
    );
    if (vars === undefined) throw new Error('preflight returned no row');
    if (Number(vars['logBin']) !== 1) {
      throw new HotspareError('BINLOG_DISABLED', 'the primary does not write a binlog (log_bin is OFF)', {
        hint: "add log_bin=mysql-bin and binlog_format=ROW to the server's config and restart it",
      });
    }
    if (String(vars['format']).toUpperCase() !== 'ROW') {
      throw new HotspareError('BINLOG_FORMAT', `binlog_format is ${String(vars['format'])}`, {
        hint: "SET GLOBAL binlog_format=ROW and add binlog_format=ROW to the server's config",
      });
    }
    if (String(vars['checksum']).toUpperCase() !== 'CRC32') {
      throw new HotspareError('BINLOG_CHECKSUM', `binlog_checksum is ${String(vars['checksum'])}; hotspare verifies every event's CRC32`, {
        hint: "SET GLOBAL binlog_checksum=CRC32 and add binlog_checksum=CRC32 to the server's config",
      });
    }
    const serverId = Number(vars['serverId']);
    if (serverId === 0) {
      throw new HotspareError('SERVER_ID', 'the primary has server_id 0, which cannot serve replicas', {
        hint: "set server_id to a unique non-zero value in the server's config",
      });
    }
    if (agentServerIds.includes(serverId)) {
      throw new HotspareError('SERVER_ID', `the agent's serverId ${serverId} equals the primary's server_id`, {
        hint: 'choose primary.serverId (and any replica serverId) different from every server in the topology',
      });
    }
    await this.#checkGrants();
    const version = String(vars['version']);
    let serverUuid: string | null = null;
    const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
    if (flavor === 'mysql') {
      const [row] = await this.#query<RowDataPacket>('SELECT @@server_uuid AS uuid', 'preflight');
      serverUuid = row === undefined ? null : String(row['uuid']);
    }
    return {
      serverId,
      serverUuid,
      flavor,
      version,
      hostname: String(vars['hostname']),
      binlogBasename: String(vars['basename']),
    };
  }

  async #checkGrants(): Promise<void> {
    const rows = await this.#query<RowDataPacket>('SHOW GRANTS', 'preflight');
    const grants = rows.map((r) => String(Object.values(r)[0])).join('\n').toUpperCase();
    const global = grants.split('\n').filter((g) => / ON \*\.\* /.test(g)).join('\n');
    if (!/ALL PRIVILEGES|REPLICATION SLAVE|REPLICATION REPLICA/.test(global)) {
      throw new HotspareError('PRIVILEGES', 'the hotspare user lacks REPLICATION SLAVE, which the binlog dump needs', {
        hint: "GRANT REPLICATION SLAVE, BINLOG MONITOR, RELOAD, SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO the hotspare user",
      });
    }
  }

  /** The binlog files the primary still has, oldest first. */
  async binlogFiles(): Promise<BinlogFileInfo[]> {
    const rows = await this.#query<RowDataPacket>('SHOW BINARY LOGS', 'list binlogs');
    return rows.map((r) => ({ name: String(r['Log_name']), sizeBytes: Number(r['File_size']) }));
  }

  /** The primary's current write position. */
  async head(): Promise<{ file: string; position: number }> {
    const [row] = await this.#query<RowDataPacket>('SHOW MASTER STATUS', 'head position');
    if (row === undefined) throw new HotspareError('BINLOG_DISABLED', 'SHOW MASTER STATUS returned nothing', { hint: 'enable log_bin on the primary' });
    return { file: String(row['File']), position: Number(row['Position']) };
  }

  /** binlog_expire_logs_seconds (0 when the server never expires binlog by age). */
  async expireLogsSeconds(): Promise<number> {
    const [row] = await this.#query<RowDataPacket>('SELECT @@binlog_expire_logs_seconds AS s', 'expire setting');
    return Number(row?.['s'] ?? 0);
  }
}
