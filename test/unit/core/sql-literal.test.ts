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
    // QUOTE()d when the value has no line break, else hex: never REPLACE over a long value...
    const noBreaks = (id: string): string => `LOCATE(X'0A',CAST(${id} AS BINARY))+LOCATE(X'0D',CAST(${id} AS BINARY))=0`;
    const hex = (id: string, introducer: string): string => `IF(${noBreaks(id)},CONCAT('${introducer}',QUOTE(${id})),CONCAT('${introducer} X''',HEX(${id}),''''))`;
    // ...except in the row's second form, rendered only when the first is too large (NULL).
    const escaped = (id: string, introducer: string): string => `IF(${noBreaks(id)},CONCAT('${introducer}',QUOTE(${id})),CONCAT('${introducer}',${quoted(id)}))`;
    const tuple = (id: string, literal: string): string => `CONCAT('(',CAST(IF(${id} IS NULL,'NULL',${literal}) AS BINARY),')')`;
    expect(one('t', 'varchar', 'latin1')).toBe(`COALESCE(${tuple('`t`', hex('`t`', '_latin1'))},${tuple('`t`', escaped('`t`', '_latin1'))})`);
    expect(one('t', 'text', 'gbk')).toBe(`COALESCE(${tuple('`t`', "CONCAT('_gbk X''',HEX(`t`),'''')")},${tuple('`t`', "CONCAT('_gbk X''',HEX(`t`),'''')")})`);
    expect(one('b', 'blob', null)).toBe(`COALESCE(${tuple('`b`', hex('`b`', '_binary'))},${tuple('`b`', escaped('`b`', '_binary'))})`);
    expect(one('g', 'point', null)).toContain("CONCAT('_binary',QUOTE(`g`))");
    // A row without strings has one form.
    expect(one('d', 'datetime', null)).toBe("CONCAT('(',CAST(IF(`d` IS NULL,'NULL',CONCAT('''',`d`,'''')) AS BINARY),')')");
    expect(one('u', 'uuid', null)).toBe(`CONCAT('(',CAST(IF(\`u\` IS NULL,'NULL',${quoted('`u`')}) AS BINARY),')')`);
    expect(one('we`ird', 'int', null)).toBe("CONCAT('(',CAST(IF(`we``ird` IS NULL,'NULL',`we``ird`) AS BINARY),')')");
  });
});
