/**
 * Exact SQL literals for base-backup rows. The dump reads every column in a form that keeps
 * all its bits (research: a plain text dump prints FLOAT with six digits and changes data):
 * FLOAT as CAST(col AS DOUBLE) (the shortest double text round-trips to the same float),
 * BIT/ENUM/SET as their numbers, strings as hex with their character set, binary and
 * geometry as hex, temporal values as quoted text in UTC. Pure: values arrive as the raw
 * bytes the server sent with character_set_results=binary.
 */

export type ColumnKind = 'number' | 'temporal' | 'text' | 'binary' | 'quoted';

export interface DumpColumn {
  name: string;
  kind: ColumnKind;
  /** Character set of a text column, for its introducer. */
  charset: string | undefined;
  /** What the dump SELECTs for this column (an expression that loses nothing). */
  selectExpression: string;
}

const NUMBER_TYPES = new Set(['tinyint', 'smallint', 'mediumint', 'int', 'integer', 'bigint', 'decimal', 'numeric', 'double', 'real']);
const TEMPORAL_TYPES = new Set(['date', 'datetime', 'timestamp', 'time', 'year']);
const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'json']);
const BINARY_TYPES = new Set([
  'binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob',
  'geometry', 'point', 'linestring', 'polygon', 'multipoint', 'multilinestring', 'multipolygon', 'geometrycollection',
]);

export function quoteIdentifier(name: string): string {
  return `\`${name.replaceAll('`', '``')}\``;
}

/** Classifies an information_schema.COLUMNS row into how the dump reads and writes it. */
export function dumpColumn(name: string, dataType: string, charset: string | null): DumpColumn {
  const type = dataType.toLowerCase();
  const id = quoteIdentifier(name);
  if (type === 'float') return { name, kind: 'number', charset: undefined, selectExpression: `CAST(${id} AS DOUBLE)` };
  if (type === 'bit' || type === 'enum' || type === 'set') return { name, kind: 'number', charset: undefined, selectExpression: `${id}+0` };
  if (NUMBER_TYPES.has(type)) return { name, kind: 'number', charset: undefined, selectExpression: id };
  if (TEMPORAL_TYPES.has(type)) return { name, kind: 'temporal', charset: undefined, selectExpression: id };
  if (TEXT_TYPES.has(type) && charset !== null && charset !== 'binary') return { name, kind: 'text', charset, selectExpression: id };
  if (BINARY_TYPES.has(type) || TEXT_TYPES.has(type)) return { name, kind: 'binary', charset: undefined, selectExpression: id };
  // inet4, inet6, uuid and any type added later: their text form is their input form.
  return { name, kind: 'quoted', charset: undefined, selectExpression: id };
}

/** One value as an SQL literal; `raw` is null for SQL NULL. */
export function sqlLiteral(column: DumpColumn, raw: Buffer | null): string {
  if (raw === null) return 'NULL';
  switch (column.kind) {
    case 'number':
      return raw.toString('latin1');
    case 'temporal':
      return `'${raw.toString('latin1')}'`;
    case 'text':
      return `_${column.charset} X'${raw.toString('hex')}'`;
    case 'binary':
      return `X'${raw.toString('hex')}'`;
    case 'quoted':
      return `'${escapeString(raw.toString('utf8'))}'`;
  }
}

function escapeString(text: string): string {
  return text.replace(/[\\'\0\n\r\x1a]/g, (c) => ({ '\\': '\\\\', "'": "''", '\0': '\\0', '\n': '\\n', '\r': '\\r', '\x1a': '\\Z' })[c] ?? c);
}
