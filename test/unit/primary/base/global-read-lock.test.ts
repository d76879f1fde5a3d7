import { describe, expect, it } from 'vitest';
import { holdsUpGlobalReadLock } from '../../../../src/primary/base/global-read-lock.js';

/**
 * Goal: the base's look at the primary's running statements tells what makes FLUSH TABLES WITH
 * READ LOCK wait (writes, locking reads; on MySQL every statement) from what does not (MariaDB's
 * plain reads), whatever comments lead them, and quickly even for text another session made
 * hostile. Method: the pure classifier on statement texts as PROCESSLIST shows them.
 */
describe('holdsUpGlobalReadLock', () => {
  it('takes plain reads for harmless on MariaDB, whatever leads them', () => {
    for (const sql of ['select 1', 'SELECT SLEEP(8) FROM app.report', '/* report */ SELECT 1', '-- c\nSELECT 1', '# c\nSELECT 1', '(SELECT 1) UNION (SELECT 2)', 'WITH RECURSIVE x AS (SELECT 1) SELECT * FROM x', 'SHOW PROCESSLIST', 'SELECT a INTO @x FROM t']) {
      expect(holdsUpGlobalReadLock(sql, false), sql).toBe(false);
    }
  });

  it('takes writes, locking reads and what may write for writers', () => {
    for (const sql of ['UPDATE app.report SET id = id WHERE SLEEP(6) = 0', 'INSERT INTO t SELECT * FROM u', 'REPLACE INTO t VALUES (1)', "LOAD DATA INFILE 'x' INTO TABLE t", '/* a */ /* b */ DELETE FROM t', 'SELECT * FROM t FOR UPDATE', 'SELECT * FROM t FOR UPDATE NOWAIT', 'SELECT * FROM t LOCK IN SHARE MODE', 'ANALYZE UPDATE t SET a = 1', 'DO f()', 'CALL p()', 'ALTER TABLE t ADD COLUMN c INT']) {
      expect(holdsUpGlobalReadLock(sql, false), sql).toBe(true);
    }
  });

  it('on MySQL (reads hold the lock up too), every statement counts', () => {
    expect(holdsUpGlobalReadLock('SELECT 1', true)).toBe(true);
  });

  it('classifies a statement led by many comments without backtracking for ever', () => {
    // A lazy comment pattern took ~56 ms at 22 such comments and doubled with each one.
    expect(holdsUpGlobalReadLock(`${'/*a*/ '.repeat(60)}UPDATE t SET a = 1`, false)).toBe(true);
    expect(holdsUpGlobalReadLock(`${'/*a*/ '.repeat(60)}SELECT 1`, false)).toBe(false);
  });
});
