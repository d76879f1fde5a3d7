import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BASE_METADATA_FILE, BASE_PARTIAL_SUFFIX, type BaseBackupMetadata } from '../../src/archive/base-catalog.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { expectArchiveEqual } from '../support/binlog-compare.js';
import { CuttingProxy } from '../support/cutting-proxy.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { waitFor } from '../support/wait.js';

const TOKEN = 'base-resume-token-0123456789';
const ROWS = 8;
const ROW_BYTES = 1024 * 1024;
/** Far less than the base (random rows do not compress): no connection can carry it whole. */
const BYTES_PER_CONNECTION = 2 * 1024 * 1024;

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
});
