import type { Connection as CoreConnection } from 'mysql2';
import type { Connection } from 'mysql2/promise';
import { DEFAULT_BASE_INSERT_BYTES_MAX, DEFAULT_BASE_ROW_STREAM_HIGH_WATER_ROWS } from '../../config/defaults.js';
import { quoteIdentifier, sqlLiteral } from '../../core/sql-literal.js';
import type { DumpTable } from './table-inventory.js';

/** The first lines of every data file: a session in which the literals mean exactly what they say. */
export const DATA_FILE_PROLOGUE = [
  '-- hotspare base backup rows: exact literals (see ARCHITECTURE.md, base backups)',
  "SET NAMES utf8mb4, time_zone = '+00:00', sql_mode = 'NO_AUTO_VALUE_ON_ZERO', foreign_key_checks = 0, unique_checks = 0;",
  '',
].join('\n');

/**
 * Streams one table's rows as multi-row INSERT statements, reading them over `conn` (inside
 * whatever lock or snapshot the caller holds). Values arrive as raw bytes
 * (character_set_results=binary) and are rendered by sqlLiteral; memory stays bounded by the
 * row stream's high-water mark and one statement.
 */
export async function* dumpTableRows(conn: Connection, table: DumpTable, counter: { rows: number }): AsyncGenerator<string> {
  const target = `${quoteIdentifier(table.schema)}.${quoteIdentifier(table.name)}`;
  yield `-- ${table.schema}.${table.name} (${table.engine})\n`;
  if (table.columns.length === 0) return;
  const columnList = table.columns.map((c) => quoteIdentifier(c.name)).join(',');
  const head = `INSERT INTO ${target} (${columnList}) VALUES\n`;
  const sql = `SELECT ${table.columns.map((c) => c.selectExpression).join(', ')} FROM ${target}`;
  // The promise wrapper has no streaming query; its underlying connection does (untyped field).
  const core = (conn as unknown as { connection: CoreConnection }).connection;
  const stream = core
    .query({ sql, rowsAsArray: true, typeCast: (field: { buffer(): Buffer | null }) => field.buffer() })
    .stream({ highWaterMark: DEFAULT_BASE_ROW_STREAM_HIGH_WATER_ROWS });
  let statement = '';
  for await (const row of stream as AsyncIterable<Array<Buffer | null>>) {
    let tuple = '(';
    for (let i = 0; i < table.columns.length; i += 1) {
      const column = table.columns[i];
      if (column === undefined) continue;
      if (i > 0) tuple += ',';
      tuple += sqlLiteral(column, row[i] ?? null);
    }
    tuple += ')';
    counter.rows += 1;
    if (statement === '') statement = head + tuple;
    else statement += `,\n${tuple}`;
    if (statement.length >= DEFAULT_BASE_INSERT_BYTES_MAX) {
      yield `${statement};\n`;
      statement = '';
    }
  }
  if (statement !== '') yield `${statement};\n`;
}
