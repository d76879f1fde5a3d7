import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { compareArchiveWithPrimary, primaryBinlogFiles } from '../../src/sandbox/binlog-compare.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { createMixedSchema, mixedWorkloadStep, prng } from '../support/workload.js';
import { settleBinlog } from '../support/primary-head.js';

/**
 * Goal: the archive the agent writes equals the primary's binlog byte for byte (only the
 * open file's in-use flag may differ), after a mixed workload with rotations, and stays so
 * when the agent is SIGKILLed and restarted and when the primary restarts mid-workload.
 * Method: a real sandbox primary, the real `hotspare agent` process, byte comparison.
 */
describe('agent streams the binlog byte for byte', () => {
  let primary: MariadbServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-agent-'));
    primary = await MariadbServer.start({ serverId: 11, binlog: true, baseDir: join(dir, 'primary') });
  });

  afterAll(async () => {
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  async function caughtUp(archive: string): Promise<boolean> {
    if (!existsSync(join(archive, 'binlog'))) return false;
    const cmp = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    return cmp.files.length > 0 && cmp.differences.length === 0 && cmp.files.join() === primaryBinlogFiles(primary.datadir, cmp.files[0]).join();
  }

  it('archives a mixed workload with rotations exactly', async () => {
    const archive = join(dir, 'archive-mixed');
    const config = writeAgentConfig(join(dir), primary, [{ name: 'a', type: 'file', path: archive }]);
    const agent = new HotspareProcess(['agent', '--config', config]);
    const conn = await primary.connect();
    try {
      await createMixedSchema(conn);
      const random = prng(1);
      for (let step = 1; step <= 120; step += 1) await mixedWorkloadStep(conn, step, random);
      // A last rotation, and its BINLOG_CHECKPOINT awaited: the server writes that event on its
      // own a while later, and the comparison after the agent stops must not race it.
      await settleBinlog(conn, "INSERT INTO app.accounts (name) VALUES ('after-last-rotation')");
      await waitFor('the archive to catch up', () => caughtUp(archive));
      expect(primaryBinlogFiles(primary.datadir).length).toBeGreaterThanOrEqual(5);
    } finally {
      await conn.end();
      await agent.kill('SIGTERM');
    }
    expect(await agent.exited).toBe(0);
    const result = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    expect(result.differences).toEqual([]);
    expect(result.files).toEqual(primaryBinlogFiles(primary.datadir, result.files[0]));
  });

  it('gives the same archive across SIGKILLs of the agent and a primary restart', async () => {
    const archive = join(dir, 'archive-crash');
    const config = writeAgentConfig(join(dir), primary, [{ name: 'b', type: 'file', path: archive }]);
    const conn0 = await primary.connect();
    await createMixedSchema(conn0);
    await conn0.end();

    // Writes run continuously in the background while the agent is killed and restarted.
    const random = prng(2);
    let writing = true;
    let steps = 0;
    const writer = (async () => {
      while (writing) {
        let conn;
        try {
          conn = await primary.connect();
          while (writing) {
            await mixedWorkloadStep(conn, 1000 + steps, random);
            steps += 1;
          }
        } catch {
          // The primary restart breaks the connection; reconnect and go on.
          await new Promise((r) => setTimeout(r, 200));
        } finally {
          await conn?.end().catch(() => undefined);
        }
      }
    })();

    const archivedBytes = (): number => {
      if (!existsSync(join(archive, 'binlog'))) return 0;
      return readdirSync(join(archive, 'binlog')).reduce((n, f) => n + statSync(join(archive, 'binlog', f)).size, 0);
    };
    let agent = new HotspareProcess(['agent', '--config', config]);
    try {
      for (let kill = 0; kill < 4; kill += 1) {
        // Let the agent stream for a while (its archive grows), then kill it mid-stream.
        const before = archivedBytes();
        await waitFor('the agent to make progress', () => archivedBytes() > before + 50_000, 60_000, 20);
        await agent.kill('SIGKILL');
        if (kill === 2) await primary.restart();
        agent = new HotspareProcess(['agent', '--config', config]);
      }
      await waitFor('more writes', () => steps > 150, 60_000);
    } finally {
      writing = false;
      await writer;
    }
    const conn = await primary.connect();
    await settleBinlog(conn, "INSERT INTO app.accounts (name) VALUES ('final')");
    await conn.end();
    try {
      await waitFor('the archive to catch up after crashes', () => caughtUp(archive), 90_000);
    } finally {
      await agent.kill('SIGTERM');
    }
    const result = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    expect(result.differences).toEqual([]);
    expect(result.files).toEqual(primaryBinlogFiles(primary.datadir, result.files[0]));
    expect(result.files.length).toBeGreaterThan(3);
  });

  it('streams a transaction far larger than the high-water mark, pausing the dump', async () => {
    const archive = join(dir, 'archive-large');
    const config = writeAgentConfig(join(dir, 'large'), primary, [{ name: 'c', type: 'file', path: archive }], {
      binlog: { highWaterBytes: 1_000_000, lowWaterBytes: 250_000, syncBatchBytesMax: 256_000 },
    });
    const agent = new HotspareProcess(['agent', '--config', config]);
    const conn = await primary.connect();
    try {
      await conn.query('CREATE DATABASE IF NOT EXISTS app');
      await conn.query('CREATE TABLE IF NOT EXISTS app.big (id INT PRIMARY KEY, data MEDIUMBLOB) ENGINE=InnoDB');
      // One transaction of about 40 MB: forty 1 MB rows.
      await conn.query('BEGIN');
      for (let i = 0; i < 40; i += 1) await conn.query('INSERT INTO app.big VALUES (?, ?)', [i, Buffer.alloc(1_000_000, i)]);
      await conn.query('COMMIT');
      await waitFor('the large transaction to be archived', () => caughtUp(archive), 90_000);
    } finally {
      await conn.end();
      await agent.kill('SIGTERM');
    }
    const result = compareArchiveWithPrimary(join(archive, 'binlog'), primary.datadir);
    expect(result.differences).toEqual([]);
    expect(agent.logs().some((l) => l['msg'] === 'flow control: dump paused')).toBe(true);
    expect(agent.logs().some((l) => l['msg'] === 'flow control: dump resumed')).toBe(true);
  });
});
