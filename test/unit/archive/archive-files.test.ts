import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalArchiveFiles, checkArchivePath } from '../../../src/archive/archive-files.js';
import { alignedMemory } from '../../../src/platform/aligned-memory.js';

// Goal: no path a peer can send writes outside base/, files/ or state/ of the archive.
describe('archive paths', () => {
  it.each([
    '../../etc/passwd',
    '/etc/passwd',
    'files/../../etc/passwd',
    'binlog/mysql-bin.000001',
    'archive.json',
    'state/writer.lock',
    'state/binlog-checkpoint.json',
    'state/last-heard.json/x',
    'files//x',
    'files/./x',
    'files\\..\\x',
    'files/a\0b',
    '',
    `files/${'x'.repeat(5000)}`,
  ])('refuses %j', (path) => {
    expect(() => checkArchivePath(path)).toThrowError(expect.objectContaining({ code: 'ARCHIVE_PATH' }) as Error);
  });

  it('accepts paths under base/, files/ and state/, and writes them durably', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-files-'));
    try {
      const files = new LocalArchiveFiles(root);
      await files.putFile('base/20261122/meta.json', Buffer.from('{}'));
      await files.putFile('state/last-heard.json', Buffer.from('{}'));
      expect((await files.readFile('state/last-heard.json'))?.toString()).toBe('{}');
      await files.writeAt('files/spool/journal', 0, Buffer.from('abc'));
      await files.writeAt('files/spool/journal', 3, Buffer.from('def'));
      expect((await files.readFile('files/spool/journal'))?.toString()).toBe('abcdef');
      expect((await files.readAt('files/spool/journal', 2, 3)).toString()).toBe('cde');
      expect((await files.readAt('files/spool/journal', 4, 10)).toString()).toBe('ef');
      await expect(files.readAt('files/spool/absent', 0, 1)).rejects.toMatchObject({ code: 'ENOENT' });
      await files.write('files/spool/packs/1.pack', 0, Buffer.from('ab'));
      await files.write('files/spool/packs/1.pack', 2, Buffer.from('cd'));
      await files.write('files/spool/packs/2.pack', 0, Buffer.from('x'));
      await files.sync(['files/spool/packs/1.pack', 'files/spool/packs/2.pack']);
      expect((await files.readFile('files/spool/packs/1.pack'))?.toString()).toBe('abcd');
      await expect(files.sync(['files/spool/packs/absent.pack'])).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(files.write('binlog/x', 0, Buffer.from('x'))).rejects.toMatchObject({ code: 'ARCHIVE_PATH' });
      await files.truncate('files/spool/journal', 2);
      expect(await files.size('files/spool/journal')).toBe(2);
      expect(await files.list('base')).toEqual(['20261122']);
      await files.rename('base/20261122', 'base/20261123');
      expect(existsSync(join(root, 'base/20261123/meta.json'))).toBe(true);
      await expect(files.putFile('../escape', Buffer.from('x'))).rejects.toMatchObject({ code: 'ARCHIVE_PATH' });
      expect(existsSync(join(root, '..', 'escape'))).toBe(false);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

// Goal: long writes (their middles go past the page cache, their ends through it) land byte for
// byte where they were asked to, side by side and out of order, at any alignment.
describe('LocalArchiveFiles long writes', () => {
  it('writes unaligned long pieces, some at once, exactly', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-files-'));
    try {
      const files = new LocalArchiveFiles(root);
      const whole = randomBytes(7 * 1024 * 1024 + 123);
      // Cuts at odd places, some pieces longer than the aligned copy buffers; written in an order that is not the file's.
      const cuts = [0, 1, 4095, 4097, 300_001, 2_500_000, 2_500_001, 5_000_000, whole.length];
      const pieces = cuts.slice(1).map((end, i) => [cuts[i] as number, end] as const);
      const order = [3, 0, 5, 1, 7, 2, 6, 4];
      await Promise.all(order.slice(0, 4).map((i) => files.write('files/s/packs/1.pack', pieces[i]![0], whole.subarray(...pieces[i]!))));
      for (const i of order.slice(4)) await files.write('files/s/packs/1.pack', pieces[i]![0], whole.subarray(...pieces[i]!));
      await files.sync(['files/s/packs/1.pack']);
      expect((await files.readFile('files/s/packs/1.pack'))?.equals(whole)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('writes from aligned memory lying as in the file, and from anywhere else in it, exactly', async () => {
    const root = mkdtempSync(join(tmpdir(), 'hotspare-files-'));
    try {
      const files = new LocalArchiveFiles(root);
      const memory = Buffer.from(alignedMemory(4 * 1024 * 1024));
      randomBytes(memory.length).copy(memory);
      // [memory offset, file offset, length]: congruent modulo 4 KiB (written from memory) or not (copied).
      const writes = [
        [0, 0, 1024 * 1024],
        [1024 * 1024 + 100, 1024 * 1024 + 100, 700_000],
        [3, 1024 * 1024 + 700_100, 900_000],
      ] as const;
      await Promise.all(writes.map(([m, f, n]) => files.write('files/s/packs/2.pack', f, memory.subarray(m, m + n))));
      await files.sync(['files/s/packs/2.pack']);
      const got = (await files.readFile('files/s/packs/2.pack')) as Buffer;
      for (const [m, f, n] of writes) expect(got.subarray(f, f + n).equals(memory.subarray(m, m + n))).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
