import { describe, expect, it } from 'vitest';
import { archiveWriteError } from '../../../src/archive/archive-errors.js';
import { HotspareError } from '../../../src/core/errors.js';

function systemError(code: string, syscall = 'write'): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: something, ${syscall}`), { code, syscall });
}

describe('archiveWriteError', () => {
  it('names what a failed write means for the archive, keeping the system error as its cause', () => {
    const cases: Array<[string, string, string]> = [
      ['ENOSPC', 'DISK_FULL', 'free space on the archive volume'],
      ['EDQUOT', 'DISK_FULL', 'raise the quota'],
      ['EROFS', 'ARCHIVE_READ_ONLY', 'remount it read-write'],
      ['EACCES', 'ARCHIVE_PERMISSION', 'write access to the archive folder'],
      ['EPERM', 'ARCHIVE_PERMISSION', 'chattr -i'],
      ['EIO', 'ARCHIVE_IO', 'kernel log'],
    ];
    for (const [errno, code, hint] of cases) {
      const cause = systemError(errno);
      const mapped = archiveWriteError(cause, '/srv/archive');
      expect(mapped).toBeInstanceOf(HotspareError);
      const err = mapped as HotspareError;
      expect(err.code).toBe(code);
      expect(err.message).toContain(`/srv/archive (${errno} in write)`);
      expect(err.hint).toContain(hint);
      expect(err.cause).toBe(cause);
    }
  });

  it('passes through what it does not know, and what already says what it means', () => {
    const other = systemError('ENOENT', 'open');
    expect(archiveWriteError(other, '/a')).toBe(other);
    const plain = new Error('not a system error');
    expect(archiveWriteError(plain, '/a')).toBe(plain);
    const own = new HotspareError('ARCHIVE_LOCKED', 'locked', { hint: 'h' });
    expect(archiveWriteError(own, '/a')).toBe(own);
    expect(archiveWriteError(undefined, '/a')).toBeUndefined();
  });
});
