import { readFileSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { PrimaryIdentity } from '../../src/archive/archive-identity.js';
import { readEventHeader } from '../../src/core/binlog-event.js';

/** A primary's identity for unit tests that open an archive without a server. */
export const TEST_PRIMARY_IDENTITY: PrimaryIdentity = { serverId: 1, serverUuid: null, flavor: 'mariadb', version: '10.11', hostname: 'primary', binlogBasename: '/var/lib/mysql/mysql-bin' };

/**
 * A real MariaDB 10.11 binlog file, captured from a sandbox server: an InnoDB transaction, a
 * DDL, a MyISAM insert (GTID + rows + COMMIT query), another DDL, a two-statement transaction
 * (update + delete), and the rotate to the next file.
 */
export const FIXTURE_PATH = new URL('../fixtures/binlog/mariadb-10.11-mixed.000004', import.meta.url).pathname;
export const FIXTURE_NAME = 'mysql-bin.000004';

/** The fixture's events with their offsets. */
export function fixtureEvents(): { offset: number; bytes: Buffer }[] {
  const file = readFileSync(FIXTURE_PATH);
  const events: { offset: number; bytes: Buffer }[] = [];
  let offset = 4;
  while (offset < file.length) {
    const size = readEventHeader(file.subarray(offset, offset + 19)).sizeBytes;
    events.push({ offset, bytes: Buffer.from(file.subarray(offset, offset + size)) });
    offset += size;
  }
  return events;
}

/** Builds an event with a valid CRC32 (for artificial rotates, heartbeats, damaged copies). */
export function makeEvent(type: number, payload: Buffer, options: { flags?: number; nextPosition?: number; timestampS?: number } = {}): Buffer {
  const size = 19 + payload.length + 4;
  const event = Buffer.alloc(size);
  event.writeUInt32LE(options.timestampS ?? 0, 0);
  event.writeUInt8(type, 4);
  event.writeUInt32LE(11, 5);
  event.writeUInt32LE(size, 9);
  event.writeUInt32LE(options.nextPosition ?? 0, 13);
  event.writeUInt16LE(options.flags ?? 0, 17);
  payload.copy(event, 19);
  event.writeUInt32LE(crc32(event.subarray(0, size - 4)), size - 4);
  return event;
}

/** The artificial ROTATE a dump starts with: names the file and position. */
export function artificialRotate(file: string, position: number): Buffer {
  const payload = Buffer.alloc(8 + file.length);
  payload.writeBigUInt64LE(BigInt(position), 0);
  payload.write(file, 8, 'latin1');
  return makeEvent(4, payload, { flags: 0x20 });
}
