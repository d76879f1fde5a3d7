import type { Connection } from 'mysql2/promise';
import type { PrimaryConnection } from '../../config/load.js';
import { DEFAULT_BASE_SESSION_WAIT_TIMEOUT_S, DEFAULT_BASE_TABLE_LOCK_TABLES_MAX, DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S } from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import { quoteIdentifier } from '../../core/sql-literal.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { connectForBase, endBaseSession, queryRows } from './base-session.js';
import type { DumpTable } from './table-inventory.js';

/**
 * Read locks on a base's non-transactional tables, held by a session of their own, so that the
 * global read lock can go before their rows are copied (the row-stream sessions hold those
 * tables open from under the global lock on: see RowStreamClient.openTables).
 *
 * A MyISAM or Aria table has no snapshot: its rows match the base's binlog coordinates only
 * while nothing writes to it. Held under the global read lock, their copy stopped every writer
 * of the primary: an emoncms primary's 12 M MyISAM feed rows took 12 s, and for those 12 s its
 * InnoDB tables took no write either. Taken while the global read lock is still held (a READ
 * table lock does not wait for it, and nothing can have written since the coordinates were
 * read), these locks keep exactly those tables still; the global lock then goes once the schema
 * is written, and the InnoDB writers go on while the feeds are copied.
 */
export class TableReadLocks {
  #lockedAtMs: number | undefined;
  #tables = 0;
  #heldMs: number | undefined;
  #ended = false;

  private constructor(
    private readonly conn: Connection,
    private readonly primary: PrimaryConnection,
    private readonly endpoint: string,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /**
   * Opens the session that will hold the locks; call it before taking the global read lock (a
   * slow connect must not lengthen that). Undefined, with the reason logged, when it cannot be
   * opened: the non-transactional tables are then copied under the global read lock.
   */
  static async open(primary: PrimaryConnection, options: { endpoint: string; clock: Clock; logger: Logger }): Promise<TableReadLocks | undefined> {
    const { endpoint, clock, logger } = options;
    let conn: Connection | undefined;
    try {
      conn = await connectForBase(primary, 'base backup table locks', endpoint);
      // It stays idle while the rows are copied: no server timeout may end it meanwhile.
      await queryRows(conn, `SET SESSION lock_wait_timeout = ${DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S}, wait_timeout = ${DEFAULT_BASE_SESSION_WAIT_TIMEOUT_S}`, endpoint);
      await queryRows(conn, 'SET SESSION idle_transaction_timeout = 0', endpoint).catch(() => undefined);
      return new TableReadLocks(conn, primary, endpoint, clock, logger);
    } catch (err) {
      logger.warn({ err }, 'base backup: could not open a session for the non-transactional tables\' own locks; they are copied under the global read lock');
      if (conn !== undefined) await endBaseSession(primary, conn);
      return undefined;
    }
  }

  /** The session's id on the primary (what PROCESSLIST shows, what KILL takes). */
  get threadId(): number | null {
    return this.conn.threadId;
  }

  /** How many tables are locked (0: none, and the session is closed). */
  get tables(): number {
    return this.#tables;
  }

  /**
   * Locks `tables` for read; false (the reason logged, the session closed) when that cannot be
   * done at once: too many tables to lock in one statement, a session holding a write lock on
   * one (waited for at most DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S), any error. The caller then
   * keeps the global read lock for them: slower for the primary's writers, never inconsistent.
   * Call with the global read lock held.
   */
  async lock(tables: readonly DumpTable[]): Promise<boolean> {
    if (tables.length === 0) {
      this.#close();
      return false;
    }
    if (tables.length > DEFAULT_BASE_TABLE_LOCK_TABLES_MAX) {
      this.logger.info({ tables: tables.length, max: DEFAULT_BASE_TABLE_LOCK_TABLES_MAX }, 'base backup: too many non-transactional tables to lock on their own; they are copied under the global read lock');
      this.#close();
      return false;
    }
    try {
      const list = tables.map((t) => `${quoteIdentifier(t.schema)}.${quoteIdentifier(t.name)} READ`).join(', ');
      await queryRows(this.conn, `LOCK TABLES ${list}`, this.endpoint);
      this.#lockedAtMs = this.clock.nowMs();
      this.#tables = tables.length;
      return true;
    } catch (err) {
      this.logger.warn({ err, tables: tables.length }, 'base backup: could not lock the non-transactional tables on their own; they are copied under the global read lock');
      // A LOCK TABLES that failed took no lock: the session holds nothing, and is closed politely.
      this.#close();
      return false;
    }
  }

  /**
   * Releases the locks and ends their session; returns how long they were held (ms). Throws
   * BASE_TABLE_LOCK_LOST when the session is gone: the server ended it (a KILL, a lost link)
   * and its locks with it, so writes may have reached those tables while they were copied, and
   * the base must not be kept. UNLOCK TABLES answered on this very session (mysql2 never
   * reconnects) proves the locks were held throughout. Safe to call again.
   */
  async release(): Promise<number> {
    if (this.#heldMs !== undefined) return this.#heldMs;
    if (this.#lockedAtMs === undefined || this.#ended) throw new Error('release() of table read locks that are not held');
    const heldMs = this.clock.nowMs() - this.#lockedAtMs;
    try {
      await queryRows(this.conn, 'UNLOCK TABLES', this.endpoint);
    } catch (err) {
      await this.abandon();
      throw new HotspareError('BASE_TABLE_LOCK_LOST', `the session holding the base backup's read locks on its ${this.#tables} non-transactional table(s) ended before their rows were all read (${String((err as Error).message ?? err)})`, {
        cause: err,
        hint: 'writes may have reached those tables during their copy, so this base was not kept; take it again (and do not KILL the hotspare sessions while a base backup runs)',
      });
    }
    this.#heldMs = heldMs;
    this.#ended = true;
    await this.conn.end().catch(() => endBaseSession(this.primary, this.conn));
    return heldMs;
  }

  /**
   * Closes a session that holds no locks, in the background: the global read lock is held
   * while lock() runs, and no connect or KILL may lengthen it.
   */
  #close(): void {
    if (this.#ended) return;
    this.#ended = true;
    void this.conn.end().catch(() => endBaseSession(this.primary, this.conn));
  }

  /** Ends the session at once (the backup is abandoned): KILL, so the server drops its locks with it. */
  async abandon(): Promise<void> {
    if (this.#ended) return;
    this.#ended = true;
    await endBaseSession(this.primary, this.conn);
  }
}
