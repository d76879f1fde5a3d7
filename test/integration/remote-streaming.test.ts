import { execFileSync } from 'node:child_process';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { compareArchive, expectArchiveEqual } from '../support/binlog-compare.js';
import { waitFor } from '../support/wait.js';
import { CuttingProxy } from '../support/cutting-proxy.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { Workload } from '../support/background-workload.js';
import { randomBytes } from 'node:crypto';

const TOKEN = 'test-token-0123456789';

describe('remote replica through `hotspare receive`', () => {
  let primary: MariadbServer;
  let workload: Workload;
  const dirs: string[] = [];

  beforeAll(async () => {
    // Rows of several MiB make binlog events larger than a wire frame (a row is never split).
    primary = await MariadbServer.start({ serverId: 1, binlog: true, extraArgs: ['--max-allowed-packet=256M'] });
    workload = new Workload(primary);
    await workload.prepare();
  });

  afterAll(async () => {
    await primary?.destroy();
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  async function setup(options: { tls?: boolean } = {}): Promise<{ dir: string; archive: string; tokenFile: string; port: number; receiver: ReceiverProcess; cert: string }> {
    const dir = tempDir('remote');
    dirs.push(dir);
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const archive = join(dir, 'archive');
    const port = await freePort();
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const tlsArgs: string[] = [];
    if (options.tls === true) {
      // A certificate made for this test, for the name the agent checks.
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=standby.test', '-addext', 'subjectAltName=DNS:standby.test'], { stdio: 'ignore' });
      tlsArgs.push('--tls-cert', cert, '--tls-key', key);
    }
    const receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile, ...tlsArgs]);
    await receiver.start();
    return { dir, archive, tokenFile, port, receiver, cert };
  }

  it('archives the binlog byte for byte, through SIGKILLed and restarted receivers', async () => {
    const { dir, archive, tokenFile, port, receiver } = await setup();
    const agent = await startAgent(primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }], dir);
    try {
      workload.start({ flushEvery: 400 });
      for (let kill = 0; kill < 3; kill += 1) {
        const before = workload.transactions;
        await waitFor('more transactions', () => workload.transactions > before + 150);
        await receiver.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, 300));
        await receiver.start();
      }
      const before = workload.transactions;
      await waitFor('more transactions', () => workload.transactions > before + 150);
      await workload.stop();
      await expectArchiveEqual(primary, archive);
    } finally {
      await workload.stop();
      await agent.stop();
      await receiver.stop();
    }
  });

  it('archives the binlog byte for byte over TLS through a link that is cut every second', async () => {
    const { dir, archive, tokenFile, port, receiver, cert } = await setup({ tls: true });
    const proxy = await CuttingProxy.start({ host: '127.0.0.1', port });
    const agent = await startAgent(
      primary,
      [{ name: 'standby', type: 'remote', address: `127.0.0.1:${proxy.port}`, tokenFile, tls: { ca: cert, servername: 'standby.test' } }],
      dir,
    );
    try {
      workload.start({ flushEvery: 300 });
      proxy.cutEvery(1_000);
      await waitFor('several cuts', () => proxy.cuts >= 4);
      await workload.stop();
      await expectArchiveEqual(primary, archive);
      expect(proxy.cuts).toBeGreaterThanOrEqual(4);
    } finally {
      await workload.stop();
      await agent.stop();
      await proxy.close();
      await receiver.stop();
    }
  });

  it('keeps a file replica current while the remote one is down, and the remote catches up exactly', async () => {
    const { dir, archive, tokenFile, port, receiver } = await setup();
    const fileArchive = join(dir, 'file-archive');
    const agent = await startAgent(
      primary,
      [
        { name: 'local', type: 'file', path: fileArchive },
        { name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile },
      ],
      dir,
    );
    try {
      workload.start({ flushEvery: 500 });
      await waitFor('some transactions', () => workload.transactions > 100);
      expect(await receiver.stop('SIGTERM')).toBe(0);
      const before = workload.transactions;
      await waitFor('more transactions while the standby is down', () => workload.transactions > before + 150);
      await workload.stop();
      // The remote standby is down: the file replica is complete all the same.
      await expectArchiveEqual(primary, fileArchive);
      expect(await compareArchive(primary, archive)).not.toEqual([]);
      await receiver.start();
      await expectArchiveEqual(primary, archive);
    } finally {
      await workload.stop();
      await agent.stop();
      await receiver.stop();
    }
  });

  // Last: its rows make the primary's binlog (and, until dropped, its database) large.
  it('archives rows of several MiB (events in pieces) byte for byte, through receivers SIGKILLed in the middle of one', async () => {
    const { dir, archive, tokenFile, port, receiver } = await setup();
    const conn = await primary.connect();
    await conn.query('CREATE TABLE IF NOT EXISTS app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, b LONGBLOB) ENGINE=InnoDB');
    const agent = await startAgent(primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }], dir);
    const archivedBytes = (): number => {
      const names = readdirSync(join(archive, 'binlog')).filter((n) => /\.\d{6}$/.test(n)).sort();
      const newest = names[names.length - 1];
      return newest === undefined ? 0 : statSync(join(archive, 'binlog', newest)).size;
    };
    try {
      await waitFor('the archive to begin', () => receiver.running && archivedBytes() > 0);
      for (let kill = 0; kill < 3; kill += 1) {
        // Kill as soon as the first piece of a 24 MiB row event is on the standby's disk.
        const before = archivedBytes();
        const insert = conn.query('INSERT INTO app.blobs (b) VALUES (?)', [randomBytes(24 * 1024 * 1024)]);
        await waitFor('a piece of the large event in the archive', () => archivedBytes() > before + 1024 * 1024, 60_000, 2);
        await receiver.stop('SIGKILL');
        await insert;
        await receiver.start();
      }
      for (const size of [3, 12, 1]) await conn.query('INSERT INTO app.blobs (b) VALUES (?)', [randomBytes(size * 1024 * 1024)]);
      await expectArchiveEqual(primary, archive);
    } finally {
      // Later bases need not carry these rows.
      await conn.query('DROP TABLE IF EXISTS app.blobs');
      await conn.end();
      await agent.stop();
      await receiver.stop();
    }
  });
});
