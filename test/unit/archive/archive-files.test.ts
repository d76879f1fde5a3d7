import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalArchiveFiles, checkArchivePath } from '../../../src/archive/archive-files.js';

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
