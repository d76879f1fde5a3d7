import { describe, expect, it } from 'vitest';
import { readEventHeader } from '../../../src/core/binlog-event.js';
import { TransactionTracker } from '../../../src/core/transaction-tracker.js';
import { fixtureEvents, makeEvent } from '../../support/fixtures.js';
import { EventType } from '../../../src/core/binlog-event.js';

// Goal: boundaries fall exactly after complete transactions, never inside one and never at a
// GTID event. Method: a real MariaDB binlog whose boundaries were read off mariadb-binlog.
describe('TransactionTracker', () => {
  it('finds the transaction boundaries of a real MariaDB binlog', () => {
    const tracker = new TransactionTracker();
    const boundaries: { end: number; gtid: string | undefined }[] = [];
    for (const { offset, bytes } of fixtureEvents()) {
      const header = readEventHeader(bytes);
      if (tracker.observe(bytes, header)) boundaries.push({ end: offset + bytes.length, gtid: tracker.lastGtid });
    }
    expect(boundaries.map((b) => b.end)).toEqual([256, 299, 342, 653, 696, 857, 1112, 1258, 1612, 1659]);
    // The GTID is that of the transaction the boundary completed.
    expect(boundaries.find((b) => b.end === 653)?.gtid).toBe('0-11-10');
    expect(boundaries.find((b) => b.end === 857)?.gtid).toBe('0-11-11');
    expect(boundaries.find((b) => b.end === 1112)?.gtid).toBe('0-11-12');
    expect(boundaries.find((b) => b.end === 1612)?.gtid).toBe('0-11-14');
  });

  it('is inside a transaction between a GTID event and its commit', () => {
    const tracker = new TransactionTracker();
    const inside: number[] = [];
    for (const { offset, bytes } of fixtureEvents()) {
      tracker.observe(bytes, readEventHeader(bytes));
      if (tracker.inTransaction) inside.push(offset);
    }
    // GTID 0-11-14 at 1258 opens the update+delete transaction; it stays open until the XID at 1581.
    expect(inside).toContain(1258);
    expect(inside).toContain(1447);
    expect(inside).not.toContain(1581);
  });

  it('counts ROLLBACK TO a savepoint and XA END as statements inside a transaction, not as its end', () => {
    const query = (sql: string): Buffer => {
      const head = Buffer.alloc(13);
      head.writeUInt8(3, 8);
      return makeEvent(EventType.QUERY, Buffer.concat([head, Buffer.from('app\0'), Buffer.from(sql)]));
    };
    // Type 30: WRITE_ROWS (v2).
    const rows = makeEvent(30, Buffer.alloc(10));
    const prepare = makeEvent(EventType.XA_PREPARE, Buffer.alloc(10));
    const tracker = new TransactionTracker();
    const ends = (events: Buffer[]): boolean[] => events.map((e) => tracker.observe(e, readEventHeader(e)));
    expect(ends([query('BEGIN'), query('SAVEPOINT a'), rows, query('ROLLBACK TO SAVEPOINT a'), rows, query('rollback  to b'), rows, query('COMMIT')])).toEqual([false, false, false, false, false, false, false, true]);
    expect(ends([query("XA START 'x'"), rows, query("XA END 'x'"), prepare, query("XA COMMIT 'x'")])).toEqual([false, false, false, true, true]);
    expect(ends([query('BEGIN'), rows, query('ROLLBACK')])).toEqual([false, false, true]);
  });
});
