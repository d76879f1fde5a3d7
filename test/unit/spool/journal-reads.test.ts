import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../../src/archive/archive-files.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { encodeLineText, journalPath, packPath, type SpoolEntry } from '../../../src/spool/spool-format.js';
import { readSegmentCheckpoint } from '../../../src/spool/journal-scan.js';
import { SpoolJournal } from '../../../src/spool/spool-journal.js';
import { PackWriter } from '../../../src/spool/pack-writer.js';

/**
 * Goal: a journal holds a retention's worth of operations (gigabytes on a busy gateway spool),
 * and the agent reads it at every start and prunes it at every new segment: neither may read
 * it all. Opening reads the newest segment; pruning reads the segments' first lines and the
 * oldest kept checkpoint, and removes the packs only dropped segments referred to. Method: a
 * real journal of many segments in a temporary archive, read through a wrapper that counts
 * the bytes read.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-journal-reads-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

class CountingFiles extends LocalArchiveFiles {
  bytesRead = 0;
  /** Bytes read, by archive path. */
  readFrom = new Map<string, number>();
  #count(path: string, bytes: number): void {
    this.bytesRead += bytes;
    this.readFrom.set(path, (this.readFrom.get(path) ?? 0) + bytes);
  }
  override async readFile(path: string): Promise<Buffer | undefined> {
    const data = await super.readFile(path);
    this.#count(path, data?.length ?? 0);
    return data;
  }
  override async readAt(path: string, offset: number, length: number): Promise<Buffer> {
    const data = await super.readAt(path, offset, length);
    this.#count(path, data.length);
    return data;
  }
}

const T0 = 1_796_000_000_000;
const SEGMENTS = 20;
const OPS_PER_SEGMENT = 2000;

describe('spool journal reads', () => {
  it('opening reads the newest segment, and retention the first lines and one checkpoint (not its operations)', async () => {
    const root = join(work, 'archive');
    const files = new CountingFiles(root);
    const { journal, tree } = await SpoolJournal.open(files, 's', 65536, T0, silentLogger());
    // Each segment: one file (in pack = the segment number) rewritten many times, then a rotation.
    let t = T0;
    for (let seg = 1; seg <= SEGMENTS; seg++) {
      await files.writeAt(packPath('s', seg), 0, Buffer.from(`pack ${seg}`));
      const lines: string[] = [];
      for (let i = 0; i < OPS_PER_SEGMENT; i++) {
        const op = { op: 'file' as const, t: journal.stamp(++t), path: 'feed.dat', e: { kind: 'file' as const, mode: 0o644, mtimeNs: `${t}000000`, ctimeNs: `${t}000000`, size: 6, ino: 1 }, set: [[0, `hash-${seg}`, seg, 0]] as Array<[number, string, number, number]> };
        tree.apply(op);
        lines.push(encodeLineText(op));
      }
      await journal.append(lines);
      if (seg < SEGMENTS) await journal.rotate(tree, { pack: seg + 1 });
    }
    const journalDir = join(root, 'files', 's', 'journal');
    const segmentBytes = readdirSync(journalDir).map((n) => statSync(join(journalDir, n)).size);
    const largest = Math.max(...segmentBytes);
    const total = segmentBytes.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThan(10 * largest);

    files.bytesRead = 0;
    const reopened = await SpoolJournal.open(files, 's', 65536, t + 1, silentLogger());
    expect(files.bytesRead).toBeLessThanOrEqual(largest);
    expect(reopened.tree.get('feed.dat')).toMatchObject({ blocks: [['hash-20', 20, 0]] });

    // Keep the last five segments' span: segments 1..15 go, and packs 1..14 with them (only the
    // dropped segments referred to them); pack 15 stays, as segment 16's checkpoint refers to it.
    files.bytesRead = 0;
    files.readFrom.clear();
    const keptFromMs = T0 + 15 * OPS_PER_SEGMENT;
    await reopened.journal.prune(t + 1, t + 1 - keptFromMs, 21, silentLogger());
    expect(files.bytesRead).toBeLessThan(2 * largest);
    // Of segment 16, the oldest kept: its first line, and its checkpoint (in the first 64 KiB
    // read), not its operations (the rest of its 400 KB).
    const kept = statSync(join(journalDir, '0000000016.jnl')).size;
    expect(kept).toBeGreaterThan(300_000);
    expect(files.readFrom.get(journalPath('s', 16))).toBeLessThanOrEqual(16 * 1024 + 64 * 1024);
    expect(readdirSync(journalDir).length).toBe(SEGMENTS - 15);
    const packs = readdirSync(join(root, 'files', 's', 'packs')).sort();
    expect(packs).toEqual(['0000000015.pack', '0000000016.pack', '0000000017.pack', '0000000018.pack', '0000000019.pack', '0000000020.pack']);
  });

  it('numbers new packs above every pack a checkpoint names, also one never written', async () => {
    const root = join(work, 'floor');
    const files = new LocalArchiveFiles(root);
    const { journal, tree } = await SpoolJournal.open(files, 's', 65536, T0, silentLogger());
    // A session that started pack 10 and wrote no block into it (only removals, say).
    await journal.rotate(tree, { pack: 10 });
    const reopened = await SpoolJournal.open(files, 's', 65536, T0 + 1, silentLogger());
    expect(reopened.journal.packFloor).toBe(10);
    const writer = await PackWriter.open(files, 's', 65536, 1 << 20, 1, reopened.journal.packFloor);
    expect(writer.seq).toBeGreaterThanOrEqual(10);
    await writer.close();
  });

  it('keeps the pack floor across a start past a damaged segment', async () => {
    const root = join(work, 'floor-damaged');
    const files = new LocalArchiveFiles(root);
    const { journal, tree } = await SpoolJournal.open(files, 's', 65536, T0, silentLogger());
    await journal.rotate(tree, { pack: 10 });
    await journal.rotate(tree, { pack: 12 });
    // The newest segment's checkpoint is damaged past its first line: the agent goes on from segment 2.
    const newest = join(root, 'files', 's', 'journal', '0000000003.jnl');
    writeFileSync(newest, Buffer.concat([readFileSync(newest), Buffer.from('garbage\n')]).subarray(0, readFileSync(newest).length - 3));
    const restarted = await SpoolJournal.open(files, 's', 65536, T0 + 1, silentLogger());
    expect(restarted.journal.packFloor).toBe(12);
    // ...and the start after that, which reads only the segment that start wrote, still knows it.
    expect((await SpoolJournal.open(files, 's', 65536, T0 + 2, silentLogger())).journal.packFloor).toBe(12);
  });

  it("reads a large checkpoint alone, in growing pieces, and tells a cut or damaged one from a whole one", async () => {
    const root = join(work, 'checkpoint');
    const files = new CountingFiles(root);
    // 6,000 entries (about 1 MB of checkpoint), then 4 MB of operations.
    const entry = (i: number): SpoolEntry & { kind: 'file' } => ({ kind: 'file', mode: 0o644, mtimeNs: `${T0}000000`, ctimeNs: `${T0}000000`, size: 6, ino: i, blocks: [[`hash-${i}`, 1, i * 6]] });
    const head = [encodeLineText({ op: 'ckpt', t: T0, seq: 1, pack: 2 })];
    for (let i = 0; i < 6000; i++) head.push(encodeLineText({ op: 'ent', path: `d/f${i}`, e: entry(i) }));
    // One entry's line longer than several reads: a file of 30,000 blocks.
    const big: SpoolEntry = { ...entry(6000), size: 30_000 * 65536, blocks: Array.from({ length: 30_000 }, (_, b) => [`hash-big-${b}`, 1, b * 65536] as [string, number, number]) };
    head.splice(3000, 0, encodeLineText({ op: 'ent', path: 'd/big', e: big }));
    head.push(encodeLineText({ op: 'ckpt-end', n: 6001 }));
    const ops: string[] = [];
    for (let i = 0, bytes = 0; bytes < 4_000_000; i++) {
      ops.push(encodeLineText({ op: 'rm', t: T0 + 1 + i, path: `d/f${i % 6000}` }));
      bytes += (ops[i] as string).length;
    }
    const checkpointBytes = Buffer.byteLength(head.join(''));
    const path = join(root, journalPath('s', 1));
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, head.join('') + ops.join(''));

    const read = await readSegmentCheckpoint(files, 's', 1);
    if (typeof read === 'string') throw new Error(read);
    expect(read.checkpoint.length).toBe(6001);
    expect(read.checkpoint[6000]).toEqual(['d/f5999', entry(5999)]);
    expect(read.checkpoint[2999]).toEqual(['d/big', big]);
    expect(read.ops).toEqual([]);
    expect(read.pack).toBe(2);
    // 64 KiB, 128, 256, 512, 1 MiB: not the 4 MB of operations after.
    expect(files.bytesRead).toBeGreaterThanOrEqual(checkpointBytes);
    expect(files.bytesRead).toBeLessThan(checkpointBytes + 2 * 1024 * 1024);

    // Cut inside the checkpoint, or a damaged entry: no checkpoint. Gone: vanished.
    writeFileSync(path, head.join('').slice(0, checkpointBytes - 100));
    expect(await readSegmentCheckpoint(files, 's', 1)).toBe('unreadable');
    const damaged = Buffer.from(head.join('') + ops.join(''));
    damaged[checkpointBytes - 200] = 0x21;
    writeFileSync(path, damaged);
    expect(await readSegmentCheckpoint(files, 's', 1)).toBe('unreadable');
    // A first line that is no checkpoint's, and an end marker counting other than the entries.
    writeFileSync(path, [encodeLineText({ op: 'rm', t: T0, path: 'x' }), ...head.slice(1)].join(''));
    expect(await readSegmentCheckpoint(files, 's', 1)).toBe('unreadable');
    writeFileSync(path, [...head.slice(0, -1), encodeLineText({ op: 'ckpt-end', n: 5 })].join(''));
    expect(await readSegmentCheckpoint(files, 's', 1)).toBe('unreadable');
    rmSync(path);
    expect(await readSegmentCheckpoint(files, 's', 1)).toBe('vanished');
  });
});
