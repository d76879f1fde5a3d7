import { existsSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, truncateSync, appendFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { nextBinlogName } from '../../../src/archive/archive-layout.js';
import { BinlogArchiveWriter } from '../../../src/archive/binlog-archive-writer.js';
import { BinlogAppendFile } from '../../../src/archive/binlog-append-file.js';
import { compareBinlogPositions } from '../../../src/core/binlog-position.js';
import { readEventHeader } from '../../../src/core/binlog-event.js';
import { TransactionTracker } from '../../../src/core/transaction-tracker.js';
import type { BinlogRecord } from '../../../src/core/binlog-record.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { FIXTURE_NAME, FIXTURE_PATH, fixtureEvents, makeEvent } from '../../support/fixtures.js';
import { BINLOG_MAGIC } from '../../../src/core/binlog-event.js';
import { volumeTakesDirect } from '../../support/direct-io.js';
import { waitFor } from '../../support/wait.js';

const clock = { nowMs: () => 0 };
const dirs: string[] = [];
function archiveWith(fileSize?: number, garbage?: Buffer): { root: string; path: string } {
  const root = mkdtempSync(join(tmpdir(), 'hotspare-writer-'));
  dirs.push(root);
  mkdirSync(join(root, 'binlog'));
  const path = join(root, 'binlog', FIXTURE_NAME);
  copyFileSync(FIXTURE_PATH, path);
  if (fileSize !== undefined) truncateSync(path, fileSize);
  if (garbage !== undefined) appendFileSync(path, garbage);
  return { root, path };
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The fixture's events as the framer hands them over (boundaries, GTIDs), for `file`. */
function fixtureRecords(file: string = FIXTURE_NAME): Array<BinlogRecord & { type: number }> {
  const tracker = new TransactionTracker();
  return fixtureEvents().map(({ offset, bytes }) => {
    const header = readEventHeader(bytes);
    const boundary = tracker.observe(bytes, header);
    return { file, offset, bytes, timestampS: header.timestampS, boundary, gtid: boundary ? tracker.lastGtid : undefined, type: header.type };
  });
}

// Goal: after a crash at any byte, the archive's newest file is cut back to the end of the
// last complete transaction, and the writer resumes exactly there. Method: the real fixture,
// cut at every event boundary and inside events, with and without torn garbage.

describe('BinlogArchiveWriter tail recovery', () => {
  const boundaries = fixtureRecords()
    .filter((r) => r.boundary)
    .map((r) => r.offset + r.bytes.length);
  const lastBoundaryAtOrBefore = (size: number): number => [4, ...boundaries].filter((b) => b <= size).pop() ?? 4;

  it('resumes at the next file when the newest file ends with its rotate', async () => {
    const { root } = archiveWith();
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    expect(writer.resume).toMatchObject({ file: 'mysql-bin.000005', position: 4, gtid: '0-11-14' });
    await writer.close();
  });

  it('resumes at the next file when the newest file ends with the STOP of a server shutdown (not at its end: purged, it is not missed)', async () => {
    // The fixture up to its last transaction (its closing ROTATE left out), then the STOP.
    const { root, path } = archiveWith(1612);
    appendFileSync(path, makeEvent(3, Buffer.alloc(0), { nextPosition: 1612 + 23, timestampS: 1_790_000_000 }));
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    expect(writer.resume).toMatchObject({ file: nextBinlogName(FIXTURE_NAME), position: 4, gtid: '0-11-14' });
    await writer.close();
    expect(statSync(path).size).toBe(1612 + 23);
  });

  it('a checkpoint at the closing ROTATE resumes in the next file; the writer records where that event starts', async () => {
    const { root, path } = archiveWith();
    const rotate = fixtureEvents().at(-1);
    if (rotate === undefined) throw new Error('fixture');
    expect(readEventHeader(rotate.bytes).type).toBe(4);
    const size = statSync(path).size;
    mkdirSync(join(root, 'state'), { recursive: true });
    const checkpoint = (extra: object): void => writeFileSync(join(root, 'state', 'binlog-checkpoint.json'), JSON.stringify({ file: FIXTURE_NAME, boundaryPosition: size, commitTimestampS: 1, gtid: '0-11-14', ...extra }));
    // Without the event's start (an older checkpoint), the scan begins at the end and sees no ROTATE.
    checkpoint({});
    let writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    expect(writer.resume).toMatchObject({ file: FIXTURE_NAME, position: size });
    await writer.close();
    checkpoint({ boundaryEventOffset: rotate.offset });
    writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    expect(writer.resume).toMatchObject({ file: 'mysql-bin.000005', position: 4 });
    expect(statSync(path).size).toBe(size);
    await writer.close();

    // The writer's own checkpoint names the start of the boundary's event.
    const fresh = archiveWith(4);
    let now = 0;
    const w = await BinlogArchiveWriter.open(fresh.root, { logger: silentLogger(), clock: { nowMs: () => (now += 2_000) } });
    for (const record of fixtureRecords()) if (record.offset >= 4) w.append(record);
    await w.flush();
    await w.close();
    const checkpointFile = join(fresh.root, 'state', 'binlog-checkpoint.json');
    await waitFor('the checkpoint', () => existsSync(checkpointFile) && readFileSync(checkpointFile, 'utf8').includes('boundaryEventOffset'));
    const written = JSON.parse(readFileSync(checkpointFile, 'utf8')) as { boundaryPosition: number; boundaryEventOffset: number };
    const ending = fixtureEvents().find((e) => e.offset + e.bytes.length === written.boundaryPosition);
    expect(written.boundaryEventOffset).toBe(ending?.offset);
  });

  it('cuts a partial transaction or a torn event back to the last boundary, at every cut point', async () => {
    const size = statSync(FIXTURE_PATH).size;
    for (let cut = 5; cut < size; cut += 7) {
      const { root, path } = archiveWith(cut, cut % 3 === 0 ? Buffer.from('torn garbage') : undefined);
      const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
      const expected = lastBoundaryAtOrBefore(cut);
      expect(writer.resume, `cut at ${cut}`).toMatchObject({ file: FIXTURE_NAME, position: expected });
      expect(statSync(path).size, `cut at ${cut}`).toBe(expected);
      expect(readFileSync(path).equals(readFileSync(FIXTURE_PATH).subarray(0, expected))).toBe(true);
      await writer.close();
    }
  });

  it('cuts a tail whose later slices reached the disk before an earlier one (a hole), at every hole', async () => {
    // A batch's slices are written side by side (writevAllAt): a crash can leave a hole of
    // zeros with the real bytes after it. Recovery must stop at the hole, not read past it.
    const whole = readFileSync(FIXTURE_PATH);
    for (let holeAt = 5; holeAt < whole.length - 64; holeAt += 11) {
      const { root, path } = archiveWith();
      const torn = Buffer.from(whole);
      torn.fill(0, holeAt, holeAt + 64);
      // Where the bytes were zeros already (a format event's padding) the hole begins later.
      const firstLost = torn.findIndex((byte, i) => byte !== whole[i]);
      if (firstLost < 0) continue;
      writeFileSync(path, torn);
      const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
      const expected = lastBoundaryAtOrBefore(firstLost);
      expect(writer.resume, `hole at ${holeAt}`).toMatchObject({ file: FIXTURE_NAME, position: expected });
      expect(readFileSync(path).equals(whole.subarray(0, expected)), `hole at ${holeAt}`).toBe(true);
      await writer.close();
    }
  });

  it('appends, fsyncs and reports durable points that only move forward', async () => {
    const { root, path } = archiveWith(1258);
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    const points: number[] = [];
    writer.durable$.subscribe((p) => points.push(p.position));
    for (const { type: _type, ...record } of fixtureRecords()) if (record.offset >= 1258) writer.append(record);
    await writer.close();
    expect(readFileSync(path).equals(readFileSync(FIXTURE_PATH))).toBe(true);
    expect(points.length).toBeGreaterThan(0);
    expect(points.at(-1)).toBe(1659);
    expect([...points].sort((a, b) => a - b)).toEqual(points);
    expect(writer.durablePoint).toMatchObject({ boundaryPosition: 1659, gtid: '0-11-14' });
  });

  it('a write that fails while the fsync of the batches before it runs: the file keeps what that fsync reports durable', async () => {
    const { root, path } = archiveWith(1258);
    // One record per batch, so the second batch is written while the first one's fsync runs.
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock, syncBatchBytesMax: 1 });
    const points: number[] = [];
    let failure: unknown;
    writer.durable$.subscribe({ next: (p) => points.push(p.position), error: (err) => (failure = err) });
    const proto = BinlogAppendFile.prototype;
    const append = proto.append;
    const datasync = proto.datasync;
    let releaseSync: () => void = () => undefined;
    const syncGate = new Promise<void>((resolve) => (releaseSync = resolve));
    let appends = 0;
    proto.append = function (this: BinlogAppendFile, data: readonly Buffer[]) {
      appends += 1;
      if (appends === 2) return Promise.reject(Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }));
      return append.call(this, data);
    };
    proto.datasync = async function (this: BinlogAppendFile) {
      await syncGate;
      return datasync.call(this);
    };
    try {
      const records = fixtureRecords().filter((r) => r.offset >= 1258);
      for (const { type: _type, ...record } of records.slice(0, 2)) writer.append(record);
      // The second write fails while the first batch's fsync waits; then that fsync completes.
      await waitFor('the failed write', () => appends >= 2, 5_000, 1);
      // The failed write's rejection is handled in microtasks, before the next turn.
      await new Promise((resolve) => setImmediate(resolve));
      // Not reported yet: the fsync round under way ends first (it reports what it made durable).
      expect(failure).toBeUndefined();
      releaseSync();
      await waitFor('the failure reported', () => failure !== undefined, 5_000, 1);
      await writer.close().catch(() => undefined);
    } finally {
      proto.append = append;
      proto.datasync = datasync;
    }
    // The first batch's fsync completed: its end is reported durable, once, before the failure;
    // the file is cut back to exactly that (the failed write's bytes, if any landed, are gone).
    expect(failure).toMatchObject({ code: 'ARCHIVE_IO' });
    expect(points).toEqual([1300]);
    expect(writer.durablePoint?.position).toBe(1300);
    expect(statSync(path).size).toBe(1300);
    // A checkpoint, if one was written, lies within the file too.
    const checkpoint = join(root, 'state', 'binlog-checkpoint.json');
    if (existsSync(checkpoint)) expect(Number((JSON.parse(readFileSync(checkpoint, 'utf8')) as { boundaryPosition?: number }).boundaryPosition)).toBeLessThanOrEqual(1300);
  });

  it('refuses an event that leaves a hole, and a file that skips one', async () => {
    const { root } = archiveWith(1258);
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    const event = fixtureEvents().find((e) => e.offset === 1300);
    if (event === undefined) throw new Error('fixture');
    expect(() => writer.append({ file: FIXTURE_NAME, offset: 1300, bytes: event.bytes, timestampS: 0, boundary: false })).toThrowError(
      expect.objectContaining({ code: 'BINLOG_CONTINUITY' }) as Error,
    );
    expect(() => writer.append({ file: 'mysql-bin.000009', offset: 4, bytes: event.bytes, timestampS: 0, boundary: false })).toThrowError(
      expect.objectContaining({ code: 'BINLOG_GAP' }) as Error,
    );
    await writer.close();
  });

  it('continues after a recorded gap only in a file the archive does not hold (never replacing an archived one)', async () => {
    const { root, path } = archiveWith();
    const archived = readFileSync(path);
    mkdirSync(join(root, 'state'), { recursive: true });
    const gap = (file: string): unknown => ({ after: { file: 'mysql-bin.000005', position: 4 }, resumeAt: { file, position: 4 }, base: 'b', primaryOldest: file, recordedAt: '', reason: 'test' });
    // After RESET MASTER the primary's names start again: a gap recorded to an archived file's name.
    writeFileSync(join(root, 'state', 'gaps.json'), JSON.stringify({ gaps: [gap(FIXTURE_NAME), gap('mysql-bin.000001')] }));
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    const magicOnly = fixtureEvents()[0];
    if (magicOnly === undefined) throw new Error('fixture');
    expect(() => writer.append({ file: FIXTURE_NAME, offset: 4, bytes: magicOnly.bytes, timestampS: 0, boundary: true })).toThrowError(expect.objectContaining({ code: 'BINLOG_GAP' }) as Error);
    await writer.flush();
    expect(readFileSync(path).equals(archived)).toBe(true);
    // A recorded restart in a file the archive does not hold is taken.
    writer.append({ file: 'mysql-bin.000001', offset: 4, bytes: magicOnly.bytes, timestampS: 0, boundary: true });
    await writer.flush();
    expect(statSync(join(root, 'binlog', 'mysql-bin.000001')).size).toBe(4 + magicOnly.bytes.length);
    await writer.close();
  });

  it('never begins a file the archive holds again, even where the next name comes round to it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-writer-'));
    dirs.push(root);
    // Past 2^53 the next name of ...993 is ...992 (Number rounds), which sorts before it: once
    // both are archived, the newest is ...993, and its next name is ...992 again.
    const [after, before] = ['mysql-bin.9007199254740993', 'mysql-bin.9007199254740992'];
    expect(nextBinlogName(after)).toBe(before);
    const event = (offset: number, body: number): Buffer => makeEvent(2, Buffer.alloc(body, 0x41), { nextPosition: offset + body + 23 });
    const first = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    first.append({ file: after, offset: 4, bytes: event(4, 40), timestampS: 0, boundary: true });
    first.append({ file: before, offset: 4, bytes: event(4, 200), timestampS: 0, boundary: true });
    await first.close();
    const held = readFileSync(join(root, 'binlog', before));
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    expect(writer.resume).toMatchObject({ file: after, position: 67 });
    expect(() => writer.append({ file: before, offset: 4, bytes: event(4, 10), timestampS: 0, boundary: true })).toThrowError(expect.objectContaining({ code: 'ARCHIVE_DAMAGED' }) as Error);
    await writer.close();
    expect(readFileSync(join(root, 'binlog', before)).equals(held)).toBe(true);
  });

  it('counts an event that arrives in pieces only from its last piece, and cuts dropped pieces off', async () => {
    const { root, path } = archiveWith(1258);
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    const points: number[] = [];
    writer.durable$.subscribe((p) => points.push(p.position));
    for (const { type, ...record } of fixtureRecords()) {
      const { offset, bytes } = record;
      if (offset < 1258) continue;
      // Every event in three pieces, each flushed on its own: no fsync of a piece may report it.
      const cuts = [0, 7, 20, bytes.length];
      for (let i = 0; i < 3; i += 1) {
        const piece = { ...record, offset: offset + (cuts[i] as number), bytes: bytes.subarray(cuts[i], cuts[i + 1]) };
        if (i < 2) writer.appendPiece(piece);
        else writer.appendLastPiece(piece, type);
        await writer.flush();
        expect(writer.durablePoint?.position).toBe(i < 2 ? (points.at(-1) ?? 1258) : offset + bytes.length);
      }
    }
    expect(readFileSync(path).equals(readFileSync(FIXTURE_PATH))).toBe(true);
    // The commit's time and GTID come from the type passed with the last piece.
    expect(writer.durablePoint).toMatchObject({ position: 1659, boundaryPosition: 1659, gtid: '0-11-14' });

    // Pieces of an event that never completes: written, never durable, then cut off.
    const next = nextBinlogName(FIXTURE_NAME);
    writer.appendPiece({ file: next, offset: 4, bytes: Buffer.alloc(100, 1), timestampS: 0, boundary: false });
    writer.appendPiece({ file: next, offset: 104, bytes: Buffer.alloc(100, 2), timestampS: 0, boundary: false });
    await writer.flush();
    expect(statSync(join(root, 'binlog', next)).size).toBe(204);
    expect(writer.durablePoint?.file).toBe(FIXTURE_NAME);
    await writer.dropPieces();
    expect(() => statSync(join(root, 'binlog', next))).toThrow(/ENOENT/);
    const fixtureSize = statSync(path).size;
    writer.appendPiece({ file: FIXTURE_NAME, offset: fixtureSize, bytes: Buffer.alloc(50, 3), timestampS: 0, boundary: false });
    await writer.flush();
    expect(statSync(path).size).toBe(fixtureSize + 50);
    await writer.dropPieces();
    await writer.close();
    expect(readFileSync(path).equals(readFileSync(FIXTURE_PATH))).toBe(true);
    expect(writer.durablePoint?.position).toBe(1659);
  });
});

// Goal: a file switch costs no fsync of its own, and yet a crash never leaves a newer file
// beside an older one that lost its tail. Method: three files' events appended in one
// synchronous run (so each switch comes while the fsync of the file before still runs, and
// the next file is written under its temporary name); then a temporary file left as by a
// crash beside a complete archive.
describe('BinlogArchiveWriter file switches', () => {
  const appendFile = (writer: BinlogArchiveWriter, file: string): void => {
    for (const { type: _type, ...record } of fixtureRecords(file)) writer.append(record);
  };

  it('writes each file byte for byte under its own name, with durable points in file order', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-writer-'));
    dirs.push(root);
    const logLines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => logLines.push(line) });
    const writer = await BinlogArchiveWriter.open(root, { logger, clock });
    const points: { file: string; position: number }[] = [];
    writer.durable$.subscribe((p) => points.push({ file: p.file, position: p.position }));
    const files = [FIXTURE_NAME, nextBinlogName(FIXTURE_NAME), nextBinlogName(nextBinlogName(FIXTURE_NAME))];
    for (const file of files) appendFile(writer, file);
    await writer.close();

    const fixture = readFileSync(FIXTURE_PATH);
    expect(readdirSync(join(root, 'binlog')).sort()).toEqual(files);
    for (const file of files) expect(readFileSync(join(root, 'binlog', file)).equals(fixture), file).toBe(true);
    expect(points.at(-1)).toEqual({ file: files[2], position: fixture.length });
    expect(points.slice(1).every((p, i) => compareBinlogPositions(points[i] ?? p, p) < 0)).toBe(true);
    // The first switch came while the first file's fsync ran (it starts as the first batch is
    // written, and the second file's batch follows at once), so the second file began under its
    // temporary name. The third did too if the second had already taken its own name while its
    // own bytes were not yet durable; if not, the switch waited for everything to be durable
    // and it began under its own name: which one depends on the machine's timing.
    const temporary = logLines.map((l) => JSON.parse(l) as { msg: string; file?: string }).filter((l) => l.msg.includes('temporary name'));
    expect(temporary[0]?.file).toBe(files[1]);
    expect(temporary.every((l) => l.file === files[1] || l.file === files[2])).toBe(true);
    expect(writer.durablePoint).toMatchObject({ boundaryFile: files[2], boundaryPosition: fixture.length, gtid: '0-11-14' });
  });

  it('removes a file a crash left under its temporary name and resumes where the durable files end', async () => {
    const { root, path } = archiveWith();
    const next = nextBinlogName(FIXTURE_NAME);
    const leftover = join(root, 'binlog', `.${next}.partial`);
    writeFileSync(leftover, readFileSync(FIXTURE_PATH).subarray(0, 300));
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock });
    expect(writer.resume).toMatchObject({ file: next, position: 4 });
    await writer.close();
    expect(readdirSync(join(root, 'binlog'))).toEqual([FIXTURE_NAME]);
    expect(readFileSync(path).equals(readFileSync(FIXTURE_PATH))).toBe(true);
  });
});

// Goal: the writer's own paths with O_DIRECT under them (events of several KiB, batches far
// larger than a block, direct writes beside running fsync rounds, a file switch under the
// temporary name, pieces cut off from a block written directly): every file holds exactly
// the events appended. Method: small aligned buffers and batches, so that every path is hit.
describe('BinlogArchiveWriter over direct writes', () => {
  const direct = { alignBytes: 4096, buffers: 2, bufferBytes: 8192 };
  const event = (n: number, seed: number): Buffer => makeEvent(30, Buffer.alloc(n, seed % 251));

  it('writes multi-KiB events byte for byte across a file switch, and cuts dropped pieces off a direct block', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-writer-'));
    dirs.push(root);
    const writer = await BinlogArchiveWriter.open(root, { logger: silentLogger(), clock, syncBatchBytesMax: 32 * 1024, direct });
    const files = ['mysql-bin.000001', 'mysql-bin.000002'];
    const expected = new Map<string, Buffer[]>(files.map((f) => [f, [BINLOG_MAGIC]]));
    const offsets = new Map<string, number>(files.map((f) => [f, 4]));
    const add = (file: string, bytes: Buffer, boundary: boolean): void => {
      const offset = offsets.get(file) as number;
      writer.append({ file, offset, bytes, timestampS: 1, boundary, gtid: undefined });
      offsets.set(file, offset + bytes.length);
      expected.get(file)?.push(bytes);
    };
    let seed = 0;
    for (const file of files) {
      for (let burst = 0; burst < 6; burst += 1) {
        // A synchronous run of events, then a pause: the next burst meets the fsync round.
        for (let i = 0; i < 5; i += 1) {
          add(file, event(3000 + ((seed * 7919) % 17_000), seed), i === 4);
          seed += 1;
        }
        await new Promise((r) => setImmediate(r));
      }
    }
    await writer.flush();
    // Pieces of an event that then fails its check, written past the end and cut off again.
    const last = files[1] as string;
    const end = offsets.get(last) as number;
    writer.appendPiece({ file: last, offset: end, bytes: Buffer.alloc(10_000, 9), timestampS: 1, boundary: false });
    await writer.flush();
    await writer.dropPieces();
    add(last, event(5000, 99), true);
    await writer.close();
    for (const file of files) expect(readFileSync(join(root, 'binlog', file)).equals(Buffer.concat(expected.get(file) ?? [])), file).toBe(true);
    expect(writer.durablePoint).toMatchObject({ file: last, position: offsets.get(last) });
    if (await volumeTakesDirect(root)) expect(writer.directBytes).toBeGreaterThan(100_000);
    else expect(writer.directBytes).toBe(0);
  });
});
