import { crc32 } from './crc32.js';

/**
 * Binlog event primitives (binlog format v4, MySQL 5.0+ and MariaDB). Only what the archive
 * needs: the 19-byte common header, the CRC32 trailer, and the few payloads that decide
 * file switches and transaction boundaries. Row values are never decoded: the archive keeps
 * the bytes and the server's own tools replay them.
 */

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
export const BINLOG_HEADER_BYTES = 19;
export const BINLOG_CHECKSUM_BYTES = 4;
/** The first event of every file starts right after the 4-byte magic. */
export const BINLOG_FIRST_EVENT_POSITION = 4;
/** A sanity bound: the server never writes an event larger than max_allowed_packet (1 GiB max). */
export const BINLOG_EVENT_BYTES_MAX = 1024 * 1024 * 1024;

export const EventType = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  HEARTBEAT: 27,
  GTID_MYSQL: 33,
  ANONYMOUS_GTID_MYSQL: 34,
  PREVIOUS_GTIDS_MYSQL: 35,
  XA_PREPARE: 38,
  HEARTBEAT_V2: 41,
  ANNOTATE_ROWS: 160,
  BINLOG_CHECKPOINT: 161,
  GTID_MARIADB: 162,
  GTID_LIST_MARIADB: 163,
  /** A QUERY whose text is zlib-compressed (log_bin_compress): a long statement, a DDL say. */
  QUERY_COMPRESSED: 165,
} as const;

/**
 * Events after which a transaction may have committed, whose header time is then the commit
 * time: XID, XA PREPARE, and a statement (COMMIT, or a DDL standing alone; compressed or not).
 */
export function isCommitCandidate(type: number): boolean {
  return type === EventType.XID || type === EventType.QUERY || type === EventType.QUERY_COMPRESSED || type === EventType.XA_PREPARE;
}

/** LOG_EVENT_BINLOG_IN_USE_F: set in the FDE of a file the server still writes. */
export const FLAG_BINLOG_IN_USE = 0x0001;
/** LOG_EVENT_ARTIFICIAL_F: made up by the dump thread, not in any file. */
export const FLAG_ARTIFICIAL = 0x0020;
/** Offset of the 2-byte flags field within an event. */
export const HEADER_FLAGS_OFFSET = 17;

/** MariaDB GTID event flags (sql/log_event.h). */
const MARIADB_GTID_FL_STANDALONE = 0x01;

export interface EventHeader {
  /** Seconds since the epoch when the statement began (the commit time for a commit marker). */
  timestampS: number;
  type: number;
  serverId: number;
  /** Whole event length, header and checksum included. */
  sizeBytes: number;
  /** Offset just past this event in its file; 0 for artificial events (and some MariaDB 11.4+ events). */
  nextPosition: number;
  flags: number;
}

export function readEventHeader(event: Buffer): EventHeader {
  return {
    timestampS: event.readUInt32LE(0),
    type: event.readUInt8(4),
    serverId: event.readUInt32LE(5),
    sizeBytes: event.readUInt32LE(9),
    nextPosition: event.readUInt32LE(13),
    flags: event.readUInt16LE(HEADER_FLAGS_OFFSET),
  };
}

/**
 * The CRC-32 of any message followed by its own CRC-32 stored little-endian (as the binlog
 * stores it) is this constant, and no other trailer gives it: checking an event is one pass
 * over all of it, with no view of its body to make.
 */
export const CRC32_RESIDUE = 0x2144df1c;

/** True when the CRC32 trailer matches the rest of the event. */
export function eventChecksumValid(event: Buffer): boolean {
  if (event.length < BINLOG_HEADER_BYTES + BINLOG_CHECKSUM_BYTES) return false;
  return crc32(event) === CRC32_RESIDUE;
}

/** The payload between the common header and the CRC32 trailer. */
export function eventPayload(event: Buffer): Buffer {
  return event.subarray(BINLOG_HEADER_BYTES, event.length - BINLOG_CHECKSUM_BYTES);
}

/** A ROTATE event names the next file and the position to continue at. */
export function parseRotate(event: Buffer): { nextFile: string; position: number } {
  const payload = eventPayload(event);
  return {
    position: Number(payload.readBigUInt64LE(0)),
    nextFile: payload.subarray(8).toString('latin1'),
  };
}

export function isArtificial(header: EventHeader): boolean {
  return (header.flags & FLAG_ARTIFICIAL) !== 0;
}

/** Query text of a QUERY event (v4 post-header is 13 bytes). */
export function queryText(event: Buffer): string {
  const payload = eventPayload(event);
  const dbLength = payload.readUInt8(8);
  const statusVarsLength = payload.readUInt16LE(11);
  const start = 13 + statusVarsLength + dbLength + 1;
  return payload.subarray(start).toString('utf8');
}

/** A MariaDB GTID event: `domain-server-sequence`, and whether it is a standalone statement (DDL). */
export function parseMariadbGtid(event: Buffer, header: EventHeader): { gtid: string; standalone: boolean } {
  const payload = eventPayload(event);
  const sequence = payload.readBigUInt64LE(0);
  const domain = payload.readUInt32LE(8);
  const flags = payload.readUInt8(12);
  return {
    gtid: `${domain}-${header.serverId}-${sequence}`,
    standalone: (flags & MARIADB_GTID_FL_STANDALONE) !== 0,
  };
}

/** Returns a copy of an FDE with the in-use flag cleared and the CRC recomputed. */
export function withInUseCleared(event: Buffer): Buffer {
  const copy = Buffer.from(event);
  const flags = copy.readUInt16LE(HEADER_FLAGS_OFFSET) & ~FLAG_BINLOG_IN_USE;
  copy.writeUInt16LE(flags, HEADER_FLAGS_OFFSET);
  copy.writeUInt32LE(crc32(copy.subarray(0, copy.length - BINLOG_CHECKSUM_BYTES)), copy.length - BINLOG_CHECKSUM_BYTES);
  return copy;
}
