import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { scanArchive } from '../../../src/standby/archive-scan.js';
import { nextBinlogName } from '../../../src/archive/archive-layout.js';
import { EventType } from '../../../src/core/binlog-event.js';
import { FIXTURE_NAME, FIXTURE_PATH, fixtureEvents, makeEvent } from '../../support/fixtures.js';

/**
 * Goal: an archive whose newest file ends in zeros (a crash after O_DIRECT blocks landed but not
 * the block after them, before the agent could recover the tail) is intact with a torn tail, as
 * with a partial event; a non-zero byte among them is still damage. Method: the fixture binlog
 * copied into an archive, zeros or garbage appended.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-scan-tail-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function archiveWithTail(tail: Buffer): string {
  const root = join(work, `a-${Math.random().toString(36).slice(2)}`);
  mkdirSync(join(root, 'binlog'), { recursive: true });
  copyFileSync(FIXTURE_PATH, join(root, 'binlog', FIXTURE_NAME));
  appendFileSync(join(root, 'binlog', FIXTURE_NAME), tail);
  writeFileSync(join(root, 'archive.json'), '{}');
  return root;
}

describe("archive scan of the newest file's tail", () => {
  const events = fixtureEvents();
  const end = (events.at(-1)?.offset ?? 0) + (events.at(-1)?.bytes.length ?? 0);

  it('zeros after the last event: a torn tail, not damage', async () => {
    const scan = await scanArchive(archiveWithTail(Buffer.alloc(4096)), { verifyChecksums: true });
    expect(scan.damage).toBeUndefined();
    expect(scan.partialTail).toEqual({ file: FIXTURE_NAME, from: end, to: end + 4096 });
  });

  it('a non-zero byte among them: damage at the first bad event', async () => {
    const tail = Buffer.alloc(4096);
    tail[3000] = 7;
    const scan = await scanArchive(archiveWithTail(tail), { verifyChecksums: true });
    expect(scan.damage).toMatchObject({ kind: 'corrupt', file: FIXTURE_NAME, offset: end });
  });

  it('an event torn at a block boundary, zeros after it to the end: a torn tail at that event', async () => {
    // A 10 KiB event after the fixture, written only up to the first 4 KiB boundary inside it.
    const event = makeEvent(EventType.ANNOTATE_ROWS, Buffer.alloc(10_000, 0x61), { nextPosition: end + 10_000 + 23 });
    const boundary = Math.ceil((end + 1) / 4096) * 4096;
    const torn = Buffer.concat([event.subarray(0, boundary - end), Buffer.alloc(event.length - (boundary - end))]);
    const scan = await scanArchive(archiveWithTail(torn), { verifyChecksums: true });
    expect(scan.damage).toBeUndefined();
    expect(scan.partialTail).toEqual({ file: FIXTURE_NAME, from: end, to: end + event.length });
    // Whole, but with a flipped byte (its CRC32 in place): damage, whatever follows.
    const flipped = Buffer.from(event);
    flipped[100] = (flipped[100] ?? 0) ^ 1;
    const damaged = await scanArchive(archiveWithTail(Buffer.concat([flipped, Buffer.alloc(8192)])), { verifyChecksums: true });
    expect(damaged.damage).toMatchObject({ kind: 'corrupt', offset: end });
  });
});

describe('archive scan against what the archive once held durably (state/last-heard.json)', () => {
  // The fixture's transactions end at 653, 857, 1112, 1258 and 1612.
  const at = '2026-12-06T22:00:00.000Z';
  const cutAt = (position: number): string => {
    const root = archiveWithTail(Buffer.alloc(0));
    const path = join(root, 'binlog', FIXTURE_NAME);
    writeFileSync(path, readFileSync(path).subarray(0, position));
    return root;
  };

  it('a file cut back to an earlier transaction end is damage at its end, naming what was held', async () => {
    const scan = await scanArchive(cutAt(1112), { verifyChecksums: true, heldDurably: { boundary: { file: FIXTURE_NAME, position: 1612 }, at } });
    expect(scan.damage).toMatchObject({ kind: 'truncated', file: FIXTURE_NAME, offset: 1112 });
    expect(scan.damage?.reason).toContain(`before ${FIXTURE_NAME}:1612, which it held durably at ${at}`);
    // The transactions before the cut are still the archive's.
    expect(scan.lastCommit?.position).toBe(1112);
  });

  it('a boundary at the next file\'s start (a session resumed there, its first bytes not yet durable): nothing of that file to lose', async () => {
    const next = nextBinlogName(FIXTURE_NAME);
    const scan = await scanArchive(archiveWithTail(Buffer.alloc(0)), { verifyChecksums: true, heldDurably: { boundary: { file: next, position: 4 }, at } });
    expect(scan.damage).toBeUndefined();
  });

  it('a whole newer file gone: damage at the end of the last one left', async () => {
    const next = nextBinlogName(FIXTURE_NAME);
    const scan = await scanArchive(archiveWithTail(Buffer.alloc(0)), { verifyChecksums: true, heldDurably: { boundary: { file: next, position: 400 }, at } });
    const last = fixtureEvents().at(-1);
    expect(scan.damage).toMatchObject({ kind: 'truncated', file: FIXTURE_NAME, offset: (last?.offset ?? 0) + (last?.bytes.length ?? 0) });
  });

  it('an archive at or past the record is intact (it grew since), and so is a cut inside a transaction after it', async () => {
    expect((await scanArchive(archiveWithTail(Buffer.alloc(0)), { verifyChecksums: true, heldDurably: { boundary: { file: FIXTURE_NAME, position: 1612 }, at } })).damage).toBeUndefined();
    expect((await scanArchive(archiveWithTail(Buffer.alloc(0)), { verifyChecksums: true, heldDurably: { boundary: { file: FIXTURE_NAME, position: 857 }, at } })).damage).toBeUndefined();
    // The agent restarted after the primary died mid-transaction cuts that transaction's
    // events off: the archive then ends at the boundary the record names.
    const scan = await scanArchive(cutAt(1300), { verifyChecksums: true, heldDurably: { boundary: { file: FIXTURE_NAME, position: 1258 }, at } });
    expect(scan.damage).toBeUndefined();
    expect(scan.partialTail).toEqual({ file: FIXTURE_NAME, from: 1258, to: 1300 });
  });
});

describe('archive scan: damage passed over inside a file, twice', () => {
  // The fixture's transactions end at 653, 857, 1112, 1258 and 1612: bases at 857 and 1258.
  const archiveWithFlips = (...offsets: number[]): string => {
    const root = archiveWithTail(Buffer.alloc(0));
    const path = join(root, 'binlog', FIXTURE_NAME);
    const bytes = readFileSync(path);
    for (const at of offsets) bytes[at] = (bytes[at] ?? 0) ^ 0x10;
    writeFileSync(path, bytes);
    return root;
  };
  const bases = [
    { id: 'b1', file: FIXTURE_NAME, position: 857, finishedS: 0 },
    { id: 'b2', file: FIXTURE_NAME, position: 1258, finishedS: 0 },
  ];

  it('restarts at the first base after each damage, the file already known to begin intact', async () => {
    const scan = await scanArchive(archiveWithFlips(700, 1000), { verifyChecksums: true, restartAfterDamage: { bases, wanted: () => true } });
    expect(scan.damage).toBeUndefined();
    expect(scan.earlierDamage).toMatchObject({ kind: 'corrupt', file: FIXTURE_NAME });
    // The first damage: the event holding byte 700, in the transaction after the one ending at 653.
    expect(scan.earlierDamage?.offset).toBeGreaterThanOrEqual(653);
    expect(scan.earlierDamage?.offset).toBeLessThan(700);
    expect(scan.files).toMatchObject([{ name: FIXTURE_NAME, startOffset: 1258, cleanEnd: 1659 }]);
    expect(scan.chainStartsAfter).toBe('damage');
    // Both damages are kept, in order: the first one's and the second one's events.
    expect(scan.passedOver).toHaveLength(2);
    expect(scan.passedOver[1]?.offset).toBeGreaterThan(857);
  });

  it('damage in the first two events: no restart inside the file (mariadb-binlog reads them before it seeks)', async () => {
    const scan = await scanArchive(archiveWithFlips(10), { verifyChecksums: true, restartAfterDamage: { bases, wanted: () => true } });
    expect(scan.damage).toMatchObject({ kind: 'corrupt', file: FIXTURE_NAME, offset: 4 });
    expect(scan.restartedAfterDamage).toBe(false);
  });
});
