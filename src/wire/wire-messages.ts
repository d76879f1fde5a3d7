import { z } from 'zod';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import type { BinlogRecord, DurablePoint, ResumePoint } from '../core/binlog-record.js';
import { wireError } from './wire-frame.js';
import { SegmentReader } from './segment-reader.js';

/**
 * Payload codecs of the wire protocol. Control frames are JSON (small, validated with zod
 * here, so nothing a peer sends reaches the rest of the code unchecked); events and file
 * data are binary so that binlog bytes are never copied into JSON. Pure: no I/O.
 */

const binlogName = z.string().min(1).max(255);
const position = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const optionalText = z.string().max(1024).optional();

const identitySchema = z.object({
  serverId: z.number().int().min(0).max(4294967295),
  serverUuid: z.string().max(64).nullable(),
  flavor: z.enum(['mariadb', 'mysql']),
  version: z.string().max(128),
  hostname: z.string().max(255),
  binlogBasename: z.string().max(255),
});

export const helloSchema = z.object({
  protocol: z.number().int(),
  token: z.string().max(4096),
  primary: identitySchema,
  agentId: z.string().min(1).max(128),
});
export type Hello = { protocol: number; token: string; primary: PrimaryIdentity; agentId: string };

const resumeSchema = z.object({
  file: binlogName,
  position,
  commitTimestampS: z.number().optional(),
  gtid: optionalText,
});
export const welcomeSchema = z.object({ protocol: z.number().int(), resume: resumeSchema.nullable(), volume: z.unknown().optional() });
export interface Welcome {
  protocol: number;
  resume: ResumePoint | null;
  /** The receiver's archive volume (optional in version 3; see AckVolume). */
  volume?: AckVolume | undefined;
}

/** Why a receiver refused a handshake. */
export const REFUSAL_CODES = ['BAD_TOKEN', 'ARCHIVE_FOREIGN', 'ARCHIVE_LOCKED', 'ARCHIVE_VERSION', 'ARCHIVE_PROMOTED', 'VERSION', 'RECEIVER_ERROR'] as const;
export type RefusalCode = (typeof REFUSAL_CODES)[number];

/** A code that names the archive's own state (kept as it is across the wire: an operator must act on the archive). */
export function isArchiveCode(code: string): boolean {
  return code.startsWith('ARCHIVE_') || code === 'DISK_FULL';
}

/**
 * The agent's code for a receiver's refusal: an archive's code as it is; RECEIVER_ERROR (the
 * receiver stopping, or failing in a way of its own) as RECEIVER_UNAVAILABLE, which passes
 * with a reconnect like an unreachable receiver; anything else (a wrong token, another
 * protocol version) as RECEIVER_REFUSED, which an operator must fix.
 */
export function agentCodeForRefusal(code: string): string {
  if (isArchiveCode(code)) return code;
  return code === 'RECEIVER_ERROR' ? 'RECEIVER_UNAVAILABLE' : 'RECEIVER_REFUSED';
}
/** A refusal, or a session error the receiver reports before it drops the connection. */
export const problemSchema = z.object({ code: z.string().max(64), message: z.string().max(4096), hint: z.string().max(4096) });
export type Problem = z.output<typeof problemSchema>;

/**
 * The receiver's archive volume as it last read it, `ageMs` ago. Optional in version 3: a
 * receiver from before it sends none, and an agent from before it ignores it (zod drops keys it
 * does not know), so neither side needs the other upgraded first.
 */
const ackVolumeSchema = z.object({
  totalBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  freeBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ageMs: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
});
export type AckVolume = z.output<typeof ackVolumeSchema>;

export const ackSchema = z.object({
  file: binlogName,
  position,
  boundaryFile: binlogName,
  boundaryPosition: position,
  commitTimestampS: z.number().optional(),
  gtid: optionalText,
  // Read on its own (decodeAck): advisory, it never fails the durable point beside it.
  volume: z.unknown().optional(),
});
/** What an ACK says: the durable point, and the volume when the receiver read it. */
export type Ack = DurablePoint & { volume?: AckVolume };

/**
 * A volume reading as it travels: whole bytes within what JSON numbers carry exactly, and its age
 * instead of its time (the two hosts' clocks need not agree).
 */
export function volumeForWire(reading: { totalBytes: number; freeBytes: number; atMs: number }, nowMs: number): AckVolume {
  const whole = (n: number): number => Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.floor(n)));
  return { totalBytes: whole(reading.totalBytes), freeBytes: whole(reading.freeBytes), ageMs: whole(nowMs - reading.atMs) };
}

/** A volume field as the receiver sends it (ACK, WELCOME, PING), or undefined: never a throw, it is advisory. */
function readVolume(value: unknown): AckVolume | undefined {
  if (value === undefined) return undefined;
  const volume = ackVolumeSchema.safeParse(value);
  return volume.success ? volume.data : undefined;
}

/**
 * A receiver's PING may carry `{"volume": ...}`, so that an idle session (no ACKs) still brings
 * the volume's figures; a PING of a peer from before it is empty. Whatever it holds, a PING
 * never drops the connection: undefined when it says nothing usable.
 */
export function decodePingVolume(payload: Buffer): AckVolume | undefined {
  if (payload.length === 0) return undefined;
  try {
    return readVolume((JSON.parse(payload.toString('utf8')) as { volume?: unknown } | null)?.volume);
  } catch {
    return undefined;
  }
}

export function encodeJson(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

/** Parses a JSON control payload against its schema; anything else is a protocol error. */
export function decodeJson<T>(payload: Buffer, schema: z.ZodType<T>, what: string): T {
  let data: unknown;
  try {
    data = JSON.parse(payload.toString('utf8'));
  } catch {
    throw wireError(`${what} is not JSON`);
  }
  const result = schema.safeParse(data);
  if (!result.success) throw wireError(`${what} is malformed: ${result.error.issues[0]?.message ?? 'invalid'} at ${result.error.issues[0]?.path.join('.') ?? ''}`);
  return result.data;
}

export function decodeAck(payload: Buffer): { point: DurablePoint; volume: AckVolume | undefined } {
  const a = decodeJson(payload, ackSchema, 'ACK');
  // A volume that is not one (a receiver's statfs beyond 2^53 bytes, a bug) is left out: the
  // durable point must still count, or the session would end at every ACK.
  return {
    point: { file: a.file, position: a.position, boundaryFile: a.boundaryFile, boundaryPosition: a.boundaryPosition, commitTimestampS: a.commitTimestampS, gtid: a.gtid },
    volume: readVolume(a.volume),
  };
}

export function decodeWelcome(payload: Buffer): Welcome {
  const w = decodeJson(payload, welcomeSchema, 'WELCOME');
  const r = w.resume;
  return { protocol: w.protocol, resume: r === null ? null : { file: r.file, position: r.position, commitTimestampS: r.commitTimestampS, gtid: r.gtid }, volume: readVolume(w.volume) };
}

const FLAG_BOUNDARY = 0x01;
const FLAG_GTID = 0x02;
const OFFSET_BYTES = 6;
/** flags, file length, offset, timestamp, GTID length, event length: an entry without its strings. */
const ENTRY_FIXED_BYTES = 1 + 1 + OFFSET_BYTES + 4 + 1 + 4;

/**
 * EVENTS: `headerLength u32 BE | header | event bytes...`, where the header is `count u16 BE`
 * and, per event, `flags u8 | fileLen u8 | file | offset u48 BE | timestampS u32 BE |
 * gtidLen u8 | gtid | length u32 BE`; the events' bytes follow in the same order. The frame
 * CRC32 covers the length prefix and the header; each event carries its own CRC32.
 * Returns the header (with its prefix) and then the event bytes, none of them copied.
 */
export function encodeEvents(records: readonly BinlogRecord[]): Buffer[] {
  if (records.length === 0 || records.length > 0xffff) throw new Error(`an EVENTS frame holds 1 to 65535 events, not ${records.length}`);
  let headerLength = 2;
  for (const record of records) headerLength += ENTRY_FIXED_BYTES + record.file.length + (record.gtid?.length ?? 0);
  const head = Buffer.allocUnsafe(4 + headerLength);
  let at = head.writeUInt32BE(headerLength, 0);
  at = head.writeUInt16BE(records.length, at);
  const parts: Buffer[] = [head];
  for (const record of records) {
    at = writeEntry(head, at, record);
    parts.push(record.bytes);
  }
  return parts;
}

/**
 * One event's header entry, as EVENTS and EVENT_PIECE frames both carry it: `flags u8 |
 * fileLen u8 | file | offset u48 BE | timestampS u32 BE | gtidLen u8 | gtid | length u32 BE`
 * (the whole event's length). Returns the offset after it.
 */
function writeEntry(head: Buffer, at: number, record: BinlogRecord): number {
  const gtid = record.gtid ?? '';
  if (record.file.length > 255 || gtid.length > 255) throw new Error('binlog file name or GTID too long for the wire');
  at = head.writeUInt8((record.boundary ? FLAG_BOUNDARY : 0) | (record.gtid !== undefined ? FLAG_GTID : 0), at);
  at = head.writeUInt8(record.file.length, at);
  at += head.write(record.file, at, 'latin1');
  at = head.writeUIntBE(record.offset, at, OFFSET_BYTES);
  at = head.writeUInt32BE(record.timestampS >>> 0, at);
  at = head.writeUInt8(gtid.length, at);
  at += head.write(gtid, at, 'latin1');
  return head.writeUInt32BE(record.bytes.length, at);
}

/** The bytes a record takes in an EVENTS frame: its bytes and its header entry. */
export function encodedEventBytes(record: BinlogRecord): number {
  return ENTRY_FIXED_BYTES + record.file.length + (record.gtid?.length ?? 0) + record.bytes.length;
}

/** An EVENTS frame's payload besides its entries: the header length prefix and the count. */
export const EVENTS_FRAME_OVERHEAD_BYTES = 4 + 2;

/** One piece of an event too large for an EVENTS frame, as decoded (`bytes` is this piece only). */
export interface EventPiece {
  file: string;
  /** Offset of the whole event in its binlog file. */
  offset: number;
  timestampS: number;
  boundary: boolean;
  gtid: string | undefined;
  /** Length of the whole event. */
  length: number;
  /** Where this piece starts within the event. */
  pieceOffset: number;
  bytes: Buffer;
}

/** An EVENT_PIECE header's fixed part: flags, file length, offset, timestamp, GTID length, event length, piece offset. */
const PIECE_FIXED_BYTES = ENTRY_FIXED_BYTES + 4;

/**
 * Splits one event into EVENT_PIECE payloads of at most `payloadBytesMax` bytes each. A payload
 * is `headerLength u32 BE | header | piece bytes`, the header being `flags u8 | fileLen u8 |
 * file | offset u48 BE | timestampS u32 BE | gtidLen u8 | gtid | eventLength u32 BE |
 * pieceOffset u32 BE` (the event's metadata, repeated in every piece, and where the piece
 * starts); the piece that reaches eventLength is the last. The frame CRC32 covers the prefix
 * and the header; the event's own CRC32, computed over all its pieces, covers the bytes. The
 * bytes are views of the event, never copied.
 */
export function encodeEventPieces(record: BinlogRecord, payloadBytesMax: number): Buffer[][] {
  const gtid = record.gtid ?? '';
  if (record.file.length > 255 || gtid.length > 255) throw new Error('binlog file name or GTID too long for the wire');
  const headerLength = PIECE_FIXED_BYTES + record.file.length + gtid.length;
  const pieceBytes = payloadBytesMax - 4 - headerLength;
  if (pieceBytes < 1) throw new Error(`an EVENT_PIECE frame of ${payloadBytesMax} bytes cannot hold any event bytes`);
  const frames: Buffer[][] = [];
  for (let pieceOffset = 0; pieceOffset < record.bytes.length || frames.length === 0; pieceOffset += pieceBytes) {
    const head = Buffer.allocUnsafe(4 + headerLength);
    const at = writeEntry(head, head.writeUInt32BE(headerLength, 0), record);
    head.writeUInt32BE(pieceOffset, at);
    frames.push([head, record.bytes.subarray(pieceOffset, pieceOffset + pieceBytes)]);
  }
  return frames;
}

/** Decodes one EVENT_PIECE payload; every length is checked against the frame. */
export function decodeEventPiece(payload: Buffer | readonly Buffer[]): EventPiece {
  const reader = new SegmentReader(Buffer.isBuffer(payload) ? [payload] : payload);
  const prefix = reader.take(4);
  const header = prefix === undefined ? undefined : reader.take(prefix.readUInt32BE(0));
  if (header === undefined || header.length < PIECE_FIXED_BYTES) throw wireError('EVENT_PIECE frame is truncated');
  const entry = readEntry(header, 0, 'EVENT_PIECE frame is truncated');
  if (entry.end + 4 !== header.length) throw wireError('EVENT_PIECE header length does not match its fields');
  const pieceOffset = header.readUInt32BE(entry.end);
  const bytes = reader.take(reader.remaining) as Buffer;
  if (pieceOffset + bytes.length > entry.length) throw wireError(`EVENT_PIECE of ${bytes.length} bytes at ${pieceOffset} runs past its event of ${entry.length} bytes`);
  const { file, offset, timestampS, boundary, gtid, length } = entry;
  return { file, offset, timestampS, boundary, gtid, length, pieceOffset, bytes };
}

/** One event's header entry as writeEntry wrote it, every field checked against the header; `end` is the offset after it. */
function readEntry(header: Buffer, start: number, truncated: string): { file: string; offset: number; timestampS: number; boundary: boolean; gtid: string | undefined; length: number; end: number } {
  const need = (n: number, at: number): void => {
    if (at + n > header.length) throw wireError(truncated);
  };
  need(2, start);
  const flags = header.readUInt8(start);
  const fileLength = header.readUInt8(start + 1);
  let at = start + 2;
  need(fileLength + OFFSET_BYTES + 4 + 1, at);
  const file = header.toString('latin1', at, at + fileLength);
  at += fileLength;
  const offset = header.readUIntBE(at, OFFSET_BYTES);
  at += OFFSET_BYTES;
  const timestampS = header.readUInt32BE(at);
  at += 4;
  const gtidLength = header.readUInt8(at);
  at += 1;
  need(gtidLength + 4, at);
  const gtid = (flags & FLAG_GTID) !== 0 ? header.toString('latin1', at, at + gtidLength) : undefined;
  at += gtidLength;
  const length = header.readUInt32BE(at);
  return { file, offset, timestampS, boundary: (flags & FLAG_BOUNDARY) !== 0, gtid, length, end: at + 4 };
}

/** True when a record can travel in an EVENTS frame (names and GTIDs are latin1, at most 255 bytes). */
export function encodableEvent(record: BinlogRecord): boolean {
  return record.file.length <= 255 && (record.gtid?.length ?? 0) <= 255;
}

/**
 * Splits an EVENTS payload (one Buffer, or the pieces it arrived in) into records; every
 * length is checked against the frame. Event bytes are views of the payload, copied only
 * when an event straddles two pieces.
 */
export function decodeEvents(payload: Buffer | readonly Buffer[], eventsMax: number): BinlogRecord[] {
  const reader = new SegmentReader(Buffer.isBuffer(payload) ? [payload] : payload);
  const prefix = reader.take(4);
  const header = prefix === undefined ? undefined : reader.take(prefix.readUInt32BE(0));
  if (header === undefined) throw wireError('EVENTS frame is truncated');
  if (header.length < 2) throw wireError('EVENTS frame is truncated');
  const count = header.readUInt16BE(0);
  if (count === 0 || count > eventsMax) throw wireError(`EVENTS frame of ${count} events (1 to ${eventsMax} allowed)`);
  const records: BinlogRecord[] = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const { file, offset, timestampS, boundary, gtid, length, end } = readEntry(header, at, 'EVENTS frame is truncated');
    at = end;
    const bytes = reader.take(length);
    if (bytes === undefined) throw wireError('EVENTS frame is shorter than its events');
    records.push({ file, offset, timestampS, boundary, gtid, bytes });
  }
  if (at !== header.length) throw wireError('EVENTS frame header has bytes after its last event');
  if (reader.remaining !== 0) throw wireError('EVENTS frame has bytes after its last event');
  return records;
}

/** The ArchiveFiles operations carried by FILE_REQUEST frames. */
export const FileOp = {
  PUT_BEGIN: 1,
  PUT_CHUNK: 2,
  PUT_END: 3,
  WRITE_AT: 4,
  TRUNCATE: 5,
  /** The file's first DEFAULT_WIRE_FILE_CHUNK_BYTES in the response, its whole size in `size` (version 3: the rest by READ_AT). */
  READ_FILE: 6,
  SIZE: 7,
  LIST: 8,
  RENAME: 9,
  REMOVE: 10,
  PUT_ABORT: 11,
  /** `size` bytes of `path` from `offset` (at most DEFAULT_WIRE_FILE_CHUNK_BYTES); the data is in the response. */
  READ_AT: 12,
  /** Like WRITE_AT without the fsync: `SYNC` of the path makes it durable. */
  WRITE: 13,
  /** fdatasync of `path` (and its directory if a WRITE created it). */
  SYNC: 14,
} as const;
export type FileOpCode = (typeof FileOp)[keyof typeof FileOp];
const KNOWN_OPS: ReadonlySet<number> = new Set(Object.values(FileOp));

export const fileArgsSchema = z.object({
  path: z.string().max(8192).optional(),
  to: z.string().max(8192).optional(),
  offset: position.optional(),
  size: position.optional(),
  /** For PUT_*: the upload this chunk belongs to (the PUT_BEGIN request id). */
  upload: z.number().int().min(0).max(4294967295).optional(),
});
export type FileArgs = z.output<typeof fileArgsSchema>;

export interface FileRequest {
  id: number;
  op: FileOpCode;
  args: FileArgs;
  data: Buffer;
}

/** FILE_REQUEST: `id u32 | op u8 | argsLen u16 | args JSON | data`. Returns [head, data]. */
export function encodeFileRequest(request: FileRequest): Buffer[] {
  const args = encodeJson(request.args);
  const head = Buffer.allocUnsafe(7 + args.length);
  head.writeUInt32BE(request.id, 0);
  head.writeUInt8(request.op, 4);
  head.writeUInt16BE(args.length, 5);
  args.copy(head, 7);
  return [head, request.data];
}

export function decodeFileRequest(payload: Buffer): FileRequest {
  if (payload.length < 7) throw wireError('FILE_REQUEST frame is truncated');
  const id = payload.readUInt32BE(0);
  const op = payload.readUInt8(4);
  const argsLength = payload.readUInt16BE(5);
  if (!KNOWN_OPS.has(op)) throw wireError(`unknown file operation ${op}`);
  if (7 + argsLength > payload.length) throw wireError('FILE_REQUEST frame is truncated');
  const args = decodeJson(payload.subarray(7, 7 + argsLength), fileArgsSchema, 'FILE_REQUEST arguments');
  return { id, op: op as FileOpCode, args, data: payload.subarray(7 + argsLength) };
}

export const fileResultSchema = z.object({
  error: problemSchema.optional(),
  size: position.nullable().optional(),
  names: z.array(z.string().max(4096)).max(1_000_000).optional(),
  /** READ_FILE: false when the file does not exist (data is then empty). */
  exists: z.boolean().optional(),
});
export type FileResult = z.output<typeof fileResultSchema>;

export interface FileResponse {
  id: number;
  result: FileResult;
  data: Buffer;
}

/** FILE_RESPONSE: `id u32 | resultLen u32 | result JSON | data`. */
export function encodeFileResponse(response: FileResponse): Buffer[] {
  const result = encodeJson(response.result);
  const head = Buffer.allocUnsafe(8 + result.length);
  head.writeUInt32BE(response.id, 0);
  head.writeUInt32BE(result.length, 4);
  result.copy(head, 8);
  return [head, response.data];
}

export function decodeFileResponse(payload: Buffer): FileResponse {
  if (payload.length < 8) throw wireError('FILE_RESPONSE frame is truncated');
  const id = payload.readUInt32BE(0);
  const resultLength = payload.readUInt32BE(4);
  if (8 + resultLength > payload.length) throw wireError('FILE_RESPONSE frame is truncated');
  const result = decodeJson(payload.subarray(8, 8 + resultLength), fileResultSchema, 'FILE_RESPONSE result');
  return { id, result, data: payload.subarray(8 + resultLength) };
}
