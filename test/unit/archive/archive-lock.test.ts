import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ArchiveLock, LOCK_WRITE_GRACE_MS, type LockFs } from '../../../src/archive/archive-lock.js';
import { bootId, pidNamespace, processStartTicks } from '../../../src/platform/process-alive.js';

// Goal: one writer per archive. A live holder is refused; a lock left by a process that is gone
// is taken over, also when its pid has since been given to another process (after a crash and
// a reboot, a stale lock's pid often belongs to something else: before, that archive stayed
// locked until an operator removed the file); another host's or pid namespace's lock is
// refused, never guessed at. Linux (/proc) only, as the product.

let dir: string;
let other: ChildProcess;
let oddName: ChildProcess;
const lockPath = (archive: string): string => join(archive, 'state', 'writer.lock');
const archiveWithLock = (name: string, holder: object | string): string => {
  const archive = join(dir, name);
  mkdirSync(join(archive, 'state'), { recursive: true });
  writeFileSync(lockPath(archive), typeof holder === 'string' ? holder : JSON.stringify(holder));
  return archive;
};
/** A lock of this host, boot and pid namespace naming `pid`, started when `pid` started unless told. */
const here = (pid: number, extra: object = {}): object => ({ pid, owner: 'agent replica a', host: hostname(), bootId: bootId(), pidNs: pidNamespace(), startTicks: processStartTicks(pid), ...extra });
const takesOver = async (archive: string): Promise<void> => {
  const lock = await ArchiveLock.acquire(archive, 'test');
  expect(JSON.parse(readFileSync(lockPath(archive), 'utf8'))).toMatchObject({ pid: process.pid, owner: 'test' });
  await lock.release();
  // Nothing of the attempt is left beside the lock.
  expect(readdirSync(join(archive, 'state'))).toEqual([]);
};

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotspare-lock-'));
  // Live processes other than this one, standing for another writer; one whose command name
  // holds spaces and parentheses, as /proc/<pid>/stat shows it.
  other = spawn('sleep', ['60'], { stdio: 'ignore' });
  symlinkSync('/bin/sleep', join(dir, 'a b) (c'));
  oddName = spawn(join(dir, 'a b) (c'), ['60'], { stdio: 'ignore' });
});

afterAll(() => {
  other.kill('SIGKILL');
  oddName.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('ArchiveLock', () => {
  it('records who holds it: pid, host, boot, pid namespace and start time', async () => {
    const archive = join(dir, 'fresh');
    mkdirSync(join(archive, 'state'), { recursive: true });
    const lock = await ArchiveLock.acquire(archive, 'test');
    expect(JSON.parse(readFileSync(lockPath(archive), 'utf8'))).toEqual(here(process.pid, { owner: 'test' }));
    await lock.release();
    expect(existsSync(lockPath(archive))).toBe(false);
  });

  it('reads a start time after a command name with spaces and parentheses', () => {
    const mine = Number(processStartTicks(process.pid));
    const odd = processStartTicks(oddName.pid as number) ?? '';
    expect(odd).toMatch(/^\d+$/);
    expect(Number(odd)).toBeGreaterThanOrEqual(mine);
  });

  it('refuses a live holder of this host, in the old format too', async () => {
    const pid = other.pid as number;
    await expect(ArchiveLock.acquire(archiveWithLock('live', here(pid, { owner: 'hotspare receive' })), 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED', message: expect.stringContaining(`hotspare receive (pid ${pid})`) });
    await expect(ArchiveLock.acquire(archiveWithLock('old-format', { pid, owner: 'agent' }), 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED' });
    expect(JSON.parse(readFileSync(lockPath(join(dir, 'live')), 'utf8'))).toMatchObject({ pid });
  });

  it('takes over a lock whose process is gone, whose pid now belongs to a later process, that an earlier boot left, that names this pid, or that names nobody', async () => {
    const pid = other.pid as number;
    await takesOver(archiveWithLock('dead', here(pid, { pid: 999_999_999, startTicks: undefined })));
    await takesOver(archiveWithLock('dead-old-format', { pid: 999_999_999, owner: 'agent' }));
    await takesOver(archiveWithLock('reused', here(pid, { startTicks: '1' })));
    await takesOver(archiveWithLock('rebooted', here(pid, { bootId: 'an-earlier-boot' })));
    await takesOver(archiveWithLock('own-pid', here(process.pid, { startTicks: '1' })));
    // Naming nobody (empty or cut short) and older than a lock takes to be written: its writer
    // died between create and write.
    const past = (Date.now() - 2 * LOCK_WRITE_GRACE_MS) / 1000;
    for (const [name, text] of [['garbled', '{"pid":'], ['empty', '']] as const) {
      const archive = archiveWithLock(name, text);
      utimesSync(lockPath(archive), past, past);
      await takesOver(archive);
    }
  });

  it('refuses a lock naming nobody made just now: on a volume without hard links it is created, then written', async () => {
    for (const [name, text] of [['empty-young', ''], ['garbled-young', '{"pid":']] as const) {
      const archive = archiveWithLock(name, text);
      await expect(ArchiveLock.acquire(archive, 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED', message: expect.stringContaining('being locked by another process just now') });
      expect(readFileSync(lockPath(archive), 'utf8')).toBe(text);
    }
  });

  it('works on a volume without hard links: creates the lock whole, refuses a live holder, takes over a stale one', async () => {
    let links = 0;
    const noLinks: LockFs = {
      link: () => {
        links += 1;
        return Promise.reject(Object.assign(new Error('EPERM: operation not permitted, link'), { code: 'EPERM' }));
      },
    };
    const archive = join(dir, 'no-links');
    mkdirSync(join(archive, 'state'), { recursive: true });
    const lock = await ArchiveLock.acquire(archive, 'test', noLinks);
    expect(JSON.parse(readFileSync(lockPath(archive), 'utf8'))).toEqual(here(process.pid, { owner: 'test' }));
    await lock.release();
    const live = archiveWithLock('no-links-live', here(other.pid as number));
    await expect(ArchiveLock.acquire(live, 'test', noLinks)).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED' });
    const stale = archiveWithLock('no-links-stale', here(other.pid as number, { pid: 999_999_999, startTicks: undefined }));
    const taken = await ArchiveLock.acquire(stale, 'test', noLinks);
    expect(JSON.parse(readFileSync(lockPath(stale), 'utf8'))).toMatchObject({ pid: process.pid, owner: 'test' });
    await taken.release();
    expect(readdirSync(join(stale, 'state'))).toEqual([]);
    expect(links).toBeGreaterThan(0);
  });

  it("refuses another host's or pid namespace's lock, whatever pid and boot it names, and says where and which file", async () => {
    const archive = archiveWithLock('elsewhere', { pid: 999_999_999, owner: 'agent replica a', host: 'standby-2', bootId: 'another-boot' });
    await expect(ArchiveLock.acquire(archive, 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED', message: expect.stringContaining('on host standby-2'), hint: expect.stringContaining(lockPath(archive)) });
    const container = archiveWithLock('container', here(process.pid, { pidNs: 'pid:[1]' }));
    await expect(ArchiveLock.acquire(container, 'test')).rejects.toMatchObject({ code: 'ARCHIVE_LOCKED', message: expect.stringContaining('in another pid namespace (pid:[1])') });
    // Refused, the lock stays as it was, and nothing of the attempt is left beside it.
    expect(readdirSync(join(container, 'state'))).toEqual(['writer.lock']);
  });
});
