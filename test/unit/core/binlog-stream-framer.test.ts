import { describe, expect, it } from 'vitest';
import { BinlogStreamFramer } from '../../../src/core/binlog-stream-framer.js';
import { HotspareError } from '../../../src/core/errors.js';
import { nextBinlogName } from '../../../src/core/binlog-position.js';
import { artificialRotate, fixtureEvents, FIXTURE_NAME, makeEvent } from '../../support/fixtures.js';

// Goal: what the dump sends becomes exactly the file's bytes at the right offsets; what the
// server makes up is dropped; damage and holes are errors. Method: real events from a fixture,
// wrapped the way MariaDB's dump thread wraps them.
describe('BinlogStreamFramer', () => {
  const events = fixtureEvents();

  it('frames a dump from the start of a file', () => {
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: 4 });
    expect(framer.frame(artificialRotate(FIXTURE_NAME, 4))).toMatchObject({ kind: 'skip', reason: 'artificial' });
    const records = events.map((e) => framer.frame(e.bytes));
    expect(records.every((r) => r.kind === 'record')).toBe(true);
    expect(records.map((r) => (r.kind === 'record' ? r.record.offset : -1))).toEqual(events.map((e) => e.offset));
    // After the real rotate, the framer stands at the start of the next file.
    expect(framer.next).toEqual({ file: 'mysql-bin.000005', position: 4 });
  });

  it('drops the format event the server re-sends on a mid-file start', () => {
    const start = events[5];
    if (start === undefined) throw new Error('fixture too short');
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: start.offset });
    framer.frame(artificialRotate(FIXTURE_NAME, start.offset));
    const fde = Buffer.from(events[0]?.bytes ?? Buffer.alloc(0));
    fde.writeUInt32LE(0, 13);
    const resent = makeEvent(15, fde.subarray(19, fde.length - 4), { nextPosition: 0 });
    expect(framer.frame(resent)).toMatchObject({ kind: 'skip', reason: 'resent-format' });
    expect(framer.frame(start.bytes)).toMatchObject({ kind: 'record', record: { offset: start.offset } });
  });

  it('drops heartbeats and keeps the position', () => {
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: 4 });
    framer.frame(artificialRotate(FIXTURE_NAME, 4));
    framer.frame(events[0]?.bytes ?? Buffer.alloc(0));
    expect(framer.frame(makeEvent(27, Buffer.from(FIXTURE_NAME)))).toEqual({ kind: 'skip', reason: 'heartbeat', file: FIXTURE_NAME, position: 256 });
  });

  it('after the STOP of a server shutdown, goes on at the next file\'s start (a restarted dump asks there, not for the end of a file the restart may purge)', () => {
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: 4 });
    framer.frame(artificialRotate(FIXTURE_NAME, 4));
    // The fixture's events up to its last transaction (its closing ROTATE left out), then STOP.
    const body = events.filter((e) => e.offset < 1612);
    for (const e of body) framer.frame(e.bytes);
    const stop = framer.frame(makeEvent(3, Buffer.alloc(0), { nextPosition: 1612 + 23, timestampS: 1 }));
    expect(stop).toMatchObject({ kind: 'record', record: { file: FIXTURE_NAME, offset: 1612 } });
    expect(framer.next).toEqual({ file: nextBinlogName(FIXTURE_NAME), position: 4 });
    // The server's own rotate on its restart names that point: nothing changes.
    expect(framer.frame(artificialRotate(nextBinlogName(FIXTURE_NAME), 4))).toMatchObject({ kind: 'skip', reason: 'artificial' });
    expect(framer.next).toEqual({ file: nextBinlogName(FIXTURE_NAME), position: 4 });
  });

  it('refuses an event with a damaged CRC32', () => {
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: 4 });
    const damaged = Buffer.from(events[0]?.bytes ?? Buffer.alloc(0));
    damaged[30] = (damaged[30] ?? 0) ^ 0xff;
    expect(() => framer.frame(damaged)).toThrowError(expect.objectContaining({ code: 'BINLOG_CHECKSUM_MISMATCH' }) as HotspareError);
  });

  it('refuses an event that does not start where the previous one ended', () => {
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: 4 });
    framer.frame(events[0]?.bytes ?? Buffer.alloc(0));
    expect(() => framer.frame(events[2]?.bytes ?? Buffer.alloc(0))).toThrowError(expect.objectContaining({ code: 'BINLOG_CONTINUITY' }) as HotspareError);
  });

  it('keeps transaction state when a restarted dump resumes mid-transaction', () => {
    const framer = new BinlogStreamFramer({ file: FIXTURE_NAME, position: 4 });
    const inside = events.findIndex((e) => e.offset === 1300);
    for (const e of events.slice(0, inside)) framer.frame(e.bytes);
    // The dump restarts exactly here: the server names the same file and position.
    framer.frame(artificialRotate(FIXTURE_NAME, 1300));
    const rest = events.slice(inside).map((e) => framer.frame(e.bytes));
    const boundaries = rest.flatMap((r) => (r.kind === 'record' && r.record.boundary ? [r.record.offset + r.record.bytes.length] : []));
    expect(boundaries).toEqual([1612, 1659]);
  });
});
