import { describe, expect, it } from 'vitest';
import { dumpColumn, sqlLiteral } from '../../../src/core/sql-literal.js';

describe('sqlLiteral', () => {
  it('reads FLOAT as DOUBLE and BIT/ENUM/SET as numbers, so no digit is lost', () => {
    expect(dumpColumn('f', 'float', null).selectExpression).toBe('CAST(`f` AS DOUBLE)');
    expect(dumpColumn('b', 'bit', null).selectExpression).toBe('`b`+0');
    expect(dumpColumn('e', 'enum', 'utf8mb4').selectExpression).toBe('`e`+0');
    expect(sqlLiteral(dumpColumn('f', 'float', null), Buffer.from('123.456787109375'))).toBe('123.456787109375');
  });

  it('writes strings as hex in their character set, binary as hex, temporal quoted, NULL as NULL', () => {
    expect(sqlLiteral(dumpColumn('t', 'varchar', 'latin1'), Buffer.from([0xe9, 0x27]))).toBe("_latin1 X'e927'");
    expect(sqlLiteral(dumpColumn('t', 'text', 'utf8mb4'), Buffer.alloc(0))).toBe("_utf8mb4 X''");
    expect(sqlLiteral(dumpColumn('b', 'blob', null), Buffer.from([0, 255]))).toBe("X'00ff'");
    expect(sqlLiteral(dumpColumn('g', 'point', null), Buffer.from([1]))).toBe("X'01'");
    expect(sqlLiteral(dumpColumn('d', 'datetime', null), Buffer.from('0000-00-00 00:00:00'))).toBe("'0000-00-00 00:00:00'");
    expect(sqlLiteral(dumpColumn('u', 'uuid', null), Buffer.from("it's"))).toBe("'it''s'");
    expect(sqlLiteral(dumpColumn('x', 'int', null), null)).toBe('NULL');
  });
});
