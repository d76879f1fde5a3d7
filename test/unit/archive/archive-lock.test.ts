import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveLock } from '../../../src/archive/archive-lock.js';
import { bootId, processStartTicks } from '../../../src/platform/process-alive.js';

// Goal: one writer per archive. A live holder is refused; a lock left by a process that is gone
// is taken over, also when its pid has since been given to another process (after a crash and
// a reboot, a stale lock's pid often belongs to something else: before, that archive stayed
// locked until an operator removed the file); another host's lock is refused, never guessed at.

let dir: string;
let other: ChildProcess;
const lockPath = (archive: string): string => join(archive, 'state', 'writer.lock');
const archiveWithLock = (name: string, holder: object): string => {
  const archive = join(dir, name);
  mkdirSync(join(archive, 'state'), { recursive: true });
  writeFileSync(lockPath(archive), JSON.stringify(holder));
  return archive;
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotspare-lock-'));
  // A live process other than this one, to stand for another writer.
  other = spawn('sleep', ['60'], { stdio: 'ignore' });
});

afterAll(() => {
  other.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('ArchiveLock', () => {
  it('records who holds it: pid, host, boot and start time', async () => {
    const archive = join(dir, 'fresh');
    mkdirSync(join(archive, 'state'), { recursive: true });
    const lock = await ArchiveLock.acquire(archive, 'test');
    expect(JSON.parse(readFileSync(lockPath(archive), 'utf8'))).toEqual({ pid: process.pid, owner: 'test', host: hostname(), bootId: bootId(), startTicks: processStartTicks(process.pid) });
    await lock.release();
  });

  it('refuses a live holder of this host, in the old format too', async () => {
    const pid = other.pid as number;
    const live = { pid, owner: 'hotspare receive', host: hostname(), bootId: bootId(), startTicks: processStartTicks(pid) };
    await expect(ArchiveLock.acquire(archiveWithLock('live', live), 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED', message: expect.stringContaining(`hotspare receive (pid ${pid})`) });
    await expect(ArchiveLock.acquire(archiveWithLock('old-format', { pid, owner: 'agent' }), 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED' });
  });

  it('takes over a lock whose pid now belongs to a later process, or that an earlier boot left', async () => {
    const pid = other.pid as number;
    const reused = await ArchiveLock.acquire(archiveWithLock('reused', { pid, owner: 'agent', host: hostname(), bootId: bootId(), startTicks: '1' }), 'test');
    await reused.release();
    const rebooted = await ArchiveLock.acquire(archiveWithLock('rebooted', { pid, owner: 'agent', host: hostname(), bootId: 'an-earlier-boot', startTicks: processStartTicks(pid) }), 'test');
    await rebooted.release();
  });

  it("refuses another host's lock, whatever pid it names, and says which host and which file", async () => {
    const archive = archiveWithLock('elsewhere', { pid: 999_999_999, owner: 'agent replica a', host: 'standby-2' });
    await expect(ArchiveLock.acquire(archive, 'test')).rejects.toMatchObject({
      code: 'ARCHIVE_LOCKED',
      message: expect.stringContaining('on host standby-2'),
      hint: expect.stringContaining(lockPath(archive)),
    });
  });
});
