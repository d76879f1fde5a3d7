import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReplicaLagReport } from '../../src/agent/lag-monitor.js';
import type { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareArchiveWithPrimary, primaryBinlogFiles } from '../../src/sandbox/binlog-compare.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import type { ReceiverStatus } from '../../src/standby/receiver/receiver-status.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { startAgent } from '../support/agent-harness.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { waitFor } from '../support/wait.js';
import { startReceiver } from '../../src/standby/receiver/receiver.js';
import { silentLogger } from '../../src/platform/logger.js';
import { FrameType } from '../../src/wire/wire-frame.js';
import { agentCodeForRefusal, FileOp, type FileArgs, type FileOpCode, type FileResponse } from '../../src/wire/wire-messages.js';
import { rawWirePeer } from '../support/raw-wire-peer.js';
import { TEST_PRIMARY_IDENTITY as primaryIdentity } from '../support/fixtures.js';

/** Small enough that a few MB of binlog fill it, large enough for the archive's base backup. */
const SMALL_VOLUME = '3m';

/**
 * Goal: an archive volume that fills up is reported as DISK_FULL with a hint (not as a bare
 * system error), the other replica streams on, nothing in the full archive is damaged, and
 * once there is room again the replica resumes exactly where its archive durably ended.
 * Method: a real primary and the real agent, first with two file replicas, one of them on a
 * tmpfs of 3 MiB (a real ENOSPC from the kernel), then with a remote replica whose `hotspare
 * receive` writes to such a tmpfs; a workload of several MB, then the tmpfs grown with
 * `mount -o remount`; the archives compared with the primary's binlog byte for byte.
 * Needs root (mount), as the sandbox servers' `--user=root` does on this project's machines.
 */
describe('a full archive volume', () => {
  let dir: string;
  let primary: MariadbServer;
  let agent: SyncAgent | undefined;
  /** Every agent started, so that a failed test's agent is stopped too (it holds the volume). */
  const agents: SyncAgent[] = [];
  let receiver: ReceiverProcess | undefined;
  const mounted: string[] = [];

  /** A tmpfs of SMALL_VOLUME at a new folder: its writes fail with a real ENOSPC once it is full. */
  function smallVolume(name: string): string {
    const path = join(dir, name);
    mkdirSync(path);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${SMALL_VOLUME}`, 'tmpfs', path]);
    mounted.push(path);
    return path;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-diskfull-'));
    primary = await MariadbServer.start({ serverId: 31, binlog: true, baseDir: join(dir, 'primary') });
    const conn = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, body MEDIUMBLOB) ENGINE=InnoDB');
    await conn.end();
  });

  afterAll(async () => {
    for (const a of agents) await a.stop().catch(() => undefined);
    await receiver?.stop();
    await primary?.destroy();
    // Never leave a mount behind: a busy one is detached lazily (it goes once nothing uses it).
    for (const path of mounted) {
      try {
        execFileSync('umount', [path]);
      } catch {
        execFileSync('umount', ['-l', path]);
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  function agentDir(name: string): string {
    const path = join(dir, name);
    mkdirSync(path);
    return path;
  }

  /** About 8 MB of binlog: far more than a small volume holds. */
  async function writeMegabytes(): Promise<void> {
    const conn = await primary.connect();
    try {
      for (let i = 0; i < 32; i++) await conn.query('INSERT INTO app.blobs (body) VALUES (REPEAT(SHA2(RAND(), 256), 4096))');
    } finally {
      await conn.end();
    }
  }

  async function writeOneMore(): Promise<void> {
    const conn = await primary.connect();
    await conn.query("INSERT INTO app.blobs (body) VALUES (REPEAT('after', 10))");
    await conn.end();
  }

  function replica(name: string): ReplicaLagReport {
    const report = agent?.lag.report(Date.now()).replicas.find((r) => r.name === name);
    if (report === undefined) throw new Error(`no replica ${name} in the lag report`);
    return report;
  }

  /** Waits until replica `name` reports its full volume, and checks what it says. */
  async function expectDiskFull(name: string, message: string): Promise<void> {
    const full = await waitFor(`replica ${name} to report its full volume`, () => {
      const r = replica(name);
      return r.error?.code === 'DISK_FULL' ? r : undefined;
    }, 60_000, 50);
    expect(full.state).toBe('error');
    expect(full.error?.message).toContain(message);
    expect(full.error?.hint).toContain('free space on the archive volume');
  }

  /**
   * While the volume stays full, the replica's retries (every 100-800 ms here) never read as up
   * unless one made something durable beyond what the replica held before: a retry's dump answers
   * at once, and counted as up it flashed healthy (`/healthz` 200) until its first write failed.
   * Polled every 5 ms over a few retries. (The agent asks more: a commit beyond any durable one.)
   */
  async function expectNoHealthyFlash(name: string): Promise<void> {
    const position = (r: ReplicaLagReport): string => `${r.binlog.file ?? ''}:${String(r.binlog.position ?? 0).padStart(12, '0')}`;
    let furthest = position(replica(name));
    let wasUp = false;
    const deadline = Date.now() + 3_000;
    let flashes = 0;
    while (Date.now() < deadline) {
      const r = replica(name);
      const at = position(r);
      // Up again only with progress: the sample that first shows it up holds more than any before.
      if (r.up && !wasUp && at <= furthest) flashes += 1;
      wasUp = r.up;
      if (at > furthest) furthest = at;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(flashes).toBe(0);
  }

  function identical(archive: string): boolean {
    if (!existsSync(join(archive, 'binlog'))) return false;
    const cmp = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    return cmp.files.length > 0 && cmp.differences.length === 0 && cmp.files.join() === primaryBinlogFiles(primary.datadir, cmp.files[0]).join();
  }

  it('reports DISK_FULL, keeps the other replica streaming, and resumes exactly once there is room', async () => {
    const volume = smallVolume('file-volume');
    const small = join(volume, 'archive');
    const large = join(dir, 'large-archive');
    agent = await startAgent(primary, [
      { name: 'small', type: 'file', path: small },
      { name: 'large', type: 'file', path: large },
    ], agentDir('file-agent'));
    agents.push(agent);
    await waitFor('both replicas to stream', () => replica('small').state === 'streaming' && replica('large').state === 'streaming', 60_000, 50);
    // The agent reads each file replica's volume: the small one is the 3 MiB tmpfs.
    expect(replica('small').volume?.totalBytes).toBe(3 * 1024 * 1024);
    expect(replica('large').volume?.totalBytes).toBeGreaterThan(3 * 1024 * 1024);
    await writeMegabytes();

    await expectDiskFull('small', 'the archive volume is full');
    await expectNoHealthyFlash('small');
    // The other replica never waits for it.
    await waitFor('the large replica to hold everything', () => identical(large), 60_000, 100);
    expect(replica('large').state).toBe('streaming');

    // Room again: the replica resumes where its archive durably ends, and misses nothing.
    execFileSync('mount', ['-o', 'remount,size=64m', volume]);
    await writeOneMore();
    await waitFor('the small replica to catch up exactly', () => identical(small) && identical(large), 60_000, 100);
    await waitFor('the small replica to report streaming', () => replica('small').state === 'streaming', 30_000, 50);
    expect(replica('small').error).toBeNull();
    // The next case starts an agent of its own (the same replication client id).
    await agent.stop();
    agents.splice(agents.indexOf(agent), 1);
  });

  it('a remote replica whose receiver\'s volume is full: the agent reports the receiver\'s DISK_FULL, the receiver serves on', async () => {
    // A fresh start for the new archive: its base and the binlog file it begins with are small.
    const conn = await primary.connect();
    await conn.query('TRUNCATE TABLE app.blobs');
    await conn.query('FLUSH BINARY LOGS');
    await conn.end();
    const volume = smallVolume('receiver-volume');
    const archive = join(volume, 'archive');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'disk-full-token\n');
    const port = await freePort();
    const httpPort = await freePort();
    receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile, '--http', `127.0.0.1:${httpPort}`]);
    const status = async (): Promise<ReceiverStatus> => (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as ReceiverStatus;
    await receiver.start();
    agent = await startAgent(primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }], agentDir('remote-agent'));
    agents.push(agent);
    await waitFor('the remote replica to stream', () => replica('standby').state === 'streaming', 60_000, 50);
    // The agent shows the standby's volume too: the receiver sends its reading with its ACKs.
    await waitFor('the receiver to report its volume', () => replica('standby').volume !== null, 30_000, 50);
    expect(replica('standby').volume?.totalBytes).toBe(3 * 1024 * 1024);
    await writeMegabytes();

    await expectDiskFull('standby', 'receiver: the archive volume is full');
    await expectNoHealthyFlash('standby');
    expect(receiver.running).toBe(true);
    // The standby's own view: the failure, and how little room is left on its volume.
    const atFull = await status();
    expect(atFull.lastError?.code).toBe('DISK_FULL');
    expect(atFull.volume?.totalBytes).toBe(3 * 1024 * 1024);
    // The room left is whatever the failed batch did not fit into (its size depends on timing):
    // what the standby reports is what the volume has, and less than the volume. The reading is
    // from the receiver's last poll, and the agent's retries since write and cut back a batch of
    // up to a few hundred KiB (217 KiB seen once): the two agree to within such a batch.
    const fs = statfsSync(volume);
    expect(Math.abs((atFull.volume?.freeBytes ?? -1) - fs.bavail * fs.bsize)).toBeLessThanOrEqual(512 * 1024);
    expect(atFull.volume?.freeBytes).toBeLessThan(3 * 1024 * 1024 - 1024 * 1024);

    execFileSync('mount', ['-o', 'remount,size=64m', volume]);
    expect((await status()).volume?.totalBytes).toBe(64 * 1024 * 1024);
    await writeOneMore();
    await waitFor('the remote replica to catch up exactly', () => identical(archive), 60_000, 100);
    await waitFor('the remote replica to report streaming', () => replica('standby').state === 'streaming', 30_000, 50);
    expect(receiver.running).toBe(true);
    // With nothing more to acknowledge, the receiver's heartbeats bring its next reading: the
    // agent sees the grown volume without a write.
    await waitFor('the agent to see the grown volume', () => replica('standby').volume?.totalBytes === 64 * 1024 * 1024, 30_000, 100);
  });

  it('a receiver whose volume is full before the first handshake refuses the agent with DISK_FULL, not a passing RECEIVER_ERROR', async () => {
    const volume = smallVolume('full-before-volume');
    const token = 'full-before-token';
    const fullReceiver = await startReceiver({ archive: join(volume, 'archive'), listen: { host: '127.0.0.1', port: 0 }, token, logger: silentLogger() });
    // Then full to the last byte: the first agent's archive.json cannot be written.
    try {
      writeFileSync(join(volume, 'filler'), Buffer.alloc(4 * 1024 * 1024));
    } catch {
      // ENOSPC: as full as it gets
    }
    const peer = await rawWirePeer(fullReceiver.address.port);
    try {
      const answer = await peer.hello(token, primaryIdentity, 'full-before-peer');
      expect(answer.type).toBe(FrameType.REFUSE);
      const problem = JSON.parse(answer.payload.toString()) as { code: string; hint: string };
      expect(problem.code).toBe('DISK_FULL');
      expect(agentCodeForRefusal(problem.code)).toBe('DISK_FULL');
    } finally {
      peer.socket.destroy();
      await fullReceiver.close();
    }
  });

  it('a write that failed for want of room: a later write past the file\'s end is refused (no hole of zeros counted as held); one at its end goes on', async () => {
    const volume = smallVolume('hole-volume');
    const token = 'hole-token';
    const holeReceiver = await startReceiver({ archive: join(volume, 'archive'), listen: { host: '127.0.0.1', port: 0 }, token, logger: silentLogger() });
    const peer = await rawWirePeer(holeReceiver.address.port);
    let id = 1;
    const ask = async (op: FileOpCode, args: FileArgs, data = Buffer.alloc(0)): Promise<FileResponse> => {
      peer.request(id++, op, args, data);
      return peer.answer();
    };
    const MiB = 1024 * 1024;
    try {
      expect((await peer.hello(token, primaryIdentity, 'hole-peer')).type).toBe(FrameType.WELCOME);
      expect((await ask(FileOp.WRITE, { path: 'files/filler', offset: 0 }, Buffer.alloc(MiB, 1))).result.error).toBeUndefined();
      // x grows a MiB at a time until the volume is full: that write fails (a part of it may have landed).
      let at = 0;
      let failed: FileResponse | undefined;
      for (; at < 4 * MiB && failed === undefined; at += MiB) {
        const answer = await ask(FileOp.WRITE, { path: 'files/x', offset: at }, Buffer.alloc(MiB, 2));
        if (answer.result.error !== undefined) failed = answer;
      }
      expect(failed?.result.error?.code).toBe('DISK_FULL');
      // The standby's own status says so (a base upload fills a volume before any binlog does).
      expect((await holeReceiver.status()).lastError?.code).toBe('DISK_FULL');
      // Room again (another file removed): the next piece, past the failed one, would land past what x holds.
      expect((await ask(FileOp.REMOVE, { path: 'files/filler' })).result.error).toBeUndefined();
      const held = (await ask(FileOp.SIZE, { path: 'files/x' })).result.size ?? 0;
      expect(held).toBeLessThan(at);
      const past = await ask(FileOp.WRITE, { path: 'files/x', offset: at }, Buffer.alloc(4096, 4));
      expect(past.result.error?.code).toBe('RECEIVER_WRITE_HOLE');
      // A request the peer got wrong is the peer's matter, not the archive's last error.
      expect((await holeReceiver.status()).lastError?.code).toBe('DISK_FULL');
      expect((await ask(FileOp.SIZE, { path: 'files/x' })).result.size).toBe(held);
      // Going on from where it ends is fine.
      expect((await ask(FileOp.WRITE, { path: 'files/x', offset: held }, Buffer.alloc(4096, 5))).result.error).toBeUndefined();
      expect((await ask(FileOp.SIZE, { path: 'files/x' })).result.size).toBe(held + 4096);
    } finally {
      peer.socket.destroy();
      await holeReceiver.close();
    }
  });
});
