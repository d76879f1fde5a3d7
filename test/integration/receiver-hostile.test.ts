import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { firstValueFrom } from 'rxjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrimaryIdentity } from '../../src/archive/archive-identity.js';
import { HotspareError } from '../../src/core/errors.js';
import { stateForCode } from '../../src/pipeline/replica-status.js';
import { RemoteTarget } from '../../src/replica/targets/remote-target.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { startReceiver, type Receiver } from '../../src/standby/receiver/receiver.js';
import { encodeFrame, FrameType } from '../../src/wire/wire-frame.js';
import { encodeEvents, encodeFileRequest, encodeJson, FileOp } from '../../src/wire/wire-messages.js';
import { DEFAULT_RECEIVER_PEER_LOG_LINES, DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX, WIRE_PROTOCOL_VERSION } from '../../src/config/defaults.js';
import { tempDir } from '../support/agent-harness.js';
import { rawWirePeer, type RawWirePeer } from '../support/raw-wire-peer.js';
import { waitFor } from '../support/wait.js';
import { within } from '../../src/platform/within.js';
import { captureLogger } from '../support/capture-logger.js';
import { HotspareProcess } from '../support/agent-process.js';
import { makeEvent } from '../support/fixtures.js';
import type { BinlogRecord, DurablePoint } from '../../src/core/binlog-record.js';
import type { ReplicaSession } from '../../src/replica/replica-target.js';

const TOKEN = 'the-right-token';
const primaryA: PrimaryIdentity = { serverId: 1, serverUuid: null, flavor: 'mariadb', version: '10.11', hostname: 'db-a', binlogBasename: '/var/lib/mysql/mysql-bin' };
const primaryB: PrimaryIdentity = { ...primaryA, hostname: 'db-b' };

/** Every file of the archive but the lock, with a digest of its bytes. */
function tree(root: string, at = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(root, at)).sort()) {
    const rel = at === '' ? name : `${at}/${name}`;
    if (rel === 'state/writer.lock') continue;
    if (statSync(join(root, rel)).isDirectory()) Object.assign(out, tree(root, rel));
    else out[rel] = createHash('sha256').update(readFileSync(join(root, rel))).digest('hex');
  }
  return out;
}

async function refusal(promise: Promise<unknown>): Promise<HotspareError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(HotspareError);
    return err as HotspareError;
  }
  throw new Error('expected a refusal');
}

describe('receiver against hostile and mistaken peers', () => {
  let dir: string;
  let archive: string;
  let receiver: Receiver;
  let logs: ReturnType<typeof captureLogger>;
  const target = (name: string, tokenFile: string): RemoteTarget =>
    new RemoteTarget({ name, address: `127.0.0.1:${receiver.address.port}`, tokenFile, logger: logs.logger, limits: { handshakeTimeoutMs: 3_000 } });

  beforeAll(async () => {
    dir = tempDir('hostile');
    archive = join(dir, 'archive');
    writeFileSync(join(dir, 'token'), TOKEN);
    writeFileSync(join(dir, 'wrong-token'), 'not-the-token');
    logs = captureLogger();
    receiver = await startReceiver({ archive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger, limits: { handshakeTimeoutMs: 500 } });
  });

  afterAll(async () => {
    await receiver?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses each bad peer with a log line, keeps serving, and leaves the archive unchanged', async () => {
    // A legitimate agent claims the archive and stores a file through the wire.
    const good = target('good', join(dir, 'token'));
    const first = await good.open(primaryA);
    expect(first.resume).toBeUndefined();
    await first.files.putFile('files/hello.txt', Buffer.from('hello'));
    expect((await first.files.readFile('files/hello.txt'))?.toString()).toBe('hello');
    expect((await first.files.readAt('files/hello.txt', 1, 3)).toString()).toBe('ell');
    expect((await first.files.readAt('files/hello.txt', 3, 100)).toString()).toBe('lo');
    // Unsynced writes (several chunks in flight at once), then one sync.
    const big = randomBytes(2 * 1024 * 1024 + 17);
    await first.files.write('files/big.bin', 0, big.subarray(0, 1000));
    await first.files.write('files/big.bin', 1000, big.subarray(1000));
    await first.files.sync(['files/big.bin']);
    expect(readFileSync(join(archive, 'files', 'big.bin')).equals(big)).toBe(true);
    // A file larger than a frame comes back in chunks (READ_FILE, then READ_AT).
    expect((await first.files.readFile('files/big.bin'))?.equals(big)).toBe(true);
    const before = tree(archive);

    // Wrong token.
    const badToken = await refusal(target('bad', join(dir, 'wrong-token')).open(primaryA));
    expect(badToken.code).toBe('RECEIVER_REFUSED');
    expect(badToken.message).toContain('BAD_TOKEN');

    // A second agent while the first is connected.
    const second = await refusal(target('second', join(dir, 'token')).open(primaryA));
    expect(second.code).toBe('ARCHIVE_LOCKED');

    // Paths that leave the archive, through every kind of file operation.
    for (const attempt of [
      () => first.files.putFile('../../etc/passwd', Buffer.from('x')),
      () => first.files.writeAt('files/../../../etc/passwd', 0, Buffer.from('x')),
      () => first.files.readFile('/etc/passwd'),
      () => first.files.readAt('state/../../etc/passwd', 0, 10),
      () => first.files.write('/tmp/escape', 0, Buffer.from('x')),
      () => first.files.sync(['files/../../x']),
      () => first.files.rename('files/hello.txt', 'binlog/mysql-bin.000001'),
      () => first.files.remove('..'),
      // A whole archive folder is not an entry a peer may remove or rename.
      () => first.files.remove('files'),
      () => first.files.rename('base', 'files/elsewhere'),
      // The writer's own state: a peer that rewrote the checkpoint could misdirect a resume.
      () => first.files.putFile('state/binlog-checkpoint.json', Buffer.from('{}')),
      () => first.files.putFile('state/writer.lock', Buffer.from('1')),
    ]) {
      expect((await refusal(attempt())).code).toBe('ARCHIVE_PATH');
    }
    expect(existsSync(join(archive, '..', '..', 'etc', 'passwd'))).toBe(false);
    // The session survives refused file operations.
    expect((await first.files.readFile('files/hello.txt'))?.toString()).toBe('hello');

    // A binlog event for a file name that is a path: the session is dropped, nothing written.
    const failed = firstValueFrom(first.durable$).catch((err: unknown) => err);
    first.append({ file: '../../etc/passwd', offset: 4, bytes: randomBytes(40), timestampS: 0, boundary: true });
    const eventError = await failed;
    expect(eventError).toBeInstanceOf(HotspareError);
    expect((eventError as HotspareError).code).toBe('WIRE_BAD_EVENT');
    await first.close();

    // Garbage (an HTTP request line, then random bytes), an oversized frame header, and a silent peer.
    for (const payload of [Buffer.concat([Buffer.from('GET / HTTP/1.1\r\n'), randomBytes(4096)]), Buffer.from([FrameType.HELLO, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), Buffer.alloc(0)]) {
      await new Promise<void>((resolve) => {
        const socket = connect(receiver.address.port, '127.0.0.1', () => socket.write(payload));
        socket.on('error', () => undefined);
        socket.resume();
        socket.on('close', () => resolve());
      });
    }
    // A HELLO of another protocol version: the previous one (unbounded EVENTS frames) and a newer one.
    for (const protocol of [WIRE_PROTOCOL_VERSION - 1, WIRE_PROTOCOL_VERSION + 1]) {
      await new Promise<void>((resolve) => {
        const socket = connect(receiver.address.port, '127.0.0.1', () => {
          for (const b of encodeFrame(FrameType.HELLO, [encodeJson({ protocol, token: TOKEN, primary: primaryA, agentId: 'x' })])) socket.write(b);
        });
        socket.on('error', () => undefined);
        socket.resume();
        socket.on('close', () => resolve());
      });
    }

    // Another primary's agent, once the first one is gone.
    await waitFor('the first session to end', async () => (await receiver.status()).agent === null);
    const foreign = await refusal(target('foreign', join(dir, 'token')).open(primaryB));
    expect(foreign.code).toBe('ARCHIVE_FOREIGN');

    // Still serving: the legitimate agent comes back.
    const again = await good.open(primaryA);
    expect((await again.files.readFile('files/hello.txt'))?.toString()).toBe('hello');
    await again.close();

    expect(tree(archive)).toEqual(before);
    const messages = logs.lines().map((l) => `${String(l['code'] ?? '')} ${l.msg} ${String(l['reason'] ?? '')}`);
    for (const expected of [
      /BAD_TOKEN refused agent/,
      /ARCHIVE_LOCKED refused agent/,
      /ARCHIVE_FOREIGN refused agent/,
      new RegExp(`VERSION refused agent: the agent speaks wire protocol ${WIRE_PROTOCOL_VERSION - 1};`),
      new RegExp(`VERSION refused agent: the agent speaks wire protocol ${WIRE_PROTOCOL_VERSION + 1};`),
      /ARCHIVE_PATH refused archive file operation/,
      /WIRE_BAD_EVENT dropping agent session/,
      /dropped a peer before its handshake unknown frame type 71/,
      /dropped a peer before its handshake frame of 4294967295 bytes exceeds the limit/,
      /did not complete the handshake/,
    ]) {
      expect(messages.some((m) => expected.test(m)), `${expected} in\n${messages.join('\n')}`).toBe(true);
    }
  });

  it('an archive the receiver cannot open is refused with the archive\'s own code, an error for the operator, not a passing refusal', async () => {
    const broken = join(dir, 'broken-archive');
    const other = await startReceiver({ archive: broken, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger });
    try {
      const agent = (): RemoteTarget => new RemoteTarget({ name: 'broken', address: `127.0.0.1:${other.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger, limits: { handshakeTimeoutMs: 3_000 } });
      // An agent claims the archive, then its archive.json is torn (a bad disk, a hand edit).
      const session = await agent().open(primaryA);
      await session.close();
      writeFileSync(join(broken, 'archive.json'), '{"format":');
      const refused = await refusal(agent().open(primaryA));
      expect(refused.code).toBe('ARCHIVE_DAMAGED');
      expect(refused.message).toContain('could not open the archive');
      expect(stateForCode(refused.code)).toBe('error');
    } finally {
      await other.close();
    }
  });

  it('a raw peer: a reused upload id and two uploads of one path are refused, and a flood of writes is held back, not buffered', async () => {
    // A receiver of its own with a small file-request queue, so the flood below must pause it.
    const rawArchive = join(dir, 'raw-archive');
    const raw = await startReceiver({ archive: rawArchive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger, limits: { fileQueueBytesMax: 2 * 1024 * 1024 } });
    const peer = await rawWirePeer(raw.address.port);
    const { socket, request, answer } = peer;
    try {
      expect((await peer.hello(TOKEN, primaryA, 'raw-peer')).type).toBe(FrameType.WELCOME);

      // Upload 1 opens files/a; upload 1 again, and upload 2 of the same path, are refused.
      request(1, FileOp.PUT_BEGIN, { path: 'files/a' });
      expect((await answer()).result.error).toBeUndefined();
      request(1, FileOp.PUT_BEGIN, { path: 'files/b' });
      expect((await answer()).result.error?.code).toBe('RECEIVER_UPLOAD');
      request(2, FileOp.PUT_BEGIN, { path: 'files/a' });
      expect((await answer()).result.error?.code).toBe('RECEIVER_UPLOAD');
      // The first upload is unharmed and completes with exactly its own bytes.
      request(3, FileOp.PUT_CHUNK, { upload: 1 }, Buffer.from('first'));
      expect((await answer()).result.error).toBeUndefined();
      request(4, FileOp.PUT_END, { upload: 1 });
      expect((await answer()).result.error).toBeUndefined();
      expect(readFileSync(join(rawArchive, 'files', 'a'), 'utf8')).toBe('first');

      // 24 MiB of writes sent at once, twelve times the queue's limit, answers unread until the end:
      // reading pauses and resumes, and every write lands in order.
      const flood = randomBytes(24 * 1024 * 1024);
      const piece = 1024 * 1024;
      const logsBefore = logs.lines().length;
      for (let at = 0, id = 10; at < flood.length; at += piece, id++) request(id, FileOp.WRITE, { path: 'files/flood', offset: at }, flood.subarray(at, at + piece));
      request(99, FileOp.SYNC, { path: 'files/flood' });
      for (let i = 0; i < 25; i++) expect((await answer()).result.error).toBeUndefined();
      expect(readFileSync(join(rawArchive, 'files', 'flood')).equals(flood)).toBe(true);
      // Held back: reading paused and resumed, and the queue never held more than its limit and
      // the frame that crossed it (not the 24 MiB sent).
      const lines = logs.lines().slice(logsBefore);
      expect(lines.filter((l) => l.msg.includes('reading paused')).length).toBeGreaterThan(0);
      const resumed = lines.filter((l) => l.msg === 'reading resumed');
      expect(resumed.length).toBeGreaterThan(0);
      for (const l of resumed) expect(l['fileQueuePeakBytes']).toBeLessThanOrEqual(2 * 1024 * 1024 + piece + 64 * 1024);
    } finally {
      socket.destroy();
      await raw.close();
    }
  });

  it('an upload whose file cannot take its name (a folder there) leaves no temporary file behind', async () => {
    const peer = await rawWirePeer(receiver.address.port);
    const { request, answer } = peer;
    try {
      expect((await peer.hello(TOKEN, primaryA, 'upload-onto-folder')).type).toBe(FrameType.WELCOME);
      request(1, FileOp.WRITE_AT, { path: 'files/folder/inside', offset: 0 }, Buffer.from('x'));
      expect((await answer()).result.error).toBeUndefined();
      const before = readdirSync(join(archive, 'files')).sort();
      request(2, FileOp.PUT_BEGIN, { path: 'files/folder' });
      expect((await answer()).result.error).toBeUndefined();
      request(3, FileOp.PUT_CHUNK, { upload: 2 }, randomBytes(256 * 1024));
      expect((await answer()).result.error).toBeUndefined();
      request(4, FileOp.PUT_END, { upload: 2 });
      expect((await answer()).result.error?.code).toBe('EISDIR');
      expect(readdirSync(join(archive, 'files')).sort()).toEqual(before);
    } finally {
      peer.socket.destroy();
    }
  });

  it('an agent restarted while its old connection lingers (a crashed host sends no FIN) is let in by its id; another agent is not', async () => {
    const lingering = new RemoteTarget({ name: 'a', address: `127.0.0.1:${receiver.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger, agentId: 'agent-1' });
    const old = await lingering.open(primaryA);
    const oldEnded = new Promise<unknown>((resolve) => old.durable$.subscribe({ error: resolve, complete: () => resolve(undefined) }));
    // Another agent is refused while the connection is up ...
    expect((await refusal(new RemoteTarget({ name: 'b', address: `127.0.0.1:${receiver.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger, agentId: 'agent-2' }).open(primaryA))).code).toBe('ARCHIVE_LOCKED');
    // ... the same agent, restarted (a new process, the id it keeps in its stateDir), is not:
    // the receiver ends the old connection and takes the new one.
    const restarted = new RemoteTarget({ name: 'a', address: `127.0.0.1:${receiver.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger, agentId: 'agent-1' });
    const fresh = await restarted.open(primaryA);
    expect(await oldEnded).toMatchObject({ code: 'RECEIVER_SUPERSEDED' });
    await fresh.files.putFile('files/after-restart.txt', Buffer.from('ok'));
    await fresh.close();
    expect(readFileSync(join(archive, 'files', 'after-restart.txt'), 'utf8')).toBe('ok');
    await old.close().catch(() => undefined);
  });

  it('a token holder that stops reading its answers is dropped after the write-stall limit, freeing the archive for another agent', async () => {
    const stallArchive = join(dir, 'stall-archive');
    const stall = await startReceiver({ archive: stallArchive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger, limits: { writeStallMs: 1_000 } });
    const peer = await rawWirePeer(stall.address.port);
    const { socket, send } = peer;
    try {
      expect((await peer.hello(TOKEN, primaryA, 'deaf-peer')).type).toBe(FrameType.WELCOME);
      // 16 MiB to read back, then nothing read any more (the socket's buffers fill), while the
      // peer's own PINGs keep coming: before, its answers waited for a drain for ever, the idle
      // clock stayed fresh, and the archive stayed its.
      send(FrameType.FILE_REQUEST, encodeFileRequest({ id: 1, op: FileOp.WRITE, args: { path: 'files/big', offset: 0 }, data: randomBytes(1024 * 1024) }));
      socket.pause();
      for (let i = 0; i < 16; i++) send(FrameType.FILE_REQUEST, encodeFileRequest({ id: 10 + i, op: FileOp.READ_AT, args: { path: 'files/big', offset: 0, size: 1024 * 1024 }, data: Buffer.alloc(0) }));
      const pings = setInterval(() => send(FrameType.PING, []), 200);
      try {
        await waitFor('the deaf peer dropped', () => logs.lines().some((l) => l['code'] === 'WIRE_STALLED' && String(l['reason'] ?? '').includes('has taken nothing sent to it')), 15_000);
      } finally {
        clearInterval(pings);
      }
      // Another agent gets the archive.
      const other = new RemoteTarget({ name: 'other', address: `127.0.0.1:${stall.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger, agentId: 'other-agent' });
      const session = await other.open(primaryA);
      await session.files.putFile('files/other.txt', Buffer.from('mine now'));
      await session.close();
      expect(readFileSync(join(stallArchive, 'files', 'other.txt'), 'utf8')).toBe('mine now');
    } finally {
      socket.destroy();
      await stall.close();
    }
  });

  it('with every connection slot held by peers without a handshake, the oldest makes room for the agent', async () => {
    const slotsArchive = join(dir, 'slots-archive');
    const slots = await startReceiver({ archive: slotsArchive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger, limits: { connectionsMax: 3, handshakeTimeoutMs: 10_000 } });
    const strays = [0, 1, 2].map(() => connect(slots.address.port, '127.0.0.1'));
    const strayClosed = strays.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
    for (const s of strays) s.on('error', () => undefined);
    try {
      await Promise.all(strays.map((s) => new Promise<void>((resolve) => s.once('connect', () => resolve()))));
      await waitFor('three connections open', async () => (await slots.status()).connections.open === 3);
      expect((await slots.status()).connections).toEqual({ open: 3, withoutHandshake: 3 });
      const agent = new RemoteTarget({ name: 'agent', address: `127.0.0.1:${slots.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger, limits: { handshakeTimeoutMs: 3_000 } });
      const session = await agent.open(primaryA);
      await session.files.putFile('files/in.txt', Buffer.from('in'));
      await session.close();
      expect(readFileSync(join(slotsArchive, 'files', 'in.txt'), 'utf8')).toBe('in');
      // The oldest stray went; the others were left alone.
      await strayClosed[0];
      expect(strays.map((s) => s.destroyed)).toEqual([true, false, false]);
      expect(logs.lines().some((l) => String(l.msg).includes('dropped the oldest one still without a handshake'))).toBe(true);
      // An agent connected before the strays is never the one that gives way.
      const first = await agent.open(primaryA);
      const dropsBefore = logs.lines().filter((l) => String(l.msg).includes('dropped the oldest one still without a handshake')).length;
      const late = [0, 1, 2].map(() => connect(slots.address.port, '127.0.0.1'));
      const lateClosed = late.map((s) => new Promise<void>((resolve) => s.once('close', () => resolve())));
      for (const s of late) s.on('error', () => undefined);
      try {
        await Promise.all(late.map((s) => new Promise<void>((resolve) => s.once('connect', () => resolve()))));
        // Every slot was taken (the agent's and the two first strays'): each late stray made the
        // oldest stray give way, the first strays, then the first late one; never the agent.
        await Promise.all([strayClosed[1], strayClosed[2], lateClosed[0]]);
        expect(logs.lines().filter((l) => String(l.msg).includes('dropped the oldest one still without a handshake')).length).toBe(dropsBefore + 3);
        await waitFor('the receiver to count the connections', async () => (await slots.status()).connections.open === 3);
        expect((await slots.status()).connections).toEqual({ open: 3, withoutHandshake: 2 });
        expect(late.map((s) => s.destroyed)).toEqual([true, false, false]);
        await first.files.putFile('files/still-in.txt', Buffer.from('yes'));
        expect(readFileSync(join(slotsArchive, 'files', 'still-in.txt'), 'utf8')).toBe('yes');
      } finally {
        for (const s of late) s.destroy();
        await first.close();
      }
    } finally {
      for (const s of strays) s.destroy();
      await slots.close();
    }
  });

  it('a host that floods the port with connections makes its own give way, not an agent from another address still in its handshake', async () => {
    const floodArchive = join(dir, 'flood-archive');
    const floodLogs = captureLogger();
    const flooded = await startReceiver({ archive: floodArchive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: floodLogs.logger, limits: { connectionsMax: 3, handshakeTimeoutMs: 10_000 } });
    const opened: Socket[] = [];
    const open = async (localAddress: string): Promise<Socket> => {
      const socket = connect({ port: flooded.address.port, host: '127.0.0.1', localAddress });
      socket.on('error', () => undefined);
      opened.push(socket);
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      return socket;
    };
    try {
      // The agent's connection, its HELLO not sent yet (a TLS handshake, a long round trip) ...
      const agent = await open('127.0.0.1');
      await waitFor('the agent connection counted', async () => (await flooded.status()).connections.open === 1);
      // ... and a flood from another address, many times the limit.
      for (let i = 0; i < 60; i++) await open('127.0.0.2');
      await waitFor('the flood to be cut to the limit', async () => opened.filter((s) => !s.destroyed && s.readyState === 'open').length <= 3);
      expect(agent.destroyed).toBe(false);
      // Some 57 drops, each said twice (the drop and the peer's end) without a budget: within it,
      // at most a window's lines (two, should a slow machine stretch the flood across one's end).
      const peerLines = floodLogs.lines().filter((l) => l.level === 40 && /dropped|refused/.test(l.msg));
      expect(peerLines.length).toBeGreaterThan(0);
      expect(peerLines.length).toBeLessThanOrEqual(2 * DEFAULT_RECEIVER_PEER_LOG_LINES);
      // The agent's HELLO, once it comes, is answered.
      const answer = new Promise<number>((resolve) => agent.once('data', (chunk: Buffer) => resolve(chunk.readUInt8(0))));
      for (const b of encodeFrame(FrameType.HELLO, [encodeJson({ protocol: WIRE_PROTOCOL_VERSION, token: TOKEN, primary: primaryA, agentId: 'flooded' })])) agent.write(b);
      expect(await answer).toBe(FrameType.WELCOME);
    } finally {
      for (const s of opened) s.destroy();
      await flooded.close();
    }
  });

  it('holds only so many GET /status connections: idle ones past the limit are dropped, and the agent is served', async () => {
    const statusArchive = join(dir, 'status-archive');
    const statusPort = await freePort();
    const served = await startReceiver({ archive: statusArchive, listen: { host: '127.0.0.1', port: 0 }, http: { host: '127.0.0.1', port: statusPort }, token: TOKEN, logger: logs.logger, limits: { httpConnectionsMax: 4 } });
    // Each an unfinished request: without a limit, about a thousand of them used up the
    // receiver's descriptors, and the agent's connections were closed as they came.
    const idle = Array.from({ length: 12 }, () => {
      const socket = connect(statusPort, '127.0.0.1', () => socket.write('GET /status HTTP/1.1\r\nHost: x\r\n'));
      socket.on('error', () => undefined);
      return socket;
    });
    const closed = idle.map((s) => new Promise<boolean>((resolve) => s.once('close', () => resolve(true))));
    try {
      await waitFor('the connections past the limit to be dropped', async () => idle.filter((s) => s.destroyed).length === 8);
      const held = await Promise.race([Promise.all(closed.slice(0, 4)), new Promise<false>((resolve) => setTimeout(() => resolve(false), 300))]);
      expect(held).toBe(false);
      const agent = await rawWirePeer(served.address.port);
      try {
        expect((await agent.hello(TOKEN, primaryA, 'beside-status')).type).toBe(FrameType.WELCOME);
      } finally {
        agent.socket.destroy();
      }
      for (const s of idle) s.destroy();
      await waitFor('GET /status served again', async () => (await fetch(`http://127.0.0.1:${statusPort}/status`).catch(() => undefined))?.status === 200);
    } finally {
      for (const s of idle) s.destroy();
      await served.close();
    }
  });

  it('serves GET /status and streams over TLS; refuses plaintext on a public address', async () => {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
    const tlsArchive = join(dir, 'tls-archive');
    const httpPort = await freePort();
    const tlsReceiver = await startReceiver({
      archive: tlsArchive,
      listen: { host: '127.0.0.1', port: 0 },
      token: TOKEN,
      tls: { cert: readFileSync(cert), key: readFileSync(key) },
      http: { host: '127.0.0.1', port: httpPort },
      logger: logs.logger,
      limits: { connectionsMax: 3, handshakeTimeoutMs: 10_000 },
    });
    // Every slot held by connections that never begin their TLS handshake: the oldest makes
    // room for the agent (they were never counted as connections before, so none was dropped).
    const strays = [0, 1, 2].map(() => connect(tlsReceiver.address.port, '127.0.0.1'));
    for (const stray of strays) stray.on('error', () => undefined);
    try {
      await Promise.all(strays.map((stray) => new Promise<void>((resolve) => stray.once('connect', () => resolve()))));
      // GET /status counts them, though none has begun its TLS handshake.
      await waitFor('the strays counted', async () => (await tlsReceiver.status()).connections.open === 3);
      expect((await tlsReceiver.status()).connections).toEqual({ open: 3, withoutHandshake: 3 });
      const address = `127.0.0.1:${tlsReceiver.address.port}`;
      const trusting = new RemoteTarget({ name: 'tls', address, tokenFile: join(dir, 'token'), tls: { ca: cert }, logger: logs.logger });
      const session = await trusting.open(primaryA);
      await waitFor('the oldest stray dropped', () => strays[0]?.destroyed === true || strays[0]?.readyState === 'closed');
      await session.files.putFile('files/spool/seqno', Buffer.from('42'));
      const status = (await (await fetch(`http://127.0.0.1:${httpPort}/status`)).json()) as { primary: { hostname: string }; agent: { id: string } | null; spool: string[] };
      expect(status.primary.hostname).toBe('db-a');
      expect(status.agent?.id).toBe(trusting.agentId);
      expect(status.spool).toEqual(['spool']);
      await session.close();
      expect(readFileSync(join(tlsArchive, 'files/spool/seqno'), 'utf8')).toBe('42');

      // Without the CA the certificate is not trusted; without TLS the handshake never completes.
      // An address as tls.servername (README's example form): checked against the certificate's
      // IP names, and no Node warning on stderr (an address is no SNI name), which is no JSON line.
      const warnings: string[] = [];
      const onWarning = (w: Error & { code?: string }): void => void warnings.push(w.code ?? w.message);
      process.on('warning', onWarning);
      try {
        const byAddress = new RemoteTarget({ name: 'tls', address, tokenFile: join(dir, 'token'), tls: { ca: cert, servername: '127.0.0.1' }, logger: logs.logger });
        await (await byAddress.open(primaryA)).close();
        const wrongName = new RemoteTarget({ name: 'tls', address, tokenFile: join(dir, 'token'), tls: { ca: cert, servername: '10.9.8.7' }, logger: logs.logger });
        expect((await refusal(wrongName.open(primaryA))).code).toBe('RECEIVER_TLS');
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off('warning', onWarning);
      }
      expect(warnings).toEqual([]);
      // Without the CA the certificate is not trusted: a setting to fix (state error), not an outage.
      const untrusting = new RemoteTarget({ name: 'tls', address, tokenFile: join(dir, 'token'), tls: {}, logger: logs.logger });
      const untrusted = await refusal(untrusting.open(primaryA));
      expect(untrusted.code).toBe('RECEIVER_TLS');
      expect(untrusted.message).toContain('self-signed certificate');
      expect(untrusted.hint).toContain('tls.ca');
      expect(stateForCode(untrusted.code)).toBe('error');
      const plain = new RemoteTarget({ name: 'plain', address, tokenFile: join(dir, 'token'), logger: logs.logger, limits: { handshakeTimeoutMs: 1_000 } });
      expect((await refusal(plain.open(primaryA))).code).toBe('RECEIVER_UNREACHABLE');
    } finally {
      for (const stray of strays) stray.destroy();
      await tlsReceiver.close();
    }
    // The receiver gone (a standby rebooting): an outage that passes, as without TLS, not a
    // certificate to fix. (Node's authorizationError is null, not undefined, on any TLS socket:
    // every failed connect was RECEIVER_TLS, state error at once, and retried ever more slowly.)
    const gone = new RemoteTarget({ name: 'tls', address: `127.0.0.1:${tlsReceiver.address.port}`, tokenFile: join(dir, 'token'), tls: { ca: cert }, logger: logs.logger });
    const down = await refusal(gone.open(primaryA));
    expect(down.code).toBe('RECEIVER_UNREACHABLE');
    expect(down.message).toContain('ECONNREFUSED');
    expect(stateForCode(down.code)).toBe('disconnected');

    // Plaintext on a network address is refused, and nothing is created...
    const plainPort = await freePort();
    const refused = new HotspareProcess(['receive', '--archive', join(dir, 'x'), '--listen', `0.0.0.0:${plainPort}`, '--token-file', join(dir, 'token')]);
    try {
      expect(await within(refused.exited, 20_000).then((r) => r?.value)).toBe(1);
      expect(refused.stderr).toContain('error PLAINTEXT_LISTEN');
      expect(refused.stderr).toContain('hint: give --tls-cert and --tls-key, or --allow-plaintext');
      expect(existsSync(join(dir, 'x'))).toBe(false);
    } finally {
      await refused.kill().catch(() => undefined);
    }
    // ...unless the operator says plaintext is intended: then it starts, and the log says so.
    const plain = new HotspareProcess(['receive', '--archive', join(dir, 'x'), '--listen', `0.0.0.0:${plainPort}`, '--token-file', join(dir, 'token'), '--allow-plaintext']);
    try {
      await waitFor('the plaintext warning', () => plain.stderr.includes('PLAINTEXT_LISTEN'));
      expect(plain.stderr).toContain('without TLS, as --allow-plaintext asks');
      expect(await plain.kill('SIGTERM')).toBe(0);
    } finally {
      await plain.kill().catch(() => undefined);
    }
  });

  it('takes an event of several MiB in pieces with bounded pending bytes, and cuts off one whose pieces fail its CRC32', async () => {
    const pieceArchive = join(dir, 'piece-archive');
    // Far less pending than one event: reading must pause and resume in the middle of an event.
    const pieceReceiver = await startReceiver({ archive: pieceArchive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger, limits: { pendingBytesMax: 2 * 1024 * 1024 } });
    const agent = new RemoteTarget({ name: 'pieces', address: `127.0.0.1:${pieceReceiver.address.port}`, tokenFile: join(dir, 'token'), logger: logs.logger });
    // Type 30 (WRITE_ROWS) with a random body: a boundary of its own to the tail recovery, like a statement outside a transaction.
    const event = (bodyBytes: number, offset: number): Buffer => makeEvent(30, randomBytes(bodyBytes), { nextPosition: offset + bodyBytes + 23, timestampS: 1_790_000_000 });
    const durableAt = (session: ReplicaSession, position: number): Promise<DurablePoint> =>
      new Promise((resolve, reject) => {
        const sub = session.durable$.subscribe({ next: (p) => p.position >= position && (sub.unsubscribe(), resolve(p)), error: reject });
      });
    const bin1 = join(pieceArchive, 'binlog', 'mysql-bin.000001');
    const binlogTree = (): Record<string, string> => Object.fromEntries(Object.entries(tree(pieceArchive)).filter(([path]) => path !== 'state/binlog-checkpoint.json'));
    try {
      const logsBefore = logs.lines().length;
      const session = await agent.open(primaryA);
      const small = event(100, 4);
      const large = event(9 * 1024 * 1024 + 77, 4 + small.length);
      const end = 4 + small.length + large.length;
      const acked = durableAt(session, end);
      session.append({ file: 'mysql-bin.000001', offset: 4, bytes: small, timestampS: 1, boundary: true });
      session.append({ file: 'mysql-bin.000001', offset: 4 + small.length, bytes: large, timestampS: 2, boundary: true });
      expect(await acked).toMatchObject({ file: 'mysql-bin.000001', position: end, boundaryPosition: end });
      expect(readFileSync(bin1).equals(Buffer.concat([Buffer.from([0xfe, 0x62, 0x69, 0x6e]), small, large]))).toBe(true);
      // Bounded: reading paused in the middle of the 9 MiB event, and what waited for fsync never
      // exceeded the limit by more than the piece that crossed it.
      const resumed = logs.lines().slice(logsBefore).filter((l) => l.msg === 'reading resumed');
      expect(resumed.length).toBeGreaterThan(0);
      for (const l of resumed) expect(l['pendingPeakBytes']).toBeLessThanOrEqual(2 * 1024 * 1024 + DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX);
      const before = binlogTree();

      // A corrupt byte in the middle of the next large event, and then one that would start the next file.
      for (const [file, offset] of [['mysql-bin.000001', end], ['mysql-bin.000002', 4]] as const) {
        const attempt = offset === end ? session : await agent.open(primaryA);
        if (attempt !== session) expect(attempt.resume).toEqual({ file: 'mysql-bin.000001', position: end, commitTimestampS: undefined, gtid: undefined });
        const corrupt = event(5 * 1024 * 1024, offset);
        corrupt[3 * 1024 * 1024] = (corrupt[3 * 1024 * 1024] as number) ^ 0x40;
        const failed = firstValueFrom(attempt.durable$).catch((err: unknown) => err);
        attempt.append({ file, offset, bytes: corrupt, timestampS: 3, boundary: true });
        const err = await failed;
        expect(err).toBeInstanceOf(HotspareError);
        expect((err as HotspareError).code).toBe('WIRE_BAD_EVENT');
        await attempt.close();
        await waitFor('the session to end', async () => (await pieceReceiver.status()).agent === null);
        expect(binlogTree()).toEqual(before);
        expect((await pieceReceiver.status()).binlog.durable).toMatchObject({ file: 'mysql-bin.000001', position: end });
      }

      // Still serving, at the same point: the next large event goes in.
      const again = await agent.open(primaryA);
      expect(again.resume?.position).toBe(end);
      const next = event(2 * 1024 * 1024, end);
      const nextAcked = durableAt(again, end + next.length);
      again.append({ file: 'mysql-bin.000001', offset: end, bytes: next, timestampS: 4, boundary: true });
      await nextAcked;
      await again.close();
      expect(readFileSync(bin1).equals(Buffer.concat([Buffer.from([0xfe, 0x62, 0x69, 0x6e]), small, large, next]))).toBe(true);
      expect(logs.lines().some((l) => l['code'] === 'WIRE_BAD_EVENT' && String(l.msg).includes('CRC32 mismatch over its pieces'))).toBe(true);
    } finally {
      await pieceReceiver.close();
    }
  });

  it('never begins an archived binlog file again: not where a ROTATE in the newest file points, nor at a peer\'s word', async () => {
    const rotateArchive = join(dir, 'rotate-archive');
    const rotating = await startReceiver({ archive: rotateArchive, listen: { host: '127.0.0.1', port: 0 }, token: TOKEN, logger: logs.logger });
    const event = (offset: number): Buffer => makeEvent(2, Buffer.alloc(40, 0x41), { nextPosition: offset + 63, timestampS: 1 });
    const rotate = (offset: number, next: string): Buffer => {
      const payload = Buffer.alloc(8 + next.length);
      payload.writeBigUInt64LE(4n, 0);
      payload.write(next, 8, 'latin1');
      return makeEvent(4, payload, { nextPosition: offset + 19 + payload.length + 4 });
    };
    const record = (file: string, offset: number, bytes: Buffer): BinlogRecord => ({ file, offset, bytes, timestampS: 1, boundary: true });
    /** The next frame that is not a PING (the receiver sends the volume's figures on its own). */
    const answer = async (peer: RawWirePeer): Promise<{ type: number; json: Record<string, unknown> }> => {
      for (;;) {
        const frame = (await within(peer.next(), 5_000))?.value;
        if (frame === undefined) throw new Error('no frame from the receiver within 5 s');
        if (frame.type !== FrameType.PING) return { type: frame.type, json: frame.payload.length === 0 ? {} : (JSON.parse(frame.payload.toString('utf8')) as Record<string, unknown>) };
      }
    };
    const peers: RawWirePeer[] = [];
    try {
      const first = await rawWirePeer(rotating.address.port);
      peers.push(first);
      expect((await first.hello(TOKEN, primaryA, 'rotating')).type).toBe(FrameType.WELCOME);
      // mysql-bin.000001 ends with its ROTATE; mysql-bin.000002 with one that names mysql-bin.000001
      // again (a damaged event with a good CRC32, or a hostile peer with the token).
      const one = [record('mysql-bin.000001', 4, event(4)), record('mysql-bin.000001', 67, rotate(67, 'mysql-bin.000002'))];
      const two = [record('mysql-bin.000002', 4, event(4)), record('mysql-bin.000002', 67, rotate(67, 'mysql-bin.000001'))];
      for (const records of [one, two]) {
        first.send(FrameType.EVENTS, encodeEvents(records));
        const last = records[records.length - 1] as BinlogRecord;
        expect(await answer(first)).toMatchObject({ type: FrameType.ACK, json: { file: last.file, position: last.offset + last.bytes.length } });
      }
      first.send(FrameType.BYE, []);
      expect((await answer(first)).type).toBe(FrameType.BYE_OK);
      const end2 = 67 + (two[1] as BinlogRecord).bytes.length;
      const before = tree(rotateArchive);

      // The next session resumes at the end of mysql-bin.000002, not at mysql-bin.000001:4 ...
      const second = await rawWirePeer(rotating.address.port);
      peers.push(second);
      const welcome = await second.hello(TOKEN, primaryA, 'rotating');
      expect(welcome.type).toBe(FrameType.WELCOME);
      expect(JSON.parse(welcome.payload.toString('utf8'))).toMatchObject({ resume: { file: 'mysql-bin.000002', position: end2 } });
      // ... and a first event for mysql-bin.000001 is refused: the archived file keeps its bytes.
      second.send(FrameType.EVENTS, encodeEvents([record('mysql-bin.000001', 4, event(4))]));
      expect(await answer(second)).toMatchObject({ type: FrameType.ERROR, json: { code: 'BINLOG_GAP' } });
      await waitFor('the session to end', async () => (await rotating.status()).agent === null);
      expect(tree(rotateArchive)).toEqual(before);

      // Still serving: the stream goes on in the next file.
      const third = await rawWirePeer(rotating.address.port);
      peers.push(third);
      expect((await third.hello(TOKEN, primaryA, 'rotating')).type).toBe(FrameType.WELCOME);
      third.send(FrameType.EVENTS, encodeEvents([record('mysql-bin.000003', 4, event(4))]));
      expect(await answer(third)).toMatchObject({ type: FrameType.ACK, json: { file: 'mysql-bin.000003', position: 67 } });
    } finally {
      for (const peer of peers) peer.socket.destroy();
      await rotating.close();
    }
  });
});
