/**
 * Exact SQL literals for base-backup rows, rendered by the server. Every column is read in a
 * form that keeps all its bits (research: a plain text dump prints FLOAT with six digits and
 * changes data): FLOAT as CAST(col AS DOUBLE) (the shortest double text round-trips to the same
 * float), BIT/ENUM/SET as their numbers, strings quoted with their character set introducer
 * (hex for character sets whose bytes could hide a quote, and for values with line breaks),
 * binary and geometry as _binary strings, temporal values as quoted text in UTC (the session's
 * time zone is +00:00). A literal takes the server time linear in its value, except in a row
 * too large with its line-broken values in hex (see tupleExpression). Pure.
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

/**
 * A SELECT expression that makes the server render a whole row as the SQL tuple
 * `(v1,v2,...)` in exact literals: the base backup then only frames the
 * lines it receives into INSERT statements, with no per-value work on our side. Every value
 * is `IF(col IS NULL, 'NULL', literal)`, so the expression is NULL only when the server could
 * not build a literal (longer than max_allowed_packet): the caller must treat a row that is not
 * a tuple as an error, never write it.
 */
export function tupleExpression(columns: readonly DumpColumn[]): string {
  const row = (breaks: LineBreaks): string => {
    const parts = columns.map((column) => {
      const id = quoteIdentifier(column.name);
      // As bytes: CONCAT over columns of several character sets converts them all to the widest
      // (a latin1 é would come out as utf8's two bytes behind its _latin1 introducer, and restore
      // as two characters). Binary, each literal keeps its own column's bytes.
      return `CAST(IF(${id} IS NULL,'NULL',${serverLiteral(column, id, breaks)}) AS BINARY)`;
    });
    return `CONCAT('(',${parts.join(",',',")},')')`;
  };
  // Values with line breaks go as hex, twice their size: a row whose hex form does not fit
  // max_allowed_packet (the server returns NULL for it) is rendered again with them escaped,
  // as large as before hex was used, so no row that fits the primary's packet fails to dump.
  // COALESCE renders the second form only for such a row.
  const hasStrings = columns.some((c) => c.kind === 'text' || c.kind === 'binary');
  return hasStrings ? `COALESCE(${row('hex')},${row('escaped')})` : row('hex');
}

/** How a string value's line breaks are kept off the row's line: the value in hex, or escaped with REPLACE. */
type LineBreaks = 'hex' | 'escaped';

/**
 * Character sets whose raw bytes the restore may carry inside a quoted literal: read with a
 * utf8mb4 connection, none of their bytes can hide a quote or a backslash (as the second byte
 * of gbk, sjis or big5 characters can), so QUOTE's escaping is enough. Others travel as hex.
 */
const QUOTABLE_CHARSETS = new Set(['utf8mb4', 'utf8mb3', 'utf8', 'latin1', 'ascii', 'binary']);

/**
 * QUOTE() escapes quotes, backslashes, NUL and Ctrl-Z; line breaks are escaped too, so every
 * row is one line. REPLACE makes room for each replacement by moving the rest of the value, a
 * time that grows with the value's length times its line breaks (measured: eight 1 MiB random
 * blobs took 10 s, eight 1 MB texts of short lines 505 s). So only for the short values of the
 * 'quoted' kind (inet, uuid), and in a row too large with its values with line breaks in hex.
 */
function quotedEscapingBreaks(id: string): string {
  return `REPLACE(REPLACE(QUOTE(${id}),CHAR(10),'\\\\n'),CHAR(13),'\\\\r')`;
}

/**
 * A string literal behind `introducer`: QUOTE()d when the value has no line break (a row must
 * stay one line), else in hex, in time linear in the value (REGEXP_REPLACE was no better than
 * REPLACE on text: still running after 700 s on the eight texts above), or escaped
 * (quotedEscapingBreaks) in a row too large with its hex. The test is on the value's bytes: in
 * binary and in the character sets that are quoted (QUOTABLE_CHARSETS), bytes 10 and 13 are
 * only ever line feed and carriage return.
 */
function stringLiteral(id: string, introducer: string, breaks: LineBreaks): string {
  const bytes = `CAST(${id} AS BINARY)`;
  const withBreaks = breaks === 'hex' ? hexLiteral(id, introducer) : `CONCAT('${introducer}',${quotedEscapingBreaks(id)})`;
  return `IF(LOCATE(X'0A',${bytes})+LOCATE(X'0D',${bytes})=0,CONCAT('${introducer}',QUOTE(${id})),${withBreaks})`;
}

function hexLiteral(id: string, introducer: string): string {
  return `CONCAT('${introducer} X''',HEX(${id}),'''')`;
}

function serverLiteral(column: DumpColumn, id: string, breaks: LineBreaks): string {
  switch (column.kind) {
    case 'number':
      return column.selectExpression;
    case 'temporal':
      return `CONCAT('''',${id},'''')`;
    case 'text': {
      const charset = column.charset ?? 'binary';
      return QUOTABLE_CHARSETS.has(charset) ? stringLiteral(id, `_${charset}`, breaks) : hexLiteral(id, `_${charset}`);
    }
    case 'binary':
      return stringLiteral(id, '_binary', breaks);
    case 'quoted':
      return quotedEscapingBreaks(id);
  }
}
