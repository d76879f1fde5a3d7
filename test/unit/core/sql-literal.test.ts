import { describe, expect, it } from 'vitest';
import { dumpColumn, tupleExpression } from '../../../src/core/sql-literal.js';

describe('tupleExpression', () => {
  it('reads FLOAT as DOUBLE and BIT/ENUM/SET as numbers, so no digit is lost', () => {
    expect(dumpColumn('f', 'float', null).selectExpression).toBe('CAST(`f` AS DOUBLE)');
    expect(dumpColumn('b', 'bit', null).selectExpression).toBe('`b`+0');
    expect(dumpColumn('e', 'enum', 'utf8mb4').selectExpression).toBe('`e`+0');
    expect(tupleExpression([dumpColumn('f', 'float', null), dumpColumn('b', 'bit', null)])).toBe(
      "CONCAT('(',CAST(IF(`f` IS NULL,'NULL',CAST(`f` AS DOUBLE)) AS BINARY),',',CAST(IF(`b` IS NULL,'NULL',`b`+0) AS BINARY),')')",
    );
  });

  it('quotes strings with their character set (hex where bytes could hide a quote), binary as _binary, temporal quoted', () => {
    const one = (name: string, type: string, charset: string | null): string => tupleExpression([dumpColumn(name, type, charset)]);
    const quoted = (id: string): string => `REPLACE(REPLACE(QUOTE(${id}),CHAR(10),'\\\\n'),CHAR(13),'\\\\r')`;
    // QUOTE()d when the value has no line break, else hex: never REPLACE over a long value.
    // (REPLACE only for a value whose hex would not fit max_allowed_packet.)
    const literal = (id: string, introducer: string): string =>
      `IF(LOCATE(X'0A',CAST(${id} AS BINARY))+LOCATE(X'0D',CAST(${id} AS BINARY))=0,CONCAT('${introducer}',QUOTE(${id})),` +
      `IF(LENGTH(CAST(${id} AS BINARY))<=(@@max_allowed_packet DIV 2)-1024,CONCAT('${introducer} X''',HEX(${id}),''''),CONCAT('${introducer}',${quoted(id)})))`;
    expect(one('t', 'varchar', 'latin1')).toBe(`CONCAT('(',CAST(IF(\`t\` IS NULL,'NULL',${literal('`t`', '_latin1')}) AS BINARY),')')`);
    expect(one('t', 'text', 'gbk')).toBe("CONCAT('(',CAST(IF(`t` IS NULL,'NULL',CONCAT('_gbk X''',HEX(`t`),'''')) AS BINARY),')')");
    expect(one('b', 'blob', null)).toBe(`CONCAT('(',CAST(IF(\`b\` IS NULL,'NULL',${literal('`b`', '_binary')}) AS BINARY),')')`);
    expect(one('g', 'point', null)).toContain("CONCAT('_binary',QUOTE(`g`))");

    expect(one('d', 'datetime', null)).toBe("CONCAT('(',CAST(IF(`d` IS NULL,'NULL',CONCAT('''',`d`,'''')) AS BINARY),')')");
    expect(one('u', 'uuid', null)).toBe(`CONCAT('(',CAST(IF(\`u\` IS NULL,'NULL',${quoted('`u`')}) AS BINARY),')')`);
    expect(one('we`ird', 'int', null)).toBe("CONCAT('(',CAST(IF(`we``ird` IS NULL,'NULL',`we``ird`) AS BINARY),')')");
  });
});
