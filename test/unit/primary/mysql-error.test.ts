import { describe, expect, it } from 'vitest';
import { BINLOG_DISABLED_HINT, fromMysqlError } from '../../../src/primary/mysql-error.js';

/** Goal: what the server or the driver says becomes the code an operator acts on. */
describe('fromMysqlError', () => {
  it('a query on a connection that died (mysql2 gives no code) is PRIMARY_UNREACHABLE, not a bare PRIMARY_ERROR', () => {
    const err = fromMysqlError(new Error("Can't add new command when connection is in closed state"), 'head check', '127.0.0.1:3306');
    expect(err.code).toBe('PRIMARY_UNREACHABLE');
    expect(err.message).toBe('head check: cannot reach the primary at 127.0.0.1:3306 (connection closed)');
    // A running agent's head checks and dumps do retry (its start does not: SyncAgent.preflight says so).
    expect(err.hint).toMatch(/^the agent retries; /);
  });

  it('network codes, access, privileges and a purged binlog keep their own codes', () => {
    const cases: Array<[object, string]> = [
      [Object.assign(new Error('connect ENOTFOUND db.example'), { code: 'ENOTFOUND' }), 'PRIMARY_UNREACHABLE'],
      [Object.assign(new Error('Connection lost'), { code: 'PROTOCOL_CONNECTION_LOST' }), 'PRIMARY_UNREACHABLE'],
      [Object.assign(new Error('Access denied'), { errno: 1045 }), 'PRIMARY_AUTH'],
      [Object.assign(new Error('Access denied; you need BINLOG MONITOR'), { errno: 1227 }), 'PRIVILEGES'],
      [Object.assign(new Error('Could not find first log file name in binary log index file'), { errno: 1236 }), 'BINLOG_PURGED'],
      [Object.assign(new Error('Table x is full'), { errno: 1114, code: 'ER_RECORD_FILE_FULL' }), 'PRIMARY_ERROR'],
    ];
    for (const [raw, code] of cases) expect(fromMysqlError(raw, 'q', 'h:1').code).toBe(code);
  });

  it("a primary without binlog (ER_NO_BINARY_LOGGING, 1381) is BINLOG_DISABLED with the preflight's hint, not PRIMARY_ERROR", () => {
    const raw = Object.assign(new Error('You are not using binary logging'), { errno: 1381, code: 'ER_NO_BINARY_LOGGING', sqlState: 'HY000' });
    const err = fromMysqlError(raw, 'list binlogs', 'h:1');
    expect(err.code).toBe('BINLOG_DISABLED');
    expect(err.message).toBe('list binlogs: the primary does not write a binlog (You are not using binary logging)');
    expect(err.hint).toBe(BINLOG_DISABLED_HINT);
    expect(err.hint).toContain('log_bin');
  });
});
