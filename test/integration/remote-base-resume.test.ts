import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_METADATA_FILE, BASE_PARTIAL_SUFFIX, type BaseBackupMetadata } from '../../src/archive/base-catalog.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { HotspareProcess, runHotspare, writeAgentConfig } from '../support/agent-process.js';
import { expectArchiveEqual } from '../support/binlog-compare.js';
import { CuttingProxy } from '../support/cutting-proxy.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'base-resume-token-0123456789';
const ROWS = 8;
const ROW_BYTES = 1024 * 1024;
/** Far less than the base (random rows do not compress): no connection can carry it whole. */
const BYTES_PER_CONNECTION = 2 * 1024 * 1024;
/** The slow link of the stop test: the base (over 8 MiB) would take more than two minutes. */
const SLOW_LINK_BYTES_PER_SECOND = 64 * 1024;
/**
 * How long the agent may take to stop over that link: about 14 s (2 s to settle, 2 s for the
 * last-heard record, 10 s for the receiver's goodbye behind the pieces already sent), with room.
 */
const SLOW_LINK_STOP_MS = 25_000;

describe('a remote base backup over a link that drops more often than the upload takes', () => {
  let primary: MariadbServer;
  let dir: string;

  beforeAll(async () => {
    dir = tempDir('base-resume');
    primary = await MariadbServer.start({ serverId: 1, binlog: true, extraArgs: ['--max-allowed-packet=64M'] });
    const conn = await primary.connect();
    await conn.query('CREATE DATABASE app');
    await conn.query('CREATE TABLE app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB');
    for (let i = 0; i < ROWS; i += 1) await conn.query('INSERT INTO app.blobs (b) VALUES (?)', [randomBytes(ROW_BYTES)]);
    // The base's binlog file then starts after these rows: what crosses the link is the base.
    await conn.query('FLUSH BINARY LOGS');
    await conn.end();
  });

  afterAll(async () => {
    await primary?.destroy();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes: the base is staged on the agent, each file resumes at what the standby holds, and the binlog follows', { timeout: 300_000 }, async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, TOKEN);
    const archive = join(dir, 'archive');
    const port = await freePort();
    const receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    await receiver.start();
    const proxy = await CuttingProxy.start({ host: '127.0.0.1', port });
    proxy.cutAfterBytes(BYTES_PER_CONNECTION);
    const agent = await startAgent(primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${proxy.port}`, tokenFile }], dir);
    try {
      const id = await waitFor(
        'a complete base on the standby',
        () => (existsSync(join(archive, 'base')) ? readdirSync(join(archive, 'base')).find((n) => !n.endsWith(BASE_PARTIAL_SUFFIX) && existsSync(join(archive, 'base', n, BASE_METADATA_FILE))) : undefined),
        180_000,
      );
      const conn = await primary.connect();
      await conn.query('INSERT INTO app.blobs (b) VALUES (?)', [randomBytes(1000)]);
      await conn.end();
      await expectArchiveEqual(primary, archive, 120_000);

      // Every file of the base is the one the backup wrote, byte for byte.
      const metadata = JSON.parse(readFileSync(join(archive, 'base', id, BASE_METADATA_FILE), 'utf8')) as BaseBackupMetadata;
      const totalBytes = metadata.files.reduce((n, f) => n + f.bytes, 0);
      expect(totalBytes).toBeGreaterThan(2 * BYTES_PER_CONNECTION);
      for (const file of metadata.files) {
        const bytes = readFileSync(join(archive, 'base', id, file.name));
        expect({ name: file.name, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') }).toEqual({ name: file.name, bytes: file.bytes, sha256: file.sha256 });
      }
      expect(metadata.tables.find((t) => t.name === 'blobs')?.rows).toBe(ROWS);
      // One backup, resumed: not one started again per connection.
      expect(readdirSync(join(archive, 'base'))).toEqual([id]);
      expect(proxy.cuts).toBeGreaterThanOrEqual(Math.floor(totalBytes / BYTES_PER_CONNECTION));
      const resumed = readFileSync(join(dir, 'agent.log'), 'utf8')
        .split('\n')
        .filter((line) => line.includes('"base upload resumed"'))
        .map((line) => (JSON.parse(line) as { at: number }).at);
      expect(resumed.length).toBeGreaterThan(0);
      expect(resumed.every((at) => at > 0)).toBe(true);
      // Nothing stays staged once the standby holds the base.
      expect(readdirSync(join(dir, 'agent-state', 'base-upload', 'standby', 'base'))).toEqual([]);
    } finally {
      await agent.stop();
      await proxy.close();
      await receiver.stop();
    }
  });
  it('a base larger than base.stagingBytesMax fails with BASE_STAGING_FULL, naming the setting, and leaves nothing staged or uploaded', { timeout: 120_000 }, async () => {
    const here = join(dir, 'staging-bound');
    mkdirSync(here);
    const tokenFile = join(here, 'token');
    writeFileSync(tokenFile, TOKEN);
    const archive = join(here, 'archive');
    const port = await freePort();
    const receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    await receiver.start();
    try {
      // 1 MiB: the base holds 8 MiB of random rows.
      const config = writeAgentConfig(here, primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }], { base: { stagingBytesMax: 1024 * 1024 } });
      const result = await runHotspare(['base', '--config', config]);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('error BASE_STAGING_FULL');
      expect(result.stderr).toContain('base.stagingBytesMax');
      const staged = join(here, 'state', 'base-upload', 'standby', 'base');
      expect(existsSync(staged) ? readdirSync(staged) : []).toEqual([]);
      expect(existsSync(join(archive, 'base')) ? readdirSync(join(archive, 'base')).filter((n) => !n.endsWith(BASE_PARTIAL_SUFFIX)) : []).toEqual([]);
    } finally {
      await receiver.stop();
    }
  });

  it('SIGTERM while a base it was asked for crosses a slow link: the agent stops without waiting for the upload, and its next start finishes it', { timeout: 300_000 }, async () => {
    const here = join(dir, 'slow-link');
    const tokenFile = join(here, 'token');
    const archive = join(here, 'archive');
    const port = await freePort();
    const running: HotspareProcess[] = [];
    let receiver: ReceiverProcess | undefined;
    let proxy: CuttingProxy | undefined;
    try {
      mkdirSync(here);
      writeFileSync(tokenFile, TOKEN);
      receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
      await receiver.start();
      proxy = await CuttingProxy.start({ host: '127.0.0.1', port });
      const config = writeAgentConfig(here, primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${proxy.port}`, tokenFile }]);
      const start = (args: string[]): HotspareProcess => {
        const p = new HotspareProcess(args);
        running.push(p);
        return p;
      };
      const completeBases = (): string[] =>
        existsSync(join(archive, 'base')) ? readdirSync(join(archive, 'base')).filter((n) => !n.endsWith(BASE_PARTIAL_SUFFIX) && existsSync(join(archive, 'base', n, BASE_METADATA_FILE))) : [];

      const agent = start(['agent', '--config', config]);
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      expect(completeBases()).toHaveLength(1);

      proxy.throttle(SLOW_LINK_BYTES_PER_SECOND);
      const request = start(['base', '--config', config]);
      await waitFor(
        'the upload of the second base to reach the standby',
        () => existsSync(join(archive, 'base')) && readdirSync(join(archive, 'base')).some((n) => n.endsWith(BASE_PARTIAL_SUFFIX) && readdirSync(join(archive, 'base', n)).length > 0),
        120_000,
      );
      // kill() fails the test when the agent takes longer (old code: the whole upload, minutes).
      expect(await agent.kill('SIGTERM', SLOW_LINK_STOP_MS)).toBe(0);
      expect(await request.exited).toBe(1);
      expect(request.stderr).toContain('error BASE_ABORTED');
      expect(request.stderr).toContain('finishes its upload');
      // The base stays complete and ready on the agent; the standby still has only the first.
      const staged = join(here, 'state', 'base-upload', 'standby', 'base');
      expect(readdirSync(staged).filter((n) => !n.endsWith(BASE_PARTIAL_SUFFIX))).toHaveLength(1);
      expect(completeBases()).toHaveLength(1);
      // What reached the standby stays there for the next start to resume from.
      const partials = readdirSync(join(archive, 'base')).filter((n) => n.endsWith(BASE_PARTIAL_SUFFIX));
      expect(partials).toHaveLength(1);
      expect(readdirSync(join(archive, 'base', partials[0] as string)).length).toBeGreaterThan(0);
      // What each file holds on the standby now: the next start must go on from exactly there.
      const partialDir = join(archive, 'base', partials[0] as string);
      const held = new Map(readdirSync(partialDir).map((n) => [n, statSync(join(partialDir, n)).size] as const).filter(([, size]) => size > 0));
      expect(held.size).toBeGreaterThan(0);

      // The next start, over a link at full speed again, uploads it before it streams on.
      proxy.throttle(undefined);
      const again = start(['agent', '--config', config]);
      // The staged copy goes once the standby's is renamed into place: a moment after.
      await waitFor('the second base on the standby, and nothing left staged', () => completeBases().length === 2 && readdirSync(staged).length === 0, 120_000);
      await expectArchiveEqual(primary, archive, 120_000);
      // It went on from the standby's copy: every file the standby held a part of resumed at
      // its size there or later (the receiver may still have written a piece in flight after
      // the sizes above were read), none sent again from its first byte.
      const resumedAt = new Map(again.logs().filter((l) => l['msg'] === 'base upload resumed').map((l) => [basename(String(l['file'])), Number(l['at'])] as const));
      for (const [name, size] of held) expect(resumedAt.get(name), name).toBeGreaterThanOrEqual(size);
      expect(await again.kill('SIGTERM')).toBe(0);
    } finally {
      await Promise.all(running.map((p) => p.kill('SIGKILL')));
      await proxy?.close();
      await receiver?.stop();
    }
  });
});
