import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalArchiveFiles, type ArchiveFiles } from '../../../src/archive/archive-files.js';
import { HotspareError } from '../../../src/core/errors.js';
import { BaseStaging, StagedBaseFiles } from '../../../src/replica/targets/staged-base-files.js';
import { silentLogger } from '../../../src/platform/logger.js';
import { within } from '../../../src/platform/within.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/**
 * A standby archive behind a link that drops once it has carried `budget` bytes of file data:
 * every later call fails as a lost connection would (the real wire is in remote-base-resume).
 */
function linkTo(root: string, budget: number): ArchiveFiles {
  const local = new LocalArchiveFiles(root);
  let left = budget;
  const lost = (): never => {
    throw new HotspareError('RECEIVER_LOST', 'the link dropped', { hint: 'test' });
  };
  return new Proxy(local, {
    get(target, name: keyof ArchiveFiles) {
      const op = target[name] as (...args: unknown[]) => Promise<unknown>;
      return async (...args: unknown[]) => {
        if (left < 0) lost();
        if (name === 'write') {
          const data = args[2] as Buffer;
          left -= data.length;
          // The bytes sent before the drop reach the standby; the answer does not.
          if (left < 0) {
            await op.call(target, args[0], args[1], data.subarray(0, data.length + left));
            lost();
          }
        }
        return op.apply(target, args);
      };
    },
  });
}

describe('StagedBaseFiles', () => {
  it('stages a base locally, uploads it at the rename, and resumes each file where the standby stopped', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotspare-staged-'));
    dirs.push(dir);
    const standby = join(dir, 'standby');
    const staging = new BaseStaging(join(dir, 'stage'), silentLogger());
    const data = randomBytes(9 * 1024 * 1024 + 5);
    // First session: the backup writes at local speed; the link drops 3 MiB into the upload.
    const first = new StagedBaseFiles(linkTo(standby, 3 * 1024 * 1024), staging);
    await first.putFile('base/b1.partial/data-1.sql.gz', data);
    await first.putFile('base/b1.partial/metadata.json', Buffer.from('{"id":"b1"}'));
    expect(existsSync(join(standby, 'base'))).toBe(false);
    await expect(first.rename('base/b1.partial', 'base/b1')).rejects.toMatchObject({ code: 'RECEIVER_LOST' });
    // The backup's failure handling removes its partial: the standby's part-file stays for the resume.
    await first.remove('base/b1.partial').catch(() => undefined);
    expect(readFileSync(join(standby, 'base/b1.partial/data-1.sql.gz')).length).toBe(3 * 1024 * 1024);

    // Next sessions: listing base/ finishes the upload before it answers, resuming at the standby's size.
    let listed: string[] | undefined;
    for (let attempt = 0; listed === undefined; attempt += 1) {
      expect(attempt).toBeLessThan(5);
      listed = await new StagedBaseFiles(linkTo(standby, 4 * 1024 * 1024), staging).list('base').catch(() => undefined);
    }
    expect(listed).toEqual(['b1']);
    expect(readFileSync(join(standby, 'base/b1/data-1.sql.gz')).equals(data)).toBe(true);
    expect(readFileSync(join(standby, 'base/b1/metadata.json'), 'utf8')).toBe('{"id":"b1"}');
    expect(readdirSync(join(dir, 'stage', 'base'))).toEqual([]);
  });

  it('a stop ends an upload between pieces, without waiting for those in flight; the next start finishes it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotspare-staged-'));
    dirs.push(dir);
    const standby = join(dir, 'standby');
    // A link so slow that no piece is ever acknowledged: each write reaches the standby, its answer never comes.
    const local = new LocalArchiveFiles(standby);
    let firstWrite!: () => void;
    const writing = new Promise<void>((r) => (firstWrite = r));
    const stalled: ArchiveFiles = new Proxy(local, {
      get(target, name: keyof ArchiveFiles) {
        const op = target[name] as (...args: unknown[]) => Promise<unknown>;
        if (name !== 'write') return op.bind(target);
        return async (...args: unknown[]) => {
          await op.apply(target, args);
          firstWrite();
          return new Promise(() => undefined);
        };
      },
    });
    const stop = new AbortController();
    const staging = new BaseStaging(join(dir, 'stage'), silentLogger(), undefined, stop.signal);
    const data = randomBytes(9 * 1024 * 1024 + 5);
    const files = new StagedBaseFiles(stalled, staging);
    await files.putFile('base/b3.partial/data-1.sql.gz', data);
    await files.putFile('base/b3.partial/metadata.json', Buffer.from('{"id":"b3"}'));
    const renamed = files.rename('base/b3.partial', 'base/b3');
    renamed.catch(() => undefined);
    await writing;
    stop.abort();
    await expect(renamed).rejects.toMatchObject({ code: 'BASE_ABORTED' });
    // The base stays staged and ready; nothing new starts once stopping.
    expect(readdirSync(join(dir, 'stage', 'base'))).toEqual(['b3']);
    await expect(files.list('base')).rejects.toMatchObject({ code: 'BASE_ABORTED' });

    // The next start (a new staging over the same folder) finishes the upload before it answers.
    const next = new StagedBaseFiles(new LocalArchiveFiles(standby), new BaseStaging(join(dir, 'stage'), silentLogger()));
    expect(await next.list('base')).toEqual(['b3']);
    expect(readFileSync(join(standby, 'base/b3/data-1.sql.gz')).equals(data)).toBe(true);
    expect(readdirSync(join(dir, 'stage', 'base'))).toEqual([]);
  });

  it('leaves nothing staged when a backup fails, and refuses a base larger than its bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotspare-staged-'));
    dirs.push(dir);
    const staging = new BaseStaging(join(dir, 'stage'), silentLogger(), 1000);
    const files = new StagedBaseFiles(new LocalArchiveFiles(join(dir, 'standby')), staging);
    await files.putFile('base/b2.partial/schema.sql.gz', Buffer.alloc(600));
    await expect(files.write('base/b2.partial/data-1.sql.gz', 0, Buffer.alloc(600))).rejects.toMatchObject({ code: 'BASE_STAGING_FULL' });
    await files.remove('base/b2.partial');
    expect(readdirSync(join(dir, 'stage', 'base'))).toEqual([]);
    // Other paths go straight to the standby.
    await files.putFile('files/x', Buffer.from('x'));
    expect(readFileSync(join(dir, 'standby', 'files/x'), 'utf8')).toBe('x');
    expect(await files.list('base')).toEqual([]);
  });
  it('a staged partial base that cannot be removed still ends its backup: idle() resolves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hotspare-staged-'));
    dirs.push(dir);
    const staging = new BaseStaging(join(dir, 'stage'), silentLogger());
    const files = new StagedBaseFiles(new LocalArchiveFiles(join(dir, 'standby')), staging);
    await files.putFile('base/b2.partial/data-1.sql.gz', Buffer.from('rows'));
    expect(staging.isActive('base/b2.partial')).toBe(true);
    // The partial base's file is made immutable, so its removal fails as on a broken disk.
    const stuck = join(dir, 'stage', 'base', 'b2.partial', 'data-1.sql.gz');
    execFileSync('chattr', ['+i', stuck]);
    try {
      await expect(files.remove('base/b2.partial')).rejects.toThrow();
      expect(staging.isActive('base/b2.partial')).toBe(false);
      expect(await within(staging.idle().then(() => 'idle'), 5_000), 'idle() still waiting after 5 s').toEqual({ value: 'idle' });
    } finally {
      execFileSync('chattr', ['-i', stuck]);
    }
  });
});
