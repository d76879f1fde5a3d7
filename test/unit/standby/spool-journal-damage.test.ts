import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../../src/archive/archive-files.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { decodeSegment, encodeLineText, journalPath, markAppendStart, SPOOL_FORMAT_VERSION, sourceMetaPath, type SourceMeta, type SpoolOp } from '../../../src/spool/spool-format.js';
import { SpoolJournal } from '../../../src/spool/spool-journal.js';
import { SpoolSyncer } from '../../../src/spool/spool-syncer.js';
import { restoreSpool, spoolTreeAt } from '../../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../../src/standby/spool-verify.js';
import { localSyncer } from '../../support/spool-pass.js';

/**
 * Goal: a spool journal damaged in the archive (a flipped byte, a lost segment) is never
 * restored as if it were whole. A crash-cut tail of the newest segment is normal and restores
 * everything before it; damage makes a restore to the end stop at the last intact change and
 * say what was lost, a restore to a point after the damage refuse that source, `verify` name
 * the damage, and a restarted agent go on in a new segment, leaving the damaged one as it is.
 * Method: journals written by the real SpoolJournal into temporary archives, damaged by hand,
 * then real restores and verifies.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-journal-damage-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const T0 = 1_796_000_000_000;
const BLOCK = 65536;
let archives = 0;

const dirOp = (t: number, path: string): SpoolOp => ({ op: 'dir', t, path, e: { kind: 'dir', mode: 0o755, mtimeNs: `${t}000000`, ino: t } });

/**
 * An archive with one source `s` whose journal holds, per segment, directories made one at a
 * time 10 ms apart: segments [['a', 'b'], ['c', 'd']] puts a at T0+10, b at T0+20 in segment 1,
 * then segment 2 (checkpoint at T0+20) with c at T0+30 and d at T0+40.
 */
async function archiveWith(segments: string[][]): Promise<{ root: string; files: LocalArchiveFiles; timeOf: Map<string, number> }> {
  const root = join(work, `archive-${++archives}`);
  const files = new LocalArchiveFiles(root);
  const meta: SourceMeta = { format: SPOOL_FORMAT_VERSION, name: 's', path: join(work, 'nowhere'), exclude: [], blockBytes: BLOCK, retentionSeconds: 86400, hooks: [], completeFromMs: T0 };
  mkdirSync(join(root, 'files', 's'), { recursive: true });
  writeFileSync(join(root, sourceMetaPath('s')), JSON.stringify(meta));
  const { journal, tree } = await SpoolJournal.open(files, 's', BLOCK, T0, silentLogger());
  const timeOf = new Map<string, number>();
  let t = T0;
  for (const [i, names] of segments.entries()) {
    if (i > 0) await journal.rotate(tree, { pack: 1 });
    for (const name of names) {
      t += 10;
      const op = dirOp(journal.stamp(t), name);
      tree.apply(op);
      timeOf.set(name, op.t);
      await journal.append([encodeLineText(op)]);
    }
  }
  return { root, files, timeOf };
}

const segmentFile = (root: string, seq: number): string => join(root, journalPath('s', seq));

/** Flips one byte of segment `seq` inside the first line that contains `marker`. */
function flipByteIn(root: string, seq: number, marker: string): void {
  const path = segmentFile(root, seq);
  const data = readFileSync(path);
  const at = data.indexOf(marker);
  if (at < 0) throw new Error(`${marker} not in segment ${seq}`);
  data[at] = data[at] === 0x41 ? 0x42 : 0x41;
  writeFileSync(path, data);
}

const restoredDirs = (root: string): string[] => readdirSync(join(root, 's')).sort();

async function restore(archive: string, name: string, untilMs?: number) {
  const filesRoot = join(work, `restored-${name}`);
  const [result] = await restoreSpool({ archiveDir: archive, filesRoot, untilMs, logger: silentLogger() });
  return { result, filesRoot };
}

describe('a damaged spool journal', () => {
  it('tells a crash-cut tail, or a hole in the last append, from damage before a later append', () => {
    // Three appends of one record each.
    const lines = [dirOp(1, 'a'), dirOp(2, 'b'), dirOp(3, 'c')].map((op) => markAppendStart(encodeLineText(op)));
    const whole = Buffer.from(lines.join(''));
    const cut = whole.subarray(0, whole.length - 7);
    expect(decodeSegment(cut)).toMatchObject({ torn: true, damaged: false, goodBytes: Buffer.byteLength(lines[0]! + lines[1]!) });
    // A crash on a file system that shows zeros past the written end.
    expect(decodeSegment(Buffer.concat([whole, Buffer.alloc(100)]))).toMatchObject({ torn: true, damaged: false, goodBytes: whole.length });
    const flipped = Buffer.from(whole);
    const at = Buffer.byteLength(lines[0]!) + 20;
    flipped[at] = (flipped[at] ?? 0) ^ 1;
    expect(decodeSegment(flipped)).toMatchObject({ torn: true, damaged: true, goodBytes: Buffer.byteLength(lines[0]!) });
    // One append of the three: a hole in it is a crash's (nothing after it was acknowledged).
    const oneAppend = Buffer.from(markAppendStart(encodeLineText(dirOp(1, 'a'))) + [dirOp(2, 'b'), dirOp(3, 'c')].map(encodeLineText).join(''));
    oneAppend.fill(0, 0, 12);
    expect(decodeSegment(oneAppend)).toMatchObject({ torn: true, damaged: false, goodBytes: 0 });
  });

  it('restores everything before a crash-cut tail of the newest segment, as intact', async () => {
    const { root } = await archiveWith([['a', 'b'], ['c', 'd']]);
    const path = segmentFile(root, 2);
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from(encodeLineText(dirOp(T0 + 50, 'e')).slice(0, 30))]));
    const { result, filesRoot } = await restore(root, 'cut-tail');
    expect(result).toMatchObject({ pointMs: T0 + 40 });
    expect(result?.lostAfter).toBeUndefined();
    expect(restoredDirs(filesRoot)).toEqual(['a', 'b', 'c', 'd']);
    expect((await verifySpoolArchive(root, silentLogger()))[0]?.problems).toEqual([]);
  });

  it('restores a newest segment whose checkpoint is damaged only to the segment before, and says so', async () => {
    const { root, files, timeOf } = await archiveWith([['a', 'b'], ['c', 'd']]);
    flipByteIn(root, 2, '"ckpt"');
    const { result, filesRoot } = await restore(root, 'bad-checkpoint');
    expect(result).toMatchObject({ pointMs: timeOf.get('b'), lostAfter: expect.stringContaining('journal segment 2 is damaged') });
    expect(result?.skipped).toBeUndefined();
    expect(restoredDirs(filesRoot)).toEqual(['a', 'b']);
    // A point after the damage cannot be known: the source is left out, with the points that can be restored.
    const late = await restore(root, 'bad-checkpoint-late', T0 + 35);
    expect(late.result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED', skipped: expect.stringContaining(`changes after ${new Date(timeOf.get('b')!).toISOString()} are unknown`) });
    // A point before it is exact.
    const early = await restore(root, 'bad-checkpoint-early', T0 + 15);
    expect(early.result).toMatchObject({ pointMs: timeOf.get('a') });
    expect(early.result?.lostAfter).toBeUndefined();
    expect(restoredDirs(early.filesRoot)).toEqual(['a']);
    expect((await verifySpoolArchive(root, silentLogger()))[0]?.problems).toEqual(['journal segment 2 is damaged: its checkpoint does not verify']);
    // The agent, restarted, goes on from what it can read in a new segment and leaves the damaged one alone.
    const damaged = readFileSync(segmentFile(root, 2));
    const { journal, tree } = await SpoolJournal.open(files, 's', BLOCK, T0 + 1000, silentLogger());
    expect([...tree.entries.keys()].sort()).toEqual(['a', 'b']);
    expect(readFileSync(segmentFile(root, 2))).toEqual(damaged);
    await journal.append([encodeLineText(dirOp(journal.stamp(T0 + 1010), 'e'))]);
    const after = await restore(root, 'bad-checkpoint-after-restart');
    expect(after.result?.lostAfter).toBeUndefined();
    expect(restoredDirs(after.filesRoot)).toEqual(['a', 'b', 'e']);
    // Between the damage and the new segment stays unknown.
    expect((await restore(root, 'bad-checkpoint-gap', T0 + 500)).result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED' });
  });

  it('restores a segment damaged in its middle, with a later segment, only to the record before the damage, and verify names it', async () => {
    const { root, timeOf } = await archiveWith([['a', 'b'], ['c', 'd', 'e'], ['f']]);
    flipByteIn(root, 2, '"path":"d"');
    // To the end: segment 3's checkpoint holds the whole tree, nothing is lost.
    const latest = await restore(root, 'bad-middle-latest');
    expect(latest.result?.lostAfter).toBeUndefined();
    expect(restoredDirs(latest.filesRoot)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
    // Inside segment 2's span, after the damage: unknown. Before it: exact.
    expect((await restore(root, 'bad-middle-late', T0 + 45)).result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED', skipped: expect.stringContaining('journal segment 2 is damaged after its first') });
    // c itself is not: the damaged record may carry c's own millisecond.
    expect((await restore(root, 'bad-middle-at-c', timeOf.get('c'))).result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED', skipped: expect.stringContaining(`changes after ${new Date(timeOf.get('c')!).toISOString()} are unknown`) });
    const early = await restore(root, 'bad-middle-early', timeOf.get('c')! - 1);
    expect(early.result?.skipped).toBeUndefined();
    expect(restoredDirs(early.filesRoot)).toEqual(['a', 'b']);
    expect((await verifySpoolArchive(root, silentLogger()))[0]?.problems).toEqual([expect.stringMatching(/^journal segment 2 is damaged after its first \d+ of \d+ bytes; its changes after .* are lost$/)]);
  });

  it('takes a hole before whole records in the newest segment for an append a crash cut short (never acknowledged), not damage', async () => {
    // A local append's aligned middle goes to the disk directly and its start through the page
    // cache; a remote one's pieces land independently: a crash can keep the later part only.
    const { root, files, timeOf } = await archiveWith([['a', 'b'], ['c']]);
    const path = segmentFile(root, 2);
    const [d, e] = [dirOp(T0 + 40, 'd'), dirOp(T0 + 50, 'e')].map(encodeLineText) as [string, string];
    const batch = Buffer.from(markAppendStart(d) + e);
    batch.fill(0, 0, 20);
    writeFileSync(path, Buffer.concat([readFileSync(path), batch]));
    const { result, filesRoot } = await restore(root, 'crash-hole');
    expect(result).toMatchObject({ pointMs: timeOf.get('c') });
    expect(result?.lostAfter).toBeUndefined();
    expect(restoredDirs(filesRoot)).toEqual(['a', 'b', 'c']);
    expect((await verifySpoolArchive(root, silentLogger()))[0]?.problems).toEqual([]);
    // The agent cuts it back like any torn tail and goes on in the same segment.
    const { tree } = await SpoolJournal.open(files, 's', BLOCK, T0 + 1000, silentLogger());
    expect([...tree.entries.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(readdirSync(join(root, 'files', 's', 'journal')).filter((n) => n.endsWith('.jnl'))).toHaveLength(2);
    expect(decodeSegment(readFileSync(path)).torn).toBe(false);
  });

  it('tells damage in the newest segment from a crash by a later append after it: restored only to before it, kept for verify', async () => {
    // Each directory was its own append: e's record starts an append made after d's was acknowledged.
    const { root, files, timeOf } = await archiveWith([['a', 'b'], ['c', 'd', 'e']]);
    flipByteIn(root, 2, '"path":"d"');
    const { result, filesRoot } = await restore(root, 'newest-damaged');
    expect(result).toMatchObject({ pointMs: timeOf.get('c'), lostAfter: expect.stringContaining('journal segment 2 is damaged after its first') });
    expect(restoredDirs(filesRoot)).toEqual(['a', 'b', 'c']);
    expect((await verifySpoolArchive(root, silentLogger()))[0]?.problems).toEqual([expect.stringContaining('journal segment 2 is damaged after its first')]);
    // The agent goes on in a new segment instead of cutting the evidence off as a torn tail.
    const damaged = readFileSync(segmentFile(root, 2));
    const { tree } = await SpoolJournal.open(files, 's', BLOCK, T0 + 1000, silentLogger());
    expect([...tree.entries.keys()].sort()).toEqual(['a', 'b', 'c']);
    expect(readFileSync(segmentFile(root, 2))).toEqual(damaged);
    expect(readdirSync(join(root, 'files', 's', 'journal')).filter((n) => n.endsWith('.jnl'))).toHaveLength(3);
  });

  it('refuses a point before the first readable segment when the segments before it are damaged (not a retention limit)', async () => {
    const { root } = await archiveWith([['a'], ['b']]);
    flipByteIn(root, 1, '"ckpt"');
    expect((await restore(root, 'bad-first', T0 + 5)).result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED', skipped: expect.stringContaining('segments before 2 are damaged') });
    expect(restoredDirs((await restore(root, 'bad-first-latest')).filesRoot)).toEqual(['a', 'b']);
  });

  it('does not bridge a missing segment', async () => {
    const { root, timeOf } = await archiveWith([['a', 'b'], ['c', 'd'], ['e']]);
    unlinkSync(segmentFile(root, 2));
    // A point in segment 1's span after its last record: segment 2's changes are unknown.
    expect((await restore(root, 'missing-mid', T0 + 35)).result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED', skipped: expect.stringContaining('journal segment 2 is missing') });
    const latest = await restore(root, 'missing-latest');
    expect(latest.result).toMatchObject({ pointMs: timeOf.get('e') });
    expect(restoredDirs(latest.filesRoot)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect((await verifySpoolArchive(root, silentLogger()))[0]?.problems).toEqual(['journal segment 2 is missing']);
  });

  it('is reported by verify when its source.json cannot be used', async () => {
    const { root } = await archiveWith([['a']]);
    mkdirSync(join(root, 'files', 'broken'), { recursive: true });
    writeFileSync(join(root, sourceMetaPath('broken')), '{ not json');
    expect(await verifySpoolArchive(root, silentLogger())).toMatchObject([
      { source: 'broken', problems: [expect.stringContaining('files/broken/source.json is not valid JSON')] },
      { source: 's', problems: [] },
    ]);
  });

  it('restores exactly the record a plan pinned, whatever is recorded after it, also when the history became complete after the last change', async () => {
    const { root, files, timeOf } = await archiveWith([['a', 'b']]);
    // The first full pass ended after its last change: completeFromMs is later than b.
    const meta: SourceMeta = JSON.parse(readFileSync(join(root, sourceMetaPath('s')), 'utf8')) as SourceMeta;
    meta.completeFromMs = timeOf.get('b')! + 500;
    writeFileSync(join(root, sourceMetaPath('s')), JSON.stringify(meta));
    const planned = await spoolTreeAt(root, meta, undefined, silentLogger());
    expect(planned).toMatchObject({ pointMs: timeOf.get('b'), pin: { seq: 1, ops: 2 } });
    // A receiver still running records more (in the same segment, and in a new one) before the restore.
    const { journal, tree } = await SpoolJournal.open(files, 's', BLOCK, T0 + 2000, silentLogger());
    const late = dirOp(journal.stamp(timeOf.get('b')!), 'late-same-ms');
    tree.apply(late);
    await journal.append([encodeLineText(late)]);
    await journal.rotate(tree, { pack: 1 });
    await journal.append([encodeLineText(dirOp(journal.stamp(T0 + 3000), 'later'))]);
    const filesRoot = join(work, 'pinned');
    const [result] = await restoreSpool({ archiveDir: root, filesRoot, logger: silentLogger(), plan: new Map([['s', { pin: planned.pin }]]) });
    expect(result).toMatchObject({ pointMs: timeOf.get('b') });
    expect(result?.skipped).toBeUndefined();
    expect(restoredDirs(filesRoot)).toEqual(['a', 'b']);
    // A source the plan did not see, or left out, is left as it is.
    const [unseen] = await restoreSpool({ archiveDir: root, filesRoot: join(work, 'unplanned'), logger: silentLogger(), plan: new Map() });
    expect(unseen).toMatchObject({ skipCode: 'SPOOL_BEFORE_HISTORY', skipped: expect.stringContaining('after the promotion was planned') });
    const [left] = await restoreSpool({ archiveDir: root, filesRoot: join(work, 'left-out'), logger: silentLogger(), plan: new Map([['s', { skipped: 'no complete tree', skipCode: 'SPOOL_BEFORE_HISTORY' }]]) });
    expect(left).toMatchObject({ skipCode: 'SPOOL_BEFORE_HISTORY', skipped: 'no complete tree; not restored' });
  });

  it('starts the history again when no segment can be read: completeFromMs is dropped until the next full pass is committed', async () => {
    const src = join(work, 'fresh-src');
    mkdirSync(join(src, 'q'), { recursive: true });
    writeFileSync(join(src, 'q', 'seqno'), '812');
    const archive = join(work, 'fresh-archive');
    const syncer = (): SpoolSyncer =>
      localSyncer('s', src, archive);
    const first = syncer();
    first.start();
    await first.syncNow();
    await first.stop();
    const metaPath = join(archive, sourceMetaPath('s'));
    const completeBefore = (JSON.parse(readFileSync(metaPath, 'utf8')) as SourceMeta).completeFromMs;
    expect(completeBefore).toBeGreaterThan(0);
    for (const name of readdirSync(join(archive, 'files', 's', 'journal')).filter((n) => n.endsWith('.jnl'))) flipByteIn(archive, Number(name.slice(0, 10)), '"ckpt"');
    const restartedAt = Date.now();
    const second = syncer();
    second.start();
    await second.syncNow();
    await second.stop();
    // Complete again only from the new pass on; the old completeFromMs would have covered the new, empty start.
    expect((JSON.parse(readFileSync(metaPath, 'utf8')) as SourceMeta).completeFromMs).toBeGreaterThanOrEqual(restartedAt);
    expect((await restore(archive, 'fresh-before', restartedAt - 1)).result).toMatchObject({ skipCode: 'SPOOL_JOURNAL_DAMAGED' });
    const now = await restore(archive, 'fresh-now');
    expect(readFileSync(join(now.filesRoot, 's', 'q', 'seqno'), 'utf8')).toBe('812');
  });

});

describe('spool excludes that change over time', () => {
  it('restores a point with the excludes of that point: what was left out then is left alone on the target', async () => {
    const src = join(work, 'excl-src');
    mkdirSync(join(src, 'keep'), { recursive: true });
    mkdirSync(join(src, 'tmp'), { recursive: true });
    writeFileSync(join(src, 'keep', 'a'), 'a');
    writeFileSync(join(src, 'tmp', 'x'), 'x');
    const archive = join(work, 'excl-archive');
    const run = async (exclude: string[]): Promise<void> => {
      const s = localSyncer('s', src, archive, { source: { exclude } });
      s.start();
      await s.syncNow();
      await s.stop();
    };
    await run(['tmp/**']);
    const thenMs = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    // The operator stops excluding tmp/: the agent ships it from then on.
    await run([]);
    const target = (name: string): string => {
      const root = join(work, name);
      mkdirSync(join(root, 's', 'tmp'), { recursive: true });
      writeFileSync(join(root, 's', 'tmp', 'standby-own'), 'the standby’s own');
      return root;
    };
    const then = target('excl-then');
    const [thenResult] = await restoreSpool({ archiveDir: archive, filesRoot: then, untilMs: thenMs, logger: silentLogger() });
    expect(thenResult?.skipped).toBeUndefined();
    expect(readFileSync(join(then, 's', 'keep', 'a'), 'utf8')).toBe('a');
    // tmp/ was left out at that point: the target's tmp/ is not the archive's to delete.
    expect(readFileSync(join(then, 's', 'tmp', 'standby-own'), 'utf8')).toBe('the standby’s own');
    const now = target('excl-now');
    await restoreSpool({ archiveDir: archive, filesRoot: now, logger: silentLogger() });
    expect(readdirSync(join(now, 's', 'tmp'))).toEqual(['x']);
    // The journal records the change: the first pass under the new excludes went on in the
    // segment recording the old ones (which leave out more: both), then one records the new alone.
    const segments = readdirSync(join(archive, 'files', 's', 'journal'))
      .filter((n) => n.endsWith('.jnl'))
      .sort()
      .map((n) => decodeSegment(readFileSync(join(archive, 'files', 's', 'journal', n))).lines);
    expect(segments.map((lines) => (lines[0]?.op === 'ckpt' ? lines[0].exclude : 'none'))).toEqual([['tmp/**'], []]);
    // A point inside that pass, with the target holding a folder where the tree has tmp/x: the
    // tree's paths are restored though the excludes of the point leave tmp/ out.
    const shipped = segments[0] ?? [];
    const ops = shipped.length - shipped.findIndex((l) => l.op === 'ckpt-end') - 1;
    const inside = target('excl-inside');
    mkdirSync(join(inside, 's', 'tmp', 'x'));
    writeFileSync(join(inside, 's', 'tmp', 'x', 'standby-own'), 'the standby’s own');
    const [insideResult] = await restoreSpool({ archiveDir: archive, filesRoot: inside, logger: silentLogger(), plan: new Map([['s', { pin: { seq: 1, ops } }]]) });
    expect(insideResult?.skipped).toBeUndefined();
    expect(readFileSync(join(inside, 's', 'tmp', 'x'), 'utf8')).toBe('x');
    expect(readFileSync(join(inside, 's', 'tmp', 'standby-own'), 'utf8')).toBe('the standby’s own');
    // Started again with the same new excludes: no further checkpoint.
    await run([]);
    expect(readdirSync(join(archive, 'files', 's', 'journal')).filter((n) => n.endsWith('.jnl'))).toHaveLength(2);
  });

  it('records old and new excludes together until a full pass settles them, and not again on every start', async () => {
    const src = join(work, 'excl2-src');
    mkdirSync(join(src, 'cache'), { recursive: true });
    writeFileSync(join(src, 'cache', 'c'), 'c');
    const archive = join(work, 'excl2-archive');
    const files = new LocalArchiveFiles(archive);
    const heads = async (): Promise<unknown[]> => {
      const out: unknown[] = [];
      for (const n of readdirSync(join(archive, 'files', 's', 'journal')).filter((f) => f.endsWith('.jnl')).sort()) out.push((decodeSegment(readFileSync(join(archive, 'files', 's', 'journal', n))).lines[0] as { exclude?: unknown }).exclude);
      return out;
    };
    const make = (exclude: string[]): SpoolSyncer =>
      localSyncer('s', src, archive, { source: { exclude }, files });
    const first = make(['tmp/**']);
    first.start();
    await first.syncNow();
    await first.stop();
    // Excluding cache/ instead: both are recorded before the pass that drops cache/ from the tree.
    const second = make(['cache/**']);
    second.start();
    await second.syncNow();
    await second.stop();
    expect(await heads()).toEqual([['tmp/**'], ['tmp/**', 'cache/**'], ['cache/**']]);
  });

  it('after excludes settle, the blocks of files removed before are not reused: retention may remove their packs', async () => {
    const src = join(work, 'excl3-src');
    mkdirSync(join(src, 'tmp'), { recursive: true });
    const data = randomBytes(200 * 1024);
    writeFileSync(join(src, 'first'), data);
    writeFileSync(join(src, 'tmp', 't'), 'scratch');
    const archive = join(work, 'excl3-archive');
    let now = Date.now();
    const clock = { nowMs: (): number => now };
    const make = (exclude: string[]): SpoolSyncer =>
      localSyncer('s', src, archive, { source: { exclude, retentionSeconds: 100 }, clock });
    const first = make(['tmp/**']);
    first.start();
    await first.syncNow();
    await first.stop();
    // Removed while no agent ran; then tmp/ is no longer excluded: that pass settles the change.
    rmSync(join(src, 'first'));
    const second = make([]);
    second.start();
    try {
      await second.syncNow();
      // The same bytes again, under another name.
      now += 1_000;
      writeFileSync(join(src, 'again'), data);
      await second.syncNow();
      // Past the retention: a new segment, and the one before the excludes settled goes.
      now += 200_000;
      writeFileSync(join(src, 'later'), 'z');
      await second.syncNow();
    } finally {
      await second.stop();
    }
    const filesRoot = join(work, 'excl3-restored');
    const [result] = await restoreSpool({ archiveDir: archive, filesRoot, logger: silentLogger() });
    expect(result?.skipped).toBeUndefined();
    expect(readFileSync(join(filesRoot, 's', 'again')).equals(data)).toBe(true);
    expect((await verifySpoolArchive(archive, silentLogger()))[0]?.problems).toEqual([]);
  });
});
