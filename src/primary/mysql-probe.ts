import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import type { PrimaryConnection } from '../config/load.js';
import { DEFAULT_PRIMARY_CLOSE_TIMEOUT_MS, DEFAULT_PRIMARY_QUERY_TIMEOUT_MS } from '../config/defaults.js';
import { HotspareError } from '../core/errors.js';
import { within } from '../platform/within.js';
import { BINLOG_DISABLED_HINT, fromMysqlError } from './mysql-error.js';
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
  /** A query ran into its timeout: the connection's state is unknown, and it is only dropped. */
  #timedOut = false;

  private constructor(
    private readonly conn: Connection,
    private readonly endpoint: string,
    private readonly queryTimeoutMs: number,
  ) {}

  static async connect(primary: PrimaryConnection, options: { queryTimeoutMs?: number } = {}): Promise<MysqlProbe> {
    const endpoint = describeEndpoint(primary);
    try {
      const queryTimeoutMs = options.queryTimeoutMs ?? DEFAULT_PRIMARY_QUERY_TIMEOUT_MS;
      // The connect has the same deadline as a question: a host that takes the TCP connection
      // but never greets (a stopped server) would otherwise hold a check, and a stop, for 10 s.
      const connection = mysqlOptions(primary);
      const connectTimeout = Math.min(queryTimeoutMs, connection.connectTimeout ?? queryTimeoutMs);
      return new MysqlProbe(await createConnection({ ...connection, connectTimeout }), endpoint, queryTimeoutMs);
    } catch (err) {
      throw fromMysqlError(err, 'connect', endpoint);
    }
  }

  /**
   * Says goodbye (COM_QUIT) and closes; a primary that does not answer within
   * DEFAULT_PRIMARY_CLOSE_TIMEOUT_MS (a host that vanished: no reply, no reset), or a connection
   * whose last question timed out, is dropped instead, so that a stop never waits on it.
   */
  async close(): Promise<void> {
    if (this.#timedOut) {
      this.conn.destroy();
      return;
    }
    const ended = await within(this.conn.end().catch(() => undefined), DEFAULT_PRIMARY_CLOSE_TIMEOUT_MS);
    if (ended === undefined) this.conn.destroy();
  }

  async #query<T extends RowDataPacket>(sql: string, what: string): Promise<T[]> {
    try {
      // Each question has a deadline: a primary that stops answering (its host lost, the
      // network silent) fails the check instead of holding it, and the agent's stop, for the
      // minutes TCP takes to give up.
      const [rows] = await this.conn.query<T[]>({ sql, timeout: this.queryTimeoutMs });
      return rows;
    } catch (err) {
      if ((err as { code?: string }).code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
        this.#timedOut = true;
        throw new HotspareError('PRIMARY_UNREACHABLE', `${what}: the primary at ${this.endpoint} did not answer within ${this.queryTimeoutMs} ms`, {
          cause: err,
          hint: 'the agent retries; check that the primary and the network to it are up',
        });
      }
      throw fromMysqlError(err, what, this.endpoint);
    }
  }

  /**
   * Checks what streaming needs from the primary and returns its identity. Each failure is
   * a HotspareError whose hint says how to fix the server.
   */
  /**
   * MariaDB with encrypt_binlog=ON keeps its binlog files encrypted and sends the dump
   * decrypted, with the file's START_ENCRYPTION event rewritten as an ignorable one (and, on a
   * start mid-file, with no position): what arrives is not the file's bytes, so no archive of
   * it can be byte-identical, and that event derails the offsets of a resumed dump.
   */
  async refuseEncryptedBinlog(): Promise<void> {
    let row: RowDataPacket | undefined;
    try {
      [row] = await this.#query<RowDataPacket>('SELECT @@global.encrypt_binlog AS enc', 'preflight');
    } catch (err) {
      // ER_UNKNOWN_SYSTEM_VARIABLE: not MariaDB (MySQL has no such variable).
      if ((err as { errno?: number }).errno === 1193 || (err as { cause?: { errno?: number } }).cause?.errno === 1193) return;
      throw err;
    }
    const value = String(row?.['enc'] ?? '0');
    if (value === '1' || value.toUpperCase() === 'ON') {
      throw new HotspareError('BINLOG_ENCRYPTED', 'the primary encrypts its binlog (encrypt_binlog is ON): the dump sends other bytes than its files hold, which cannot be archived byte for byte', {
        hint: "set encrypt_binlog=OFF in the server's config and restart it (encrypt the archive volumes instead, e.g. with LUKS)",
      });
    }
  }

  /** The last preflight could not read SHOW SLAVE HOSTS: the agent's dump ids are not known to be free. */
  serverIdsUnchecked = false;

  async preflight(agentServerIds: readonly number[]): Promise<PrimaryIdentity> {
    const [vars] = await this.#query<RowDataPacket>(
      'SELECT @@log_bin AS logBin, @@binlog_format AS format, @@binlog_checksum AS checksum, @@server_id AS serverId, ' +
        '@@version AS version, @@hostname AS hostname, @@log_bin_basename AS basename',
      'preflight',
    );
    if (vars === undefined) throw new Error('preflight returned no row');
    if (Number(vars['logBin']) !== 1) {
      throw new HotspareError('BINLOG_DISABLED', 'the primary does not write a binlog (log_bin is OFF)', { hint: BINLOG_DISABLED_HINT });
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
    await this.refuseEncryptedBinlog();
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
    await this.#checkServerIdsFree(agentServerIds);
    return this.#identityOf(vars);
  }

  /**
   * Who the primary is now, and whether it writes a binlog: asked at every dump's start, since
   * a server restarted with another server_id or log_bin basename, or without binlog, writes
   * what this archive's binlog will never hold (see PrimaryBreak).
   */
  async identityNow(): Promise<{ logBin: boolean; identity: PrimaryIdentity }> {
    const [vars] = await this.#query<RowDataPacket>('SELECT @@log_bin AS logBin, @@server_id AS serverId, @@version AS version, @@hostname AS hostname, @@log_bin_basename AS basename', 'identity');
    if (vars === undefined) throw new Error('the identity query returned no row');
    return { logBin: Number(vars['logBin']) === 1, identity: await this.#identityOf(vars) };
  }

  async #identityOf(vars: RowDataPacket): Promise<PrimaryIdentity> {
    const version = String(vars['version']);
    let serverUuid: string | null = null;
    const flavor = /mariadb/i.test(version) ? 'mariadb' : 'mysql';
    if (flavor === 'mysql') {
      const [row] = await this.#query<RowDataPacket>('SELECT @@server_uuid AS uuid', 'preflight');
      serverUuid = row === undefined ? null : String(row['uuid']);
    }
    return {
      serverId: Number(vars['serverId']),
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
    // The head checks list the primary's binlog files (SHOW BINARY LOGS: BINLOG MONITOR, or
    // REPLICATION CLIENT before 10.5). Asked, not read from the grants: a role may hold it.
    // Without it the agent ran on, lag unknown, its primary reported unreachable.
    try {
      await this.#query<RowDataPacket>('SHOW BINARY LOGS', 'preflight');
    } catch (err) {
      if (!(err instanceof HotspareError && err.code === 'PRIVILEGES')) throw err;
      throw new HotspareError('PRIVILEGES', "the hotspare user lacks BINLOG MONITOR, which the agent's head checks (how far each standby is behind) and base backups need (SHOW BINARY LOGS, SHOW MASTER STATUS)", {
        hint: 'GRANT BINLOG MONITOR ON *.* TO the hotspare user',
        cause: err,
      });
    }
  }

  /**
   * A dump connection with the server_id of a replica already connected disconnects that
   * replica (the primary keeps one dump per server_id), and the two would push each other off
   * for as long as both run. Real replicas register (SHOW SLAVE HOSTS lists them; the agent's
   * own dumps do not register, so a restarted agent does not see itself). Reading the list
   * needs REPLICATION MASTER ADMIN on MariaDB 10.5+; without it the check is skipped, and
   * `serverIdsUnchecked` says so (the agent warns with the ids it dumps with).
   */
  async #checkServerIdsFree(agentServerIds: readonly number[]): Promise<void> {
    let replicas: RowDataPacket[];
    try {
      replicas = await this.#query<RowDataPacket>('SHOW SLAVE HOSTS', 'preflight');
    } catch (err) {
      if (err instanceof HotspareError && err.code === 'PRIVILEGES') {
        this.serverIdsUnchecked = agentServerIds.length > 0;
        return;
      }
      throw err;
    }
    for (const replica of replicas) {
      const id = Number(replica['Server_id']);
      if (!agentServerIds.includes(id)) continue;
      const host = String(replica['Host'] ?? '');
      const where = host === '' ? '' : ` (${host}:${String(replica['Port'] ?? '')})`;
      throw new HotspareError('SERVER_ID_IN_USE', `a replica of the primary${where} already uses server_id ${id}, which the agent would use for its binlog dump`, {
        hint: 'the primary would disconnect that replica; choose primary.serverId (and any replica serverId) unused by every server in the topology (a replica that has just gone stays listed until the primary notices, up to about a minute)',
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
    if (row === undefined) throw new HotspareError('BINLOG_DISABLED', 'head position: the primary does not write a binlog (SHOW MASTER STATUS returned nothing)', { hint: BINLOG_DISABLED_HINT });
    return { file: String(row['File']), position: Number(row['Position']) };
  }

  /** The primary's binlog_format now (it can be SET GLOBAL while the agent runs). */
  async binlogFormat(): Promise<string> {
    const [row] = await this.#query<RowDataPacket>('SELECT @@global.binlog_format AS f', 'binlog format');
    return String(row?.['f'] ?? '').toUpperCase();
  }

  /** binlog_expire_logs_seconds (0: the server never expires binlog by age); on servers without it (MariaDB before 10.6, MySQL 5.7), expire_logs_days in seconds. */
  async expireLogsSeconds(): Promise<number> {
    try {
      const [row] = await this.#query<RowDataPacket>('SELECT @@binlog_expire_logs_seconds AS s', 'expire setting');
      return Number(row?.['s'] ?? 0);
    } catch (err) {
      // ER_UNKNOWN_SYSTEM_VARIABLE: an older server, which expires by whole days.
      if ((err as { errno?: number }).errno !== 1193 && (err as { cause?: { errno?: number } }).cause?.errno !== 1193) throw err;
      const [row] = await this.#query<RowDataPacket>('SELECT @@expire_logs_days AS d', 'expire setting');
      return Math.round(Number(row?.['d'] ?? 0) * 86_400);
    }
  }
}
