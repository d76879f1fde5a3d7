import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import { HotspareError } from '../core/errors.js';
import type { ClientCredentials } from '../platform/client-defaults-file.js';
import { DEFAULT_PROMOTE_LOCK_WAIT_TIMEOUT_S } from '../config/defaults.js';
import { isAccessDenied, isLockWaitTimeout } from '../primary/mysql-error.js';
import type { TargetSettings } from './promote-settings.js';

/** The largest max_allowed_packet MySQL and MariaDB accept (1 GiB). */
const MAX_ALLOWED_PACKET_CEILING = 1024 * 1024 * 1024;

/** The named lock a promotion holds on its target (claimPromotion). */
export const PROMOTE_LOCK_NAME = 'hotspare.promote';
/**
 * How long a promotion waits for the lock: a retry's own earlier session may not be gone yet
 * (a connection's end resolves before the server has handled it).
 */
const PROMOTE_LOCK_WAIT_S = 5;
/** ER_NOT_SUPPORTED_YET: a Galera node (wsrep_on) has no GET_LOCK (MDEV-30473). */
const ER_NOT_SUPPORTED_YET = 1235;

/**
 * The server a standby is promoted into, over one mysql2 connection: who it is, which
 * databases it holds, and the few changes promotion makes besides restore and replay.
 */

export class TargetServer {
  private constructor(
    private readonly conn: Connection,
    readonly describe: string,
  ) {}

  static async connect(credentials: ClientCredentials, describe: string, lockWaitSeconds = DEFAULT_PROMOTE_LOCK_WAIT_TIMEOUT_S): Promise<TargetServer> {
    let conn: Connection | undefined;
    try {
      conn = await createConnection({
        ...(credentials.socketPath !== undefined ? { socketPath: credentials.socketPath } : { host: credentials.host, port: credentials.port }),
        user: credentials.user,
        password: credentials.password,
        connectTimeout: 10_000,
      });
      // A lock the promotion waits for (read_only = ON waits for running commits, DROP DATABASE
      // for the tables applications hold open) fails in bounded time, with its statement named,
      // instead of holding the promotion for the server's default of a day.
      await conn.query(`SET SESSION lock_wait_timeout = ${Number.isFinite(lockWaitSeconds) ? Math.max(1, Math.floor(lockWaitSeconds)) : DEFAULT_PROMOTE_LOCK_WAIT_TIMEOUT_S}`);
      return new TargetServer(conn, describe);
    } catch (err) {
      // A connection that opened and then failed is closed here: startTarget polls connect().
      conn?.destroy();
      const e = err as { code?: string; message?: string };
      // Like PRIMARY_AUTH on the agent's side: the server answered and refused the login, so the
      // cure is the URL's credentials, not whether the server runs. (The server's message names
      // the user and host, never the password.)
      if (isAccessDenied(err)) {
        throw new HotspareError('TARGET_AUTH', `the target ${describe} refused the login: ${e.message ?? e.code ?? String(err)}`, {
          cause: err,
          hint: "check the user and password in --target (mysql://USER:PASSWORD@HOST:PORT, with @ : / ? # % in the password percent-encoded, e.g. %40 for @) and that the account exists on the standby for the host promote connects from; after a physical restore the standby has the primary's accounts",
        });
      }
      throw new HotspareError('TARGET_UNREACHABLE', `cannot connect to the target ${describe}: ${e.code ?? e.message ?? String(err)}`, {
        cause: err,
        hint: 'check that the standby server runs and that --target names its user, password, host and port (or socket)',
      });
    }
  }

  /**
   * Takes the target's promotion lock (a named lock, GET_LOCK) for this connection, which holds
   * it until it closes, a promote killed included. Two promotions into one target at once both
   * found it empty and loaded the base twice (a table without a primary key doubled), and one
   * reported success; two physical ones shared a staging folder.
   */
  async claimPromotion(): Promise<'held' | 'unsupported'> {
    let row: RowDataPacket | undefined;
    try {
      [row] = await this.#query(`SELECT GET_LOCK('${PROMOTE_LOCK_NAME}', ${PROMOTE_LOCK_WAIT_S}) AS got, IS_USED_LOCK('${PROMOTE_LOCK_NAME}') AS holder`);
    } catch (err) {
      if ((err as { cause?: { errno?: number } }).cause?.errno === ER_NOT_SUPPORTED_YET) return 'unsupported';
      throw err;
    }
    if (Number(row?.['got']) === 1) return 'held';
    const holder = row?.['holder'] === null || row?.['holder'] === undefined ? 'unknown' : String(row['holder']);
    // Where it runs and how long its session has been quiet: a promoting host lost mid-run holds
    // the lock until the server's wait_timeout ends the session (8 hours by default).
    const [session] = holder === 'unknown' ? [] : await this.#query(`SELECT HOST AS host, TIME AS idle, COMMAND AS command FROM information_schema.PROCESSLIST WHERE ID = ${Number(holder)}`).catch(() => []);
    const from = session === undefined ? '' : `, from ${String(session['host'])}, ${String(session['command'])} for ${String(session['idle'])} s`;
    throw new HotspareError('PROMOTE_RUNNING', `another hotspare promote is running into the target ${this.describe} (its session ${holder}${from} holds the lock ${PROMOTE_LOCK_NAME})`, {
      hint: `wait for it to end, or stop it (KILL ${holder} on the target ends its session, and then it stops); then promote again, with --replace if it had begun`,
    });
  }

  async close(): Promise<void> {
    await this.conn.end().catch(() => undefined);
  }

  async #query(sql: string): Promise<RowDataPacket[]> {
    try {
      const [rows] = await this.conn.query<RowDataPacket[]>(sql);
      return Array.isArray(rows) ? rows : [];
    } catch (err) {
      if (isLockWaitTimeout(err)) {
        throw new HotspareError('TARGET_BUSY', `the target ${this.describe} kept ${sql.slice(0, 60)} waiting for locks other sessions hold: ${(err as Error).message}`, {
          cause: err,
          hint: 'applications still use the standby (SHOW PROCESSLIST names them): stop them, or end their sessions, and promote again',
        });
      }
      // The server went away (killed, restarted, the link cut): no privilege is missing.
      const lost = err as { fatal?: boolean; code?: string; message?: string };
      if (lost.fatal === true || lost.code === 'PROTOCOL_CONNECTION_LOST' || /closed state/.test(lost.message ?? '')) {
        throw new HotspareError('TARGET_UNREACHABLE', `the connection to the target ${this.describe} was lost at ${sql.slice(0, 60)}: ${lost.message ?? lost.code ?? String(err)}`, {
          cause: err,
          hint: 'the standby server stopped or the link was cut during the promotion: start it again (its read_only is what its config says), then promote again with --replace',
        });
      }
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

  /**
   * Those of `names` that hold nothing: no table, view, sequence, routine or event (such as
   * the empty `test` that mariadb-install-db makes, which a primary's base holds too).
   */
  async emptyDatabases(names: readonly string[]): Promise<Set<string>> {
    if (names.length === 0) return new Set();
    const list = names.map((n) => `'${n.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`).join(', ');
    const rows = await this.#query(
      `SELECT s.SCHEMA_NAME AS name FROM information_schema.SCHEMATA s WHERE s.SCHEMA_NAME IN (${list})` +
        ' AND NOT EXISTS (SELECT 1 FROM information_schema.TABLES t WHERE t.TABLE_SCHEMA = s.SCHEMA_NAME)' +
        ' AND NOT EXISTS (SELECT 1 FROM information_schema.ROUTINES r WHERE r.ROUTINE_SCHEMA = s.SCHEMA_NAME)' +
        ' AND NOT EXISTS (SELECT 1 FROM information_schema.EVENTS e WHERE e.EVENT_SCHEMA = s.SCHEMA_NAME)',
    );
    return new Set(rows.map((r) => String(r['name'])));
  }

  /**
   * Drops a database the base restores (an empty one, or one --replace replaces) without
   * binlogging the DROP: on a standby that runs with log_bin it would become a GTID of the
   * standby's own server_id in the new primary's binlog, one the old primary never had, which
   * every replica that later follows the new primary replays (and a GTID-based switch of such a
   * replica counts as a transaction it lacks). The base restore is not binlogged either. Setting
   * sql_log_bin needs SUPER or BINLOG ADMIN, within the ALL PRIVILEGES the promote user has.
   */
  async dropDatabase(name: string): Promise<void> {
    await this.#query('SET SESSION sql_log_bin = 0');
    try {
      await this.#query(`DROP DATABASE \`${name.replaceAll('`', '``')}\``);
    } finally {
      await this.#query('SET SESSION sql_log_bin = 1').catch(() => undefined);
    }
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

  /** Names the server for a settings record: a re-run reaches it under another URL, perhaps. */
  async settingsKey(): Promise<string> {
    const [row] = await this.#query('SELECT @@hostname AS h, @@port AS p, @@datadir AS d');
    return `${String(row?.['h'] ?? '?')}:${String(row?.['p'] ?? '?')}:${String(row?.['d'] ?? '?')}`;
  }

  /**
   * The settings a promotion changes (promote-settings.ts), as they are now, and when the server
   * started (seconds since the epoch): SET GLOBAL does not outlive a restart, so a record from
   * before the last start says nothing of the values now.
   */
  async readSettings(): Promise<TargetSettings> {
    const [row] = await this.#query('SELECT @@global.event_scheduler AS e, @@global.max_allowed_packet AS m, @@global.innodb_flush_log_at_trx_commit AS f, UNIX_TIMESTAMP() AS now');
    // SHOW GLOBAL STATUS: MySQL 8 has no information_schema.GLOBAL_STATUS.
    const [uptime] = await this.#query("SHOW GLOBAL STATUS LIKE 'Uptime'");
    return {
      eventScheduler: String(row?.['e'] ?? 'OFF').toUpperCase(),
      maxAllowedPacket: Number(row?.['m'] ?? 0),
      flushLogAtTrxCommit: Number(row?.['f'] ?? 1),
      startedS: Number(row?.['now'] ?? 0) - Number(uptime?.['Value'] ?? 0),
    };
  }

  /**
   * Puts back the settings an interrupted promotion recorded, each only where the server still
   * holds what a promotion sets (event scheduler off, max_allowed_packet at 1 GiB, the flush at 2):
   * a value the operator set since is theirs. `now` is the server's reading (readSettings).
   * Returns those it changed.
   */
  async applySettings(settings: TargetSettings, now: TargetSettings): Promise<string[]> {
    const changed: string[] = [];
    if (settings.eventScheduler === 'ON' && now.eventScheduler === 'OFF') {
      await this.#query('SET GLOBAL event_scheduler = ON');
      changed.push('event_scheduler = ON');
    }
    if (now.maxAllowedPacket === MAX_ALLOWED_PACKET_CEILING && Number.isInteger(settings.maxAllowedPacket) && settings.maxAllowedPacket > 0 && settings.maxAllowedPacket < MAX_ALLOWED_PACKET_CEILING) {
      await this.#query(`SET GLOBAL max_allowed_packet = ${settings.maxAllowedPacket}`);
      changed.push(`max_allowed_packet = ${settings.maxAllowedPacket}`);
    }
    if (settings.flushLogAtTrxCommit === 1 && now.flushLogAtTrxCommit === 2) {
      await this.#query('SET GLOBAL innodb_flush_log_at_trx_commit = 1');
      changed.push('innodb_flush_log_at_trx_commit = 1');
    }
    return changed;
  }

  /**
   * Lets replayed commits reach the OS without an fsync each (innodb_flush_log_at_trx_commit=2),
   * and returns what puts the setting back and makes everything replayed durable. A replay that
   * fails or is killed is done again from the base (--replace), so per-commit durability buys it
   * nothing; the promotion is durable once, before the server opens for writes.
   */
  async relaxCommitFlush(): Promise<{ was: number; restore: () => Promise<void> }> {
    const [row] = await this.#query('SELECT @@global.innodb_flush_log_at_trx_commit AS f');
    const was = Number(row?.['f'] ?? 1);
    if (was !== 1) return { was, restore: async () => undefined };
    await this.#query('SET GLOBAL innodb_flush_log_at_trx_commit = 2');
    return {
      was,
      restore: async () => {
        await this.#query('SET GLOBAL innodb_flush_log_at_trx_commit = 1');
        await this.#flushRedoLog();
      },
    };
  }

  /**
   * Writes and syncs InnoDB's redo log up to its current end (FLUSH ENGINE LOGS does so with
   * innodb_flush_log_at_trx_commit=1), and checks that the server says so where it can (MariaDB
   * has Innodb_lsn_current and Innodb_lsn_flushed; MySQL does not).
   */
  async #flushRedoLog(): Promise<void> {
    const lsn = async (name: string): Promise<bigint | undefined> => {
      const [row] = await this.#query(`SHOW GLOBAL STATUS LIKE '${name}'`);
      return row?.['Value'] === undefined ? undefined : BigInt(String(row['Value']));
    };
    const current = await lsn('Innodb_lsn_current');
    // NO_WRITE_TO_BINLOG: a plain FLUSH is binlogged, and would be a transaction of the
    // standby's own server_id in the new primary's binlog (see dropDatabase).
    await this.#query('FLUSH NO_WRITE_TO_BINLOG ENGINE LOGS');
    const flushed = await lsn('Innodb_lsn_flushed');
    if (current !== undefined && flushed !== undefined && flushed < current) {
      throw new HotspareError('TARGET_ERROR', `the target ${this.describe} flushed its redo log to LSN ${flushed}, short of ${current}`, {
        hint: 'the replayed transactions may not be durable yet; run FLUSH ENGINE LOGS on the target, or restart it, before relying on it',
      });
    }
  }

  /**
   * Stops the event scheduler while the base is restored and the binlog replayed: an event that
   * ran on the standby meanwhile would change the data being made equal to the primary's (the
   * primary's own events' changes come in the binlog). Returns what starts it again.
   */
  async pauseEventScheduler(): Promise<{ paused: boolean; restore: () => Promise<void> }> {
    const held = await this.#holdGlobal('event_scheduler', 'OFF', (was) => String(was ?? 'OFF').toUpperCase() === 'ON');
    return { paused: held.changed, restore: held.restore };
  }

  /**
   * Raises max_allowed_packet to the server's maximum while the base is restored and the
   * binlog replayed, and returns what puts it back. A logical base carries each row as one
   * literal (up to twice its stored size) and the replay each row event as a BINLOG statement
   * (its base64, 4/3 of the event): on a standby left at the default (16 MiB), a large row the
   * primary took would stop the promotion half-way. New sessions take the global value, and the
   * restore's and replay's clients are new sessions; the server allocates only what a packet needs.
   */
  async raiseMaxAllowedPacket(): Promise<{ was: number; raised: boolean; restore: () => Promise<void> }> {
    const held = await this.#holdGlobal('max_allowed_packet', MAX_ALLOWED_PACKET_CEILING, (was) => Number(was ?? MAX_ALLOWED_PACKET_CEILING) < MAX_ALLOWED_PACKET_CEILING);
    return { was: Number(held.was ?? MAX_ALLOWED_PACKET_CEILING), raised: held.changed, restore: held.restore };
  }

  /**
   * Sets a global variable to `value` for the promotion when `needed(its current value)`, and
   * returns what sets it back to that value (nothing to do when it was left alone).
   */
  async #holdGlobal(name: string, value: string | number, needed: (was: unknown) => boolean): Promise<{ was: unknown; changed: boolean; restore: () => Promise<void> }> {
    const [row] = await this.#query(`SELECT @@global.${name} AS v`);
    const was: unknown = row?.['v'];
    if (!needed(was)) return { was, changed: false, restore: async () => undefined };
    await this.#query(`SET GLOBAL ${name} = ${value}`);
    return {
      was,
      changed: true,
      restore: async () => {
        await this.#query(`SET GLOBAL ${name} = ${String(was)}`);
      },
    };
  }

  /**
   * After the replay: gtid_slave_pos = gtid_binlog_pos. The replayed transactions carry the old
   * primary's server_id in their GTIDs, and MariaDB's gtid_current_pos takes a domain from the
   * binlog only when its last GTID has the server's own server_id, else from gtid_slave_pos:
   * left as it was (empty), the promoted server's gtid_current_pos lacked every replayed
   * transaction, so a base taken on it (mariabackup records gtid_current_pos) had no GTID, and a
   * replica set up with MASTER_USE_GTID=current_pos from it started from nothing. A replica
   * applying them would have advanced gtid_slave_pos: so does this. Without a binlog there is
   * nothing for another server to follow, and nothing is set. Returns the position set.
   */
  async adoptReplayedGtids(): Promise<string | undefined> {
    const [row] = await this.#query('SELECT @@global.log_bin AS logBin, @@global.gtid_binlog_pos AS pos');
    const pos = String(row?.['pos'] ?? '');
    if (Number(row?.['logBin']) !== 1 || pos === '') return undefined;
    await this.#query('SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos');
    return pos;
  }

  async readOnly(): Promise<boolean> {
    const [row] = await this.#query('SELECT @@global.read_only AS ro');
    // Anything but a plain "off" counts as on: a wrong guess must never make a standby writable.
    const value = row?.['ro'];
    const off = value !== null && value !== undefined && value !== '' && (Number(value) === 0 || String(value).toUpperCase() === 'OFF');
    return !off;
  }

  async setReadOnly(on: boolean): Promise<void> {
    await this.#query(`SET GLOBAL read_only = ${on ? 'ON' : 'OFF'}`);
  }
}
