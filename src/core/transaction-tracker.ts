import {
  EventType,
  parseMariadbGtid,
  queryText,
  type EventHeader,
} from './binlog-event.js';

/** `ROLLBACK TO [SAVEPOINT] name` (the start of a query, upper-cased). */
const ROLLBACK_TO = /^ROLLBACK\s+(WORK\s+)?TO\b/;
/** The XA statements that end a transaction: `XA COMMIT`, `XA ROLLBACK`. */
const XA_END_OF_TRANSACTION = /^XA\s+(COMMIT|ROLLBACK)\b/;

/**
 * Follows the event stream and says after which events the stream stands between two
 * transactions. Resume points, promotion cut-offs and "last applied transaction" are all
 * taken at these boundaries, never inside a transaction and never at a GTID event (several
 * CDC tools lost transactions by advancing at the GTID event; research/anchors-mysql.md §8.3).
 */
export class TransactionTracker {
  #inTransaction = false;
  #gtid: string | undefined;
  #pendingGtid: string | undefined;

  /** The GTID of the transaction that the last boundary completed, when the server writes them. */
  get lastGtid(): string | undefined {
    return this.#gtid;
  }

  get inTransaction(): boolean {
    return this.#inTransaction;
  }

  /** Feeds one event; returns true when the stream is at a transaction boundary after it. */
  observe(event: Buffer, header: EventHeader): boolean {
    switch (header.type) {
      case EventType.GTID_MARIADB: {
        const { gtid, standalone } = parseMariadbGtid(event, header);
        this.#pendingGtid = gtid;
        // A standalone group (DDL, or a statement outside any transaction) is one QUERY
        // event; any other group runs until its XID or COMMIT/ROLLBACK query.
        this.#inTransaction = !standalone;
        return false;
      }
      case EventType.GTID_MYSQL:
      case EventType.ANONYMOUS_GTID_MYSQL:
        // MySQL writes an explicit BEGIN for transactions; a DDL follows its GTID directly.
        this.#pendingGtid = undefined;
        this.#inTransaction = false;
        return false;
      case EventType.XID:
      case EventType.XA_PREPARE:
        return this.#commit();
      case EventType.QUERY: {
        const text = queryText(event).trimStart().slice(0, 16).toUpperCase();
        if (text.startsWith('BEGIN') || text.startsWith('XA START')) {
          this.#inTransaction = true;
          return false;
        }
        // COMMIT, ROLLBACK, XA COMMIT/ROLLBACK end a transaction; any other statement
        // outside a transaction (DDL) is a whole transaction by itself. ROLLBACK TO a
        // savepoint and XA END are statements inside one (XA END comes before XA PREPARE).
        if (!this.#inTransaction || text.startsWith('COMMIT') || (text.startsWith('ROLLBACK') && !ROLLBACK_TO.test(text)) || XA_END_OF_TRANSACTION.test(text)) {
          return this.#commit();
        }
        return false;
      }
      case EventType.QUERY_COMPRESSED:
        // Only statements of log_bin_compress_min_len (256 bytes) or more are compressed: never
        // BEGIN, COMMIT, ROLLBACK or XA's, so it is a statement. Outside a transaction (a DDL
        // of a standalone group) it is a whole one; taken for "something else", it left the
        // group open: no boundary, so the durable point stopped before it for good.
        if (!this.#inTransaction) return this.#commit();
        return false;
      case EventType.ANNOTATE_ROWS:
        return false;
      default:
        return !this.#inTransaction && this.#pendingGtid === undefined;
    }
  }

  /** Starts afresh, for a stream that resumes at a known boundary. */
  reset(): void {
    this.#inTransaction = false;
    this.#pendingGtid = undefined;
  }

  #commit(): boolean {
    this.#inTransaction = false;
    if (this.#pendingGtid !== undefined) this.#gtid = this.#pendingGtid;
    this.#pendingGtid = undefined;
    return true;
  }
}
