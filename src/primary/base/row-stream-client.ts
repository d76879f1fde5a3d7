import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { DEFAULT_BASE_INSERT_BYTES_MAX, DEFAULT_BASE_LOCK_WAIT_TIMEOUT_S, DEFAULT_BASE_NET_WRITE_TIMEOUT_S } from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import { quoteIdentifier, tupleExpression } from '../../core/sql-literal.js';
import type { DumpTable } from './table-inventory.js';
import { TOOL_STDERR_BYTES_MAX, spawnTool } from '../../platform/tool-process.js';

/** The line that ends each answer; it cannot be a row, since every row line starts with "(". */
const MARKER_TEXT = '-- hotspare:';
const MARKER = Buffer.from(MARKER_TEXT, 'latin1');
const NEWLINE = 0x0a;
/** How the client prints a row whose tuple the server could not build. */
const NULL_LINE = Buffer.from('\nNULL\n', 'latin1');
const STATEMENT_END = Buffer.from(';\n', 'latin1');
/** How every row line ends (the server appends the comma). */
const ROW_END = Buffer.from(',\n', 'latin1');

/**
 * What surrounds a table's INSERTs so that the restore loads it fast. InnoDB loads an empty
 * table inside one transaction with unique and foreign-key checks off in bulk mode (its indexes
 * sorted and built once, no undo per row); MyISAM and Aria build non-unique indexes once after
 * the rows (DISABLE/ENABLE KEYS, as mariadb-dump does).
 */
function loadFraming(table: DumpTable, target: string): { before: string; after: string } {
  const engine = table.engine.toLowerCase();
  if (engine === 'innodb') return { before: 'BEGIN;\n', after: 'COMMIT;\n' };
  if (engine === 'myisam' || engine === 'aria') return { before: `ALTER TABLE ${target} DISABLE KEYS;\n`, after: `ALTER TABLE ${target} ENABLE KEYS;\n` };
  return { before: '', after: '' };
}

/**
 * One `mariadb` client session on the primary that holds a consistent snapshot and streams
 * tables out of it as INSERT statements. The server renders each row as an SQL tuple
 * (tupleExpression) and the client, written in C, frames the rows as lines; here lines are
 * only joined into statements a megabyte at a time, so no JavaScript object exists per row or
 * per value. Several sessions started while the global read lock is held see the same
 * snapshot (no commit can happen between them): that is what lets a base backup read tables in
 * parallel and still be consistent with one set of binlog coordinates.
 */
export class RowStreamClient {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #stdout: AsyncIterator<Buffer>;
  readonly #exited: Promise<number | null>;
  readonly #stderr: () => string;

  /** `signal` aborted kills the client (the snapshot ends with it). */
  constructor(defaultsFile: string, signal?: AbortSignal) {
    const tool = spawnTool(
      'mariadb',
      [`--defaults-file=${defaultsFile}`, '--batch', '--raw', '--skip-column-names', '--quick', '--unbuffered', '--default-character-set=utf8mb4', '--max-allowed-packet=1G'],
      'pipe',
      signal,
    );
    this.#child = tool.child;
    this.#exited = tool.exited;
    this.#stderr = tool.stderr;
    this.#child.stdin.on('error', () => undefined);
    this.#stdout = (this.#child.stdout as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  /** Starts the session's snapshot; call it while the global read lock is held. */
  async startSnapshot(): Promise<void> {
    await this.#send(
      // sql_mode '': the literals' backslash escapes (NO_BACKSLASH_ESCAPES would make them
      // text) and CONCAT's NULL (ORACLE mode skips NULLs, hiding a row too large to dump) mean
      // what they say whatever the primary's global mode; no statement time limit on big tables.
      // lock_wait_timeout: a finite wait for a metadata lock (openTables takes every one it
      // needs under the global read lock, so none is expected; the server's default is a day).
      `SET SESSION time_zone = '+00:00', character_set_results = binary, net_write_timeout = ${DEFAULT_BASE_NET_WRITE_TIMEOUT_S}, sql_mode = '', max_statement_time = 0, lock_wait_timeout = ${DEFAULT_BASE_LOCK_WAIT_TIMEOUT_S};\n` +
        'START TRANSACTION WITH CONSISTENT SNAPSHOT;\n',
    );
    for await (const piece of this.#answer()) {
      if (piece.rows.length > 0) throw this.#protocolError('unexpected output while starting the snapshot');
    }
  }

  /**
   * Opens every table this session may read inside its snapshot transaction, so that it holds
   * their metadata locks until COMMIT; call it while the global read lock is held. A table
   * first opened later would wait behind a DDL statement queued on it meanwhile (an ALTER
   * waiting for another session's lock on that table: the backup's own table read locks or
   * snapshot), while that lock is held until this session has read the table: a wait neither
   * side could end.
   */
  async openTables(tables: readonly DumpTable[]): Promise<void> {
    if (tables.length === 0) return;
    await this.#send(tables.map((t) => `SELECT 1 FROM ${quoteIdentifier(t.schema)}.${quoteIdentifier(t.name)} LIMIT 0;\n`).join(''));
    for await (const piece of this.#answer()) {
      if (piece.rows.length > 0) throw this.#protocolError('unexpected output while opening the tables');
    }
  }

  /**
   * One table's rows from the snapshot as INSERT statements of about DEFAULT_BASE_INSERT_BYTES_MAX.
   * The server sends each row as the line `(v1,...),`; a statement ends where a run of lines
   * read ends, with that last comma turned into a semicolon. `counter.rows` is the server's count.
   */
  async *tableStatements(table: DumpTable, counter: { rows: number }): AsyncGenerator<Buffer> {
    const target = `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
    const { before, after } = loadFraming(table, target);
    // utf8, as the restore's SET NAMES says: names need not be ASCII. The comment is one line whatever the name holds.
    const comment = `${table.schema}.${table.name} (${table.engine})`.replace(/[\r\n]/g, '?');
    yield Buffer.from(`-- ${comment}\n${before}`, 'utf8');
    if (table.columns.length > 0) {
      const head = Buffer.from(`INSERT INTO ${target} (${table.columns.map((c) => quoteIdentifier(c.name)).join(',')}) VALUES\n`, 'utf8');
      await this.#send(`SELECT CONCAT(${tupleExpression(table.columns)},',') FROM ${target};\n`);
      let statementBytes = 0;
      for await (const piece of this.#answer()) {
        const rows = piece.rows;
        if (rows.length > 0) {
          // A row the server could not render comes as NULL (see tupleExpression): never written.
          const nullRow = rows.indexOf(NULL_LINE) >= 0 || rows.subarray(0, NULL_LINE.length - 1).equals(NULL_LINE.subarray(1));
          if (nullRow || !rows.subarray(rows.length - 2).equals(ROW_END)) throw this.#rowError(table);
          // Each run is written without its last ",\n", which is owed to the next run or
          // becomes the statement's ";\n".
          yield statementBytes === 0 ? head : ROW_END;
          yield rows.subarray(0, rows.length - ROW_END.length);
          statementBytes += rows.length;
          if (statementBytes >= DEFAULT_BASE_INSERT_BYTES_MAX) {
            yield STATEMENT_END;
            statementBytes = 0;
          }
        }
        if (piece.foundRows !== undefined) counter.rows = piece.foundRows;
      }
      if (statementBytes > 0) yield STATEMENT_END;
    }
    yield Buffer.from(after, 'utf8');
  }

  /** Ends the snapshot and the session. */
  async close(): Promise<void> {
    this.#child.stdin.end('COMMIT;\n');
    const code = await this.#exited.catch(() => null);
    if (code !== 0) throw this.#clientError(`exited with ${code}`);
  }

  kill(): void {
    this.#child.kill('SIGKILL');
  }

  async #send(sql: string): Promise<void> {
    // Every command is followed by the marker query, which also reports how many rows the
    // previous SELECT returned.
    const text = `${sql}SELECT CONCAT('${MARKER_TEXT}', FOUND_ROWS());\n`;
    if (!this.#child.stdin.write(text)) await Promise.race([once(this.#child.stdin, 'drain'), this.#exited]);
  }

  /**
   * The output of the last command, as runs of complete row lines (each run ending with its
   * newline), up to the marker line, whose row count comes with the last piece.
   */
  async *#answer(): AsyncGenerator<{ rows: Buffer; foundRows?: number }> {
    const pending: Buffer[] = [];
    for (;;) {
      const next = await this.#stdout.next();
      if (next.done === true) throw this.#clientError('ended its output');
      const chunk = next.value;
      const lastNewline = chunk.lastIndexOf(NEWLINE);
      if (lastNewline < 0) {
        pending.push(chunk);
        continue;
      }
      pending.push(chunk.subarray(0, lastNewline + 1));
      const complete = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending);
      pending.length = 0;
      const rest = chunk.subarray(lastNewline + 1);
      const lineStart = complete.lastIndexOf(NEWLINE, complete.length - 2) + 1;
      if (complete.subarray(lineStart, lineStart + MARKER.length).equals(MARKER)) {
        if (rest.length > 0) throw this.#protocolError('output after the end of an answer');
        const foundRows = Number(complete.subarray(lineStart + MARKER.length, complete.length - 1).toString('latin1'));
        yield { rows: complete.subarray(0, lineStart), foundRows };
        return;
      }
      if (rest.length > 0) pending.push(rest);
      yield { rows: complete };
    }
  }

  #rowError(table: DumpTable): HotspareError {
    return new HotspareError('BASE_ROW_TOO_LARGE', `a row of ${table.schema}.${table.name} could not be rendered: its SQL text is longer than the primary's max_allowed_packet`, {
      hint: 'raise max_allowed_packet on the primary and on the standby (a base backup row travels as an SQL literal, with escapes or hex up to twice its stored size), then take the base backup again',
    });
  }

  #protocolError(what: string): HotspareError {
    return new HotspareError('BASE_DUMP', `the mariadb client session of the base backup: ${what}`, { hint: 'see the log; nothing partial was kept' });
  }

  #clientError(what: string): HotspareError {
    const message = this.#stderr().trim().slice(0, TOOL_STDERR_BYTES_MAX);
    return new HotspareError('BASE_DUMP', `the mariadb client session of the base backup ${what}${message === '' ? '' : `: ${message}`}`, {
      hint: 'check the privileges (SELECT, LOCK TABLES, RELOAD) and the message above; nothing partial was kept',
    });
  }
}
