import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { blockHasher } from '../../../src/spool/block-hash.js';
import { SPOOL_FORMAT_VERSION, encodeLineText, journalPath, packPath, sourceMetaPath, type JournalLine, type SourceMeta, type SpoolOp } from '../../../src/spool/spool-format.js';
import { restoreSpool } from '../../../src/standby/spool-restore.js';

/**
 * Goal: a spool restore never writes outside its root, whatever the archive's journal says,
 * and never restores a partial history over a target (a point before the source's history is
 * complete leaves the target as it is). Method: archives written by hand, line by line, in the
 * archive's own format; real restores into temporary folders.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-restore-safety-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const T0 = 1_796_000_000_000;
const BLOCK = 65536;
/** Blocks named as archives from before BLAKE3 named them (their source.json records no blockHash). */
const sha256Block = blockHasher('sha256');
let archives = 0;

/** An archive with one source `s`: its source.json, one pack holding `data`, one journal segment of a checkpoint (at T0) and `ops`. */
function archiveWith(ops: (pack: (data: string) => [index: number, hash: string, pack: number, offset: number]) => SpoolOp[], meta: Partial<SourceMeta> = {}): string {
  const root = join(work, `archive-${++archives}`);
  const chunks: Buffer[] = [];
  let at = 0;
  const pack = (data: string): [number, string, number, number] => {
    const bytes = Buffer.from(data);
    chunks.push(bytes);
    at += bytes.length;
    return [0, sha256Block(bytes), 1, at - bytes.length];
  };
  const lines: JournalLine[] = [{ op: 'ckpt', t: T0, seq: 1 }, { op: 'ckpt-end', n: 0 }, ...ops(pack)];
  const full: SourceMeta = { format: SPOOL_FORMAT_VERSION, name: 's', path: join(work, 'nowhere'), exclude: [], blockBytes: BLOCK, retentionSeconds: 86400, hooks: [], completeFromMs: T0, ...meta };
  for (const [path, body] of [
    [sourceMetaPath('s'), JSON.stringify(full)],
    [journalPath('s', 1), lines.map(encodeLineText).join('')],
    [packPath('s', 1), Buffer.concat(chunks)],
  ] as const) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), body);
  }
  return root;
}

const fileOp = (t: number, path: string, data: string, ref: [number, string, number, number]): SpoolOp => ({
  op: 'file',
  t,
  path,
  e: { kind: 'file', mode: 0o644, mtimeNs: `${t}000000`, ctimeNs: `${t}000000`, size: Buffer.byteLength(data), ino: 1 },
  set: [ref],
});

const restore = (archive: string, filesRoot: string, untilMs?: number): ReturnType<typeof restoreSpool> =>
  restoreSpool({ archiveDir: archive, filesRoot, untilMs, logger: silentLogger() });

describe('spool restore against hostile or partial archives', () => {
  it('refuses a path that climbs out of the root, and writes nothing', async () => {
    const archive = archiveWith((pack) => [fileOp(T0 + 1, 'ok.txt', 'fine', pack('fine')), fileOp(T0 + 2, '../../escaped.txt', 'out', pack('out'))]);
    const root = join(work, 'climb');
    // The source is left out (and reported), not the whole promotion refused.
    expect(await restore(archive, root)).toMatchObject([{ name: 's', skipCode: 'SPOOL_JOURNAL', skipped: expect.stringContaining('../../escaped.txt') }]);
    expect(existsSync(join(work, 'escaped.txt'))).toBe(false);
    expect(existsSync(join(root, 's', 'ok.txt'))).toBe(false);
  });

  it('refuses a file recorded under a link (which restore would follow), and writes nothing through it', async () => {
    const outside = join(work, 'outside');
    mkdirSync(outside);
    const archive = archiveWith((pack) => [
      { op: 'link', t: T0 + 1, path: 'a', e: { kind: 'link', target: outside, mtimeNs: `${T0}000000`, ino: 2 } },
      fileOp(T0 + 2, 'a/through-link.txt', 'x', pack('x')),
    ]);
    expect(await restore(archive, join(work, 'via-link'))).toMatchObject([{ skipCode: 'SPOOL_JOURNAL' }]);
    expect(existsSync(join(outside, 'through-link.txt'))).toBe(false);
  });

  it('refuses a source written by a newer hotspare (a later spool format), and writes nothing', async () => {
    const archive = archiveWith((pack) => [fileOp(T0 + 1, 'a.txt', 'a', pack('a'))], { format: SPOOL_FORMAT_VERSION + 1 });
    const root = join(work, 'newer');
    expect(await restore(archive, root)).toMatchObject([{ name: 's', skipCode: 'SPOOL_META', skipped: expect.stringContaining('newer hotspare') }]);
    expect(existsSync(join(root, 's'))).toBe(false);
  });

  it('finds a block id of no known form before the target changes', async () => {
    const archive = archiveWith((pack) => [
      fileOp(T0 + 1, 'a.txt', 'a', pack('a')),
      fileOp(T0 + 2, 'b.txt', 'b', ((ref) => [ref[0], 'zz:not-a-block-id', ref[2], ref[3]] as [number, string, number, number])(pack('b'))),
    ]);
    const root = join(work, 'bad-id');
    mkdirSync(join(root, 's'), { recursive: true });
    writeFileSync(join(root, 's', 'keep.txt'), 'the target before');
    expect(await restore(archive, root)).toMatchObject([{ name: 's', skipCode: 'SPOOL_JOURNAL', skipped: expect.stringContaining('no known form') }]);
    expect(readFileSync(join(root, 's', 'keep.txt'), 'utf8')).toBe('the target before');
  });

  it('finds a block whose pieces make no sense (longer than the block, or no list) before the target changes', async () => {
    for (const [i, tail] of [[[[1, 0, 9]]], ['not a list'], [[[1, -1, 1]]]].entries()) {
      const archive = archiveWith((pack) => [
        fileOp(T0 + 1, 'a.txt', 'a', pack('a')),
        fileOp(T0 + 2, 'b.txt', 'bb', ((ref) => [...ref, tail[0]] as unknown as [number, string, number, number])(pack('bb'))),
      ]);
      const root = join(work, `bad-pieces-${i}`);
      mkdirSync(join(root, 's'), { recursive: true });
      writeFileSync(join(root, 's', 'keep.txt'), 'the target before');
      expect(await restore(archive, root)).toMatchObject([{ name: 's', skipCode: 'SPOOL_JOURNAL', skipped: expect.stringContaining('a place of no known form') }]);
      expect(readFileSync(join(root, 's', 'keep.txt'), 'utf8')).toBe('the target before');
    }
  });

  it('refuses a source.json whose name would place the source outside --files-root', async () => {
    const archive = archiveWith(() => [], { name: '../../x' });
    expect(await restore(archive, join(work, 'meta'))).toMatchObject([{ name: 's', skipCode: 'SPOOL_META' }]);
    // Where the name would have led: --files-root/../../x, beside the test's own folder.
    expect(existsSync(join(work, '..', 'x'))).toBe(false);
  });

  it('does not write through a link the target holds at an excluded path', async () => {
    const outside = join(work, 'outside-excluded');
    mkdirSync(outside);
    const archive = archiveWith(
      (pack) => [{ op: 'dir', t: T0 + 1, path: 'log', e: { kind: 'dir', mode: 0o755, mtimeNs: `${T0}000000`, ino: 3 } }, fileOp(T0 + 2, 'log/x', 'x', pack('x'))],
      { exclude: ['log', 'log/**'] },
    );
    const root = join(work, 'excluded');
    mkdirSync(join(root, 's'), { recursive: true });
    symlinkSync(outside, join(root, 's', 'log'));
    // The tree holds log/ (an excluded path, as while excludes change): the link is replaced, never followed.
    const [result] = await restore(archive, root);
    expect(result?.skipped).toBeUndefined();
    expect(lstatSync(join(root, 's', 'log')).isDirectory()).toBe(true);
    expect(readFileSync(join(root, 's', 'log', 'x'), 'utf8')).toBe('x');
    expect(existsSync(join(outside, 'x'))).toBe(false);
  });

  it('refuses a source folder under --files-root that is a link, and deletes nothing where it points', async () => {
    const outside = join(work, 'outside-root');
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep.txt'), 'not in the archive');
    const archive = archiveWith((pack) => [fileOp(T0 + 1, 'ok.txt', 'fine', pack('fine'))]);
    const root = join(work, 'root-link');
    mkdirSync(root);
    symlinkSync(outside, join(root, 's'));
    expect(await restore(archive, root)).toMatchObject([{ skipCode: 'SPOOL_RESTORE_PATH' }]);
    expect(readFileSync(join(outside, 'keep.txt'), 'utf8')).toBe('not in the archive');
    expect(existsSync(join(outside, 'ok.txt'))).toBe(false);
  });

  it('does not set a folder\'s mode through a link the target holds at an excluded path', async () => {
    const outside = join(work, 'outside-mode');
    mkdirSync(outside, { mode: 0o755 });
    const archive = archiveWith(() => [{ op: 'dir', t: T0 + 1, path: 'log', e: { kind: 'dir', mode: 0o777, mtimeNs: `${T0}000000`, ino: 3 } }], { exclude: ['log', 'log/**'] });
    const root = join(work, 'excluded-empty');
    mkdirSync(join(root, 's'), { recursive: true });
    symlinkSync(outside, join(root, 's', 'log'));
    const [result] = await restore(archive, root);
    expect(result?.skipped).toBeUndefined();
    expect(lstatSync(join(root, 's', 'log')).mode & 0o777).toBe(0o777);
    expect(lstatSync(outside).mode & 0o777).toBe(0o755);
  });

  it('a source without a journal (an agent stopped before its first) is left as it is and reported, not a failure of the restore', async () => {
    const archive = join(work, 'no-journal');
    const meta: SourceMeta = { format: SPOOL_FORMAT_VERSION, name: 's', path: join(work, 'nowhere'), exclude: [], blockBytes: BLOCK, retentionSeconds: 86400, hooks: [], completeFromMs: T0 };
    mkdirSync(join(archive, sourceMetaPath('s'), '..'), { recursive: true });
    writeFileSync(join(archive, sourceMetaPath('s')), JSON.stringify(meta));
    expect(await restore(archive, join(work, 'no-journal-root'))).toMatchObject([{ name: 's', skipCode: 'SPOOL_NO_HISTORY' }]);
  });

  it('leaves the target as it is for a point before the history is complete, and restores from that point on', async () => {
    const archive = archiveWith((pack) => [fileOp(T0 + 10, 'seqno', '812', pack('812'))], { completeFromMs: T0 + 50 });
    const root = join(work, 'partial');
    mkdirSync(join(root, 's'), { recursive: true });
    writeFileSync(join(root, 's', 'keep'), 'the standby’s own');
    // Before the first recorded state, and inside the first pass: nothing deleted, nothing written.
    for (const until of [T0 - 1000, T0 + 20]) {
      const [result] = await restore(archive, root, until);
      expect(result?.skipped).toMatch(/no complete tree/);
      expect(readFileSync(join(root, 's', 'keep'), 'utf8')).toBe('the standby’s own');
      expect(existsSync(join(root, 's', 'seqno'))).toBe(false);
    }
    // A folder of the standby's own too: removed with what it holds, counted once.
    mkdirSync(join(root, 's', 'local', 'deep'), { recursive: true });
    writeFileSync(join(root, 's', 'local', 'deep', 'x'), 'x');
    const [done] = await restore(archive, root, T0 + 60);
    expect(done?.skipped).toBeUndefined();
    expect(readFileSync(join(root, 's', 'seqno'), 'utf8')).toBe('812');
    expect(existsSync(join(root, 's', 'keep'))).toBe(false);
    // What the restore removed is counted for the report: `keep` and `local` (with all in it).
    expect(done?.removed).toBe(2);
  });

  it('a source whose first full pass never completed is not restored at all; one of format 1 counts as complete', async () => {
    const never = archiveWith((pack) => [fileOp(T0 + 10, 'f', 'a', pack('a'))], { completeFromMs: undefined });
    const [skipped] = await restore(never, join(work, 'never'));
    expect(skipped?.skipped).toMatch(/no full pass/);
    const legacy = archiveWith((pack) => [fileOp(T0 + 10, 'f', 'a', pack('a'))], { format: 1, completeFromMs: undefined });
    const [restored] = await restore(legacy, join(work, 'legacy'));
    expect(restored?.skipped).toBeUndefined();
    expect(readFileSync(join(work, 'legacy', 's', 'f'), 'utf8')).toBe('a');
  });

  it('gives each file, folder and link its recorded owner when restoring as root (else they are the restoring user\'s)', async () => {
    const archive = archiveWith((pack) => [
      { op: 'dir', t: T0 + 1, path: 'queue', e: { kind: 'dir', mode: 0o750, mtimeNs: `${T0}000000`, ino: 5, uid: 1234, gid: 4321 } },
      { ...fileOp(T0 + 2, 'queue/seqno', '812', pack('812')), e: { kind: 'file', mode: 0o640, mtimeNs: `${T0}000000`, ctimeNs: `${T0}000000`, size: 3, ino: 6, uid: 1234, gid: 4321 } } as SpoolOp,
      { op: 'link', t: T0 + 3, path: 'current', e: { kind: 'link', target: 'queue/seqno', mtimeNs: `${T0}000000`, ino: 7, uid: 1234, gid: 4321 } },
    ]);
    const root = join(work, 'owners');
    await restore(archive, root);
    const asRoot = process.getuid?.() === 0;
    const want = asRoot ? { uid: 1234, gid: 4321 } : { uid: process.getuid?.(), gid: process.getgid?.() };
    for (const path of ['queue', 'queue/seqno', 'current']) expect(lstatSync(join(root, 's', path))).toMatchObject(want);
    expect(lstatSync(join(root, 's', 'queue/seqno')).mode & 0o7777).toBe(0o640);
  });

  it('finds a pack missing or cut short before it changes anything on the target', async () => {
    for (const damage of ['cut', 'missing'] as const) {
      const archive = archiveWith((pack) => [fileOp(T0 + 1, 'a.txt', 'first', pack('first')), fileOp(T0 + 2, 'b.txt', 'second', pack('second'))]);
      const packFile = join(archive, packPath('s', 1));
      if (damage === 'cut') writeFileSync(packFile, readFileSync(packFile).subarray(0, 8));
      else rmSync(packFile);
      const root = join(work, `pack-${damage}`);
      mkdirSync(join(root, 's'), { recursive: true });
      writeFileSync(join(root, 's', 'extra'), 'the standby’s own');
      writeFileSync(join(root, 's', 'a.txt'), 'old');
      const [result] = await restore(archive, root);
      expect(result).toMatchObject({ skipCode: 'SPOOL_DATA_MISSING', skipped: expect.stringContaining('nothing of the source was changed') });
      expect(result?.skipped).not.toMatch(/partly restored/);
      expect(readFileSync(join(root, 's', 'extra'), 'utf8')).toBe('the standby’s own');
      expect(readFileSync(join(root, 's', 'a.txt'), 'utf8')).toBe('old');
    }
  });
});
