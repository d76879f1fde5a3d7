import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { compareArchive, expectArchiveEqual } from '../support/binlog-compare.js';

/**
 * Goal: an archive volume that hangs (an NFS server gone, a frozen or failing disk: every write
 * waits, none fails) never stalls the other replicas, and once it answers again its replica
 * catches up exactly. Node does file I/O on a small shared thread pool: writes that never
 * return could take every thread, and then nothing else in the agent could write, read or sync.
 * Method: a real primary and the real agent process with two file replicas, one of them on an
 * ext4 volume (a loop device) frozen with fsfreeze, so its writes block in the kernel exactly
 * as on a hung volume; a workload of several MB; the other archive compared with the primary's
 * binlog byte for byte while the volume is frozen, then both after it is thawed.
 * Needs root (mount, fsfreeze), as the sandbox servers' `--user=root` does on this project's machines.
 */
describe('a hung archive volume', () => {
  let dir: string;
  let primary: MariadbServer;
  let volume: string | undefined;
  let frozen = false;
  let agent: HotspareProcess | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-hung-'));
    primary = await MariadbServer.start({ serverId: 41, binlog: true, baseDir: join(dir, 'primary') });
    const conn = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, body MEDIUMBLOB) ENGINE=InnoDB');
    await conn.end();
    const image = join(dir, 'volume.img');
    execFileSync('truncate', ['-s', '256M', image]);
    execFileSync('mkfs.ext4', ['-q', image]);
    volume = join(dir, 'volume');
    mkdirSync(volume);
    execFileSync('mount', ['-o', 'loop', image, volume]);
  }, 120_000);

  afterAll(async () => {
    // Thawed first, always: a process blocked on the frozen volume cannot even be killed.
    if (frozen && volume !== undefined) execFileSync('fsfreeze', ['-u', volume]);
    await agent?.kill('SIGKILL');
    await primary?.destroy();
    if (volume !== undefined) {
      try {
        execFileSync('umount', [volume]);
      } catch {
        execFileSync('umount', ['-l', volume]);
      }
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  /** How many of a process's threads wait in the kernel uninterruptibly (state D): here, writes to the frozen volume. */
  function threadsInUninterruptibleWait(pid: number): number {
    return readdirSync(`/proc/${pid}/task`).filter((tid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
        return stat.slice(stat.lastIndexOf(') ') + 2).startsWith('D');
      } catch {
        return false; // the thread ended
      }
    }).length;
  }

  /** About `mb` MB of binlog in 256 KiB rows. */
  async function writeMegabytes(mb: number): Promise<void> {
    const conn = await primary.connect();
    try {
      for (let i = 0; i < mb * 4; i++) await conn.query('INSERT INTO app.blobs (body) VALUES (REPEAT(RANDOM_BYTES(1024), 256))');
    } finally {
      await conn.end();
    }
  }

  it('a volume hung before the agent starts holds back only its own replica; it catches up once it answers', async () => {
    const healthy = join(dir, 'healthy-at-start');
    const hung = join(volume as string, 'archive-at-start');
    const config = writeAgentConfig(join(dir, 'agent-at-start'), primary, [
      { name: 'hung-at-start', type: 'file', path: hung },
      { name: 'healthy', type: 'file', path: healthy },
    ]);
    execFileSync('fsfreeze', ['-f', volume as string]);
    frozen = true;
    agent = new HotspareProcess(['agent', '--config', config]);
    // The check of the hung archive gives up after its deadline; the healthy replica starts.
    await waitFor('the healthy replica to stream', () => agent?.stderr.includes('REPLICA_CHECK_TIMEOUT') === true && /"replica":"healthy"[^\n]*streaming binlog to replica/.test(agent.stderr), 60_000);
    await writeMegabytes(1);
    await expectArchiveEqual(primary, healthy, 30_000);
    execFileSync('fsfreeze', ['-u', volume as string]);
    frozen = false;
    await expectArchiveEqual(primary, hung, 60_000);
    expect(await agent.kill('SIGTERM')).toBe(0);
    agent = undefined;
  }, 180_000);

  it('the other replica streams on while one volume hangs; the hung one catches up exactly once it answers', async () => {
    // Two replicas on the volume that hangs: each holds threads of the pool in its waiting writes.
    const healthy = join(dir, 'healthy-archive');
    const hung = [join(volume as string, 'archive-1'), join(volume as string, 'archive-2')];
    const config = writeAgentConfig(join(dir, 'agent'), primary, [
      { name: 'healthy', type: 'file', path: healthy },
      ...hung.map((path, i) => ({ name: `hung-${i + 1}`, type: 'file', path })),
    ]);
    agent = new HotspareProcess(['agent', '--config', config]);
    await waitFor('the replicas to stream', () => (agent?.stderr.match(/streaming binlog to replica/g) ?? []).length === 3, 120_000);
    await writeMegabytes(2);
    for (const archive of [healthy, ...hung]) await expectArchiveEqual(primary, archive);

    execFileSync('fsfreeze', ['-f', volume as string]);
    frozen = true;
    // More than a hung replica holds in memory before its dump pauses, in many writes; then
    // more again once the hung replicas' writes (the binlog's, the last-heard record's) wait in
    // the kernel on four of the agent's threads: as many as Node's default pool has.
    await writeMegabytes(40);
    await waitFor('the hung replicas to hold four threads in waiting writes', () => threadsInUninterruptibleWait(agent?.child.pid ?? 0) >= 4, 30_000);
    await writeMegabytes(8);
    await expectArchiveEqual(primary, healthy, 30_000);
    // (The hung ones are behind: their writes wait in the kernel.)
    for (const archive of hung) expect(await compareArchive(primary, archive)).not.toEqual([]);

    execFileSync('fsfreeze', ['-u', volume as string]);
    frozen = false;
    for (const archive of hung) await expectArchiveEqual(primary, archive);
    expect(await compareArchive(primary, healthy)).toEqual([]);
    expect(await agent.kill('SIGTERM')).toBe(0);
  }, 300_000);
});
