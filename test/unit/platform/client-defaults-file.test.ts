import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { withClientDefaultsFile } from '../../../src/platform/client-defaults-file.js';

// Goal: the password reaches the server's tools through a private file that never outlives
// its use: removed after it, and, when a killed process could not remove it, at the next use.

describe('client defaults file', () => {
  it('is private while in use, quotes its values, and is gone afterwards, also after a failure', async () => {
    let seen = '';
    await withClientDefaultsFile({ user: 'u"x', password: 'p w#1', host: 'db', port: 3307 }, async (path) => {
      seen = path;
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(readFileSync(path, 'utf8')).toBe('[client]\nuser="u\\"x"\npassword="p w#1"\nhost="db"\nport=3307\nprotocol=TCP\n');
    });
    expect(existsSync(seen)).toBe(false);
    await expect(withClientDefaultsFile({ user: 'u', password: 'p' }, async (path) => {
      seen = path;
      throw new Error('the tool failed');
    })).rejects.toThrow('the tool failed');
    expect(existsSync(seen)).toBe(false);
  });

  it("removes the file a killed process left behind, and leaves a live process's alone", async () => {
    // A pid that is certainly gone: a process that has exited.
    const gone = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout);
    const stale = join(tmpdir(), `hotspare-client-${deadPid}-left`);
    const live = join(tmpdir(), `hotspare-client-${process.ppid}-inuse`);
    for (const dir of [stale, live]) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'client.cnf'), '[client]\npassword="secret"\n', { mode: 0o600 });
    }
    try {
      await withClientDefaultsFile({ user: 'u', password: 'p' }, async () => undefined);
      expect(existsSync(stale)).toBe(false);
      expect(existsSync(live)).toBe(true);
    } finally {
      spawnSync('rm', ['-rf', stale, live]);
    }
  });
});
