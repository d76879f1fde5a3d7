import type { Connection } from 'mysql2/promise';
import type { PrimaryConnection } from '../../config/load.js';
import { DEFAULT_BASE_TABLE_LOCK_TABLES_MAX, DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S } from '../../config/defaults.js';
import { quoteIdentifier } from '../../core/sql-literal.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { connectForBase, endBaseSession, queryRows } from './base-session.js';
import type { DumpTable } from './table-inventory.js';

/**
 * Read locks on a base's non-transactional tables, held by a session of their own, so that the
 * global read lock can go before their rows are copied.
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
  #released = false;
  #heldMs: number | undefined;

  private constructor(
    private readonly conn: Connection,
    private readonly primary: PrimaryConnection,
    private readonly endpoint: string,
    private readonly clock: Clock,
    /** When the locks were granted (ms, the clock's). */
    readonly lockedAtMs: number,
    readonly tables: number,
  ) {}

  /**
   * Locks `tables` for read in a new session, or returns undefined (with the reason logged) when
   * that cannot be done at once: too many tables to lock in one statement, a session that holds
   * a write lock on one (waited for at most DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S), or any
   * error. The caller then keeps the global read lock for them, as before: slower for the
   * primary's writers, never inconsistent. Call with the global read lock held.
   */
  static async take(primary: PrimaryConnection, tables: readonly DumpTable[], options: { endpoint: string; clock: Clock; logger: Logger }): Promise<TableReadLocks | undefined> {
    const { endpoint, clock, logger } = options;
    if (tables.length === 0) return undefined;
    if (tables.length > DEFAULT_BASE_TABLE_LOCK_TABLES_MAX) {
      logger.info({ tables: tables.length, max: DEFAULT_BASE_TABLE_LOCK_TABLES_MAX }, 'base backup: too many non-transactional tables to lock one by one; they are copied under the global read lock');
      return undefined;
    }
    let conn: Connection | undefined;
    try {
      conn = await connectForBase(primary, 'base backup table locks', endpoint);
      await queryRows(conn, `SET SESSION lock_wait_timeout = ${DEFAULT_BASE_TABLE_LOCK_WAIT_TIMEOUT_S}, wait_timeout = 86400`, endpoint);
      const list = tables.map((t) => `${quoteIdentifier(t.schema)}.${quoteIdentifier(t.name)} READ`).join(', ');
      await queryRows(conn, `LOCK TABLES ${list}`, endpoint);
      return new TableReadLocks(conn, primary, endpoint, clock, clock.nowMs(), tables.length);
    } catch (err) {
      logger.warn({ err, tables: tables.length }, 'base backup: could not lock the non-transactional tables on their own; they are copied under the global read lock');
      if (conn !== undefined) await endBaseSession(primary, conn);
      return undefined;
    }
  }

  /** Releases the locks and ends their session; returns how long they were held (ms). Safe to call twice. */
  async release(): Promise<number> {
    if (this.#heldMs !== undefined) return this.#heldMs;
    const heldMs = this.clock.nowMs() - this.lockedAtMs;
    this.#heldMs = heldMs;
    if (this.#released) return heldMs;
    this.#released = true;
    // A session that cannot be ended politely is ended underneath: its locks go with it.
    await queryRows(this.conn, 'UNLOCK TABLES', this.endpoint)
      .then(() => this.conn.end())
      .catch(() => endBaseSession(this.primary, this.conn));
    return heldMs;
  }

  /** Ends the session at once (the backup is abandoned): the server drops its locks with it. */
  async abandon(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await endBaseSession(this.primary, this.conn);
  }
}
