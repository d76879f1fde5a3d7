import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { blockHasher } from '../../../src/spool/block-hash.js';
import { SPOOL_FORMAT_VERSION, encodeLineText, journalPath, packPath, sourceMetaPath, type JournalLine, type SourceMeta, type SpoolOp } from '../../../src/spool/spool-format.js';
import { restoreSpool, spoolTreeAt } from '../../../src/standby/spool-restore.js';

/**
 * Goal: a restore point inside a window in which nobody watched a source (the agent stopped,
 * the standby away) is never silent, and takes the changes found after the window by their
 * mtimes: appends and new files made before the point are there, those made after are not,
 * deletes and renames (no time) are left undone and named. Points outside windows, and journals
 * without the window's field, restore as before. Method: archives written by hand in the
 * archive's own format; real restores into temporary folders.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-unwatched-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const T0 = 1_796_000_000_000;
/** The last look before the outage, and the first pass after it. */
const A = T0 + 10_000;
const B = T0 + 60_000;
const sha256Block = blockHasher('sha256');
let archives = 0;

type Ref = [index: number, hash: string, pack: number, offset: number];

/** An archive with one source `s`: one pack, and journal segments each of a checkpoint (given lines) and operations. */
function archiveWith(build: (pack: (data: string) => Ref) => Array<{ t: number; ckpt?: JournalLine[]; ops: SpoolOp[] }>): string {
  const root = join(work, `archive-${++archives}`);
  const chunks: Buffer[] = [];
  let at = 0;
  const pack = (data: string): Ref => {
    const bytes = Buffer.from(data);
    chunks.push(bytes);
    at += bytes.length;
    return [0, sha256Block(bytes), 1, at - bytes.length];
  };
  const segments = build(pack);
  const meta: SourceMeta = { format: SPOOL_FORMAT_VERSION, name: 's', path: join(work, 'nowhere'), exclude: [], blockBytes: 65536, retentionSeconds: 86400, hooks: [], completeFromMs: T0 };
  const put = (path: string, body: string | Buffer): void => {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), body);
  };
  put(sourceMetaPath('s'), JSON.stringify(meta));
  segments.forEach((s, i) => {
    const ckpt = s.ckpt ?? [];
    const lines: JournalLine[] = [{ op: 'ckpt', t: s.t, seq: i + 1 }, ...ckpt, { op: 'ckpt-end', n: ckpt.length }, ...s.ops];
    put(journalPath('s', i + 1), lines.map(encodeLineText).join(''));
  });
  put(packPath('s', 1), Buffer.concat(chunks));
  return root;
}

const file = (t: number, path: string, data: string, ref: Ref, mtimeMs = t, ino = 1): SpoolOp => ({
  op: 'file',
  t,
  path,
  e: { kind: 'file', mode: 0o644, mtimeNs: `${mtimeMs}000000`, ctimeNs: `${mtimeMs}000000`, size: Buffer.byteLength(data), ino },
  set: [ref],
});
const dir = (t: number, path: string, mtimeMs = t, ino = 9): SpoolOp => ({ op: 'dir', t, path, e: { kind: 'dir', mode: 0o755, mtimeNs: `${mtimeMs}000000`, ino } });
/** Found by the first pass after the outage: happened at an unknown moment since A. */
const unwatched = (op: SpoolOp): SpoolOp => ({ ...op, u: A });

/** Before the outage: a log and a queue file. During it (found at B): the log appended before the point, a new queue folder and file before it, a file after it, the old queue file removed. */
function history(pack: (data: string) => Ref, mark: (op: SpoolOp) => SpoolOp = unwatched): SpoolOp[] {
  return [
    file(T0 + 1_000, 'log.dat', 'aaaa', pack('aaaa'), T0 + 1_000, 1),
    dir(T0 + 1_000, 'q', T0 + 2_000, 2),
    file(T0 + 2_000, 'q/old', 'old', pack('old'), T0 + 2_000, 3),
    { op: 'seen', t: A },
    mark(file(B, 'log.dat', 'aaaabbbb', pack('aaaabbbb'), T0 + 20_000, 1)),
    mark(dir(B, 'q2', T0 + 50_000, 4)),
    mark(file(B, 'q2/m14', 'M14', pack('M14'), T0 + 20_000, 5)),
    mark(file(B, 'late.dat', 'late', pack('late'), T0 + 50_000, 6)),
    mark({ op: 'rm', t: B, path: 'q/old' }),
    { op: 'seen', t: B + 1_000 },
    file(B + 10_000, 'after', 'after', pack('after'), B + 10_000, 7),
  ];
}

const restoreAt = async (archive: string, name: string, untilMs?: number): ReturnType<typeof restoreSpool> =>
  restoreSpool({ archiveDir: archive, filesRoot: join(work, name), untilMs, logger: silentLogger() });
const read = (name: string, path: string): string | undefined => (existsSync(join(work, name, 's', path)) ? readFileSync(join(work, name, 's', path), 'utf8') : undefined);

describe('a restore point inside a window nobody watched', () => {
  it('places created and changed files by mtime, leaves deletes undone, and says so', async () => {
    const archive = archiveWith((pack) => [{ t: T0, ops: history(pack) }]);
    const T = T0 + 30_000;
    const [r] = await restoreAt(archive, 'inside', T);
    expect(r).toMatchObject({
      uncertain: { fromMs: A, toMs: B, placedBefore: 2, placedAfter: 2, unplaced: 1, unplacedNamed: ['removed q/old'] },
      uncertainWhy: expect.stringContaining(`away from ${new Date(A).toISOString()} to ${new Date(B).toISOString()}; their state at ${new Date(T).toISOString()} is not known`) as string,
      // The newest change it includes: the append, by its mtime.
      pointMs: T0 + 20_000,
    });
    expect(r?.uncertainWhy).toContain('1 deletes and renames could not be placed');
    expect(read('inside', 'log.dat')).toBe('aaaabbbb');
    // A new folder whose own mtime is later (a file added after the point) is made for the file placed before it.
    expect(read('inside', 'q2/m14')).toBe('M14');
    expect(read('inside', 'late.dat')).toBeUndefined();
    expect(read('inside', 'q/old')).toBe('old');
    expect(read('inside', 'after')).toBeUndefined();
  });

  it('restores points outside the window, and to the end, exactly as before, without a warning', async () => {
    const archive = archiveWith((pack) => [{ t: T0, ops: history(pack) }]);
    const [before] = await restoreAt(archive, 'before', A - 1);
    expect(before?.uncertain).toBeUndefined();
    expect(read('before', 'log.dat')).toBe('aaaa');
    expect(read('before', 'q2/m14')).toBeUndefined();
    const [after] = await restoreAt(archive, 'after-window', B + 5_000);
    expect(after?.uncertain).toBeUndefined();
    expect(after?.pointMs).toBe(B);
    expect(read('after-window', 'late.dat')).toBe('late');
    expect(read('after-window', 'q/old')).toBeUndefined();
    const [end] = await restoreAt(archive, 'end');
    expect(end).toMatchObject({ pointMs: B + 10_000 });
    expect(end?.uncertain).toBeUndefined();
    expect(read('end', 'after')).toBe('after');
  });

  it('an archive from before windows were recorded restores a point as it did (the changes at the time they were found)', async () => {
    const archive = archiveWith((pack) => [{ t: T0, ops: history(pack, (op) => op).filter((op) => op.op !== 'seen') }]);
    const [r] = await restoreAt(archive, 'old-archive', T0 + 30_000);
    expect(r?.uncertain).toBeUndefined();
    expect(r?.pointMs).toBe(T0 + 2_000);
    expect(read('old-archive', 'log.dat')).toBe('aaaa');
    expect(read('old-archive', 'q2/m14')).toBeUndefined();
  });

  it('finds the window in the next segment (one begun as the agent started), and a pin gives the same tree', async () => {
    const archive = archiveWith((pack) => {
      const ops = history(pack);
      const before = ops.slice(0, 4);
      const window = ops.slice(4);
      const log = before[0] as Extract<SpoolOp, { op: 'file' }>;
      const q = before[1] as Extract<SpoolOp, { op: 'dir' }>;
      const old = before[2] as Extract<SpoolOp, { op: 'file' }>;
      // The second segment's checkpoint is the tree at A, written as the agent started (other excludes), at B.
      const ckpt: JournalLine[] = [
        { op: 'ent', path: 'log.dat', e: { ...log.e, blocks: [log.set[0]?.slice(1) as [string, number, number]] } },
        { op: 'ent', path: 'q', e: q.e },
        { op: 'ent', path: 'q/old', e: { ...old.e, blocks: [old.set[0]?.slice(1) as [string, number, number]] } },
      ];
      return [
        { t: T0, ops: before },
        { t: B, ckpt, ops: window },
      ];
    });
    const T = T0 + 30_000;
    const [r] = await restoreAt(archive, 'next-segment', T);
    expect(r?.uncertain).toMatchObject({ fromMs: A, placedBefore: 2, unplaced: 1 });
    expect(read('next-segment', 'q2/m14')).toBe('M14');
    expect(read('next-segment', 'late.dat')).toBeUndefined();
    const meta = JSON.parse(readFileSync(join(archive, sourceMetaPath('s')), 'utf8')) as SourceMeta;
    const planned = await spoolTreeAt(archive, meta, T, silentLogger());
    const pinned = await spoolTreeAt(archive, meta, T, silentLogger(), { pin: planned.pin });
    expect([...pinned.tree.entries.keys()].sort()).toEqual([...planned.tree.entries.keys()].sort());
    expect(pinned.uncertain).toEqual(planned.uncertain);
  });
});
