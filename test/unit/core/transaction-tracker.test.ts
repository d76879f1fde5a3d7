import { describe, expect, it } from 'vitest';
import { readEventHeader } from '../../../src/core/binlog-event.js';
import { TransactionTracker } from '../../../src/core/transaction-tracker.js';
import { fixtureEvents } from '../../support/fixtures.js';

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
});
