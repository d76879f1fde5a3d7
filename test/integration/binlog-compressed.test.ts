import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncAgent } from '../../src/agent/sync-agent.js';
import { scanBinlogFile } from '../../src/archive/binlog-file-scanner.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { compareArchiveWithPrimary } from '../../src/sandbox/binlog-compare.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { primaryHead } from '../support/primary-head.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: with log_bin_compress on, a long DDL is written as a compressed query event (type 165):
 * it ends its transaction like any DDL, so on an idle primary the archive's durable point
 * reaches past it at once (it stayed before it for good, the group taken for still open).
 * Method: a real primary with log_bin_compress, the real agent to a file replica.
 */
describe('compressed binlog events', () => {
  let dir: string;
  let primary: MariadbServer;
  let agent: SyncAgent | undefined;

  beforeAll(async () => {
    dir = tempDir('compressed');
    primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary'), extraArgs: ['--log-bin-compress=ON'] });
  });

  afterAll(async () => {
    await agent?.stop();
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a compressed DDL is a transaction of its own: archived byte for byte and durable on an idle primary', async () => {
    const conn = await primary.connect();
    try {
      await conn.query('CREATE DATABASE app');
      await conn.query('CREATE TABLE app.t (id INT PRIMARY KEY, v INT) ENGINE=InnoDB');
      await conn.query('INSERT INTO app.t VALUES (1, 1)');
      const archive = join(dir, 'archive');
      agent = await startAgent(primary, [{ name: 'a', type: 'file', path: archive }], dir);
      const tracker = agent.trackers[0];
      const durableAt = (at: { file: string; position: number }): boolean => tracker?.snapshot.durable !== undefined && compareBinlogPositions(tracker.snapshot.durable, at) >= 0;
      await waitFor('the first writes durable', async () => durableAt(await primaryHead(conn)));
      // Longer than log_bin_compress_min_len (256): written compressed. Then nothing more.
      await conn.query(`CREATE TABLE app.long_ddl (id INT PRIMARY KEY, note VARCHAR(200) COMMENT '${'a long comment, '.repeat(30)}') ENGINE=InnoDB`);
      const head = await primaryHead(conn);
      await waitFor('the compressed DDL durable', () => durableAt(head), 10_000);
      const types: number[] = [];
      await scanBinlogFile(join(archive, 'binlog', head.file), { fromOffset: 4, verifyChecksums: true, onEvent: ({ header }) => void types.push(header.type) });
      expect(types).toContain(165);
      expect(tracker?.snapshot.durable).toMatchObject({ file: head.file, boundaryPosition: head.position });
      expect(compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir).differences).toEqual([]);
    } finally {
      await conn.end();
    }
  });
});
