import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { startAgent, tempDir } from '../support/agent-harness.js';
import { primaryHead } from '../support/primary-head.js';
import { promoteInto } from '../support/promote-into.js';
import { waitFor } from '../support/wait.js';

/**
 * Goal: a primary that runs for a while as another server (restarted under another log_bin
 * basename) or without a binlog, and then as itself again, does not leave the archive silently
 * without what it wrote meanwhile: the dumps are refused while it lasts (ARCHIVE_FOREIGN,
 * BINLOG_DISABLED), and once it is back the archive's chain restarts at a new base, so a
 * promotion to the end holds every row. Before, the agent went on from the archive's end as if
 * nothing had happened, and the promoted standby lacked that period's rows (a rehearsal's:
 * 18,292 rows of 18,466, loss window 0 s). Method: a real primary restarted with other options,
 * the real agent, a real promotion, CHECKSUM TABLE compared.
 */
describe('a primary that was not itself for a while', () => {
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let agent: SyncAgent | undefined;
  let archive: string;

  const query = async (sql: string): Promise<void> => {
    const conn = await primary.connect();
    try {
      await conn.query(sql);
    } finally {
      await conn.end();
    }
  };
  const caughtUp = async (): Promise<void> => {
    const conn = await primary.connect();
    const head = await primaryHead(conn).finally(() => conn.end());
    await waitFor('the archive caught up', () => {
      const durable = agent?.trackers[0]?.snapshot.durable;
      return durable !== undefined && compareBinlogPositions(durable, head) >= 0;
    }, 120_000);
  };
  const refusedWith = (code: string): Promise<unknown> => waitFor(code, () => agent?.trackers[0]?.snapshot.failure?.code === code, 60_000);
  const gaps = (): { reason: string }[] => (existsSync(join(archive, 'state', 'gaps.json')) ? (JSON.parse(readFileSync(join(archive, 'state', 'gaps.json'), 'utf8')) as { gaps: { reason: string }[] }).gaps : []);
  const promotedEqualsPrimary = async (): Promise<void> => {
    await promoteInto(standby, archive, { kind: 'end' }, { replace: true });
    const [p, s] = [await primary.connect(), await standby.connect()];
    try {
      expect(await tableChecksums(s)).toEqual(await tableChecksums(p));
    } finally {
      await Promise.all([p.end(), s.end()]);
    }
  };

  beforeAll(async () => {
    dir = tempDir('primary-break');
    archive = join(dir, 'archive');
    primary = await MariadbServer.start({ serverId: 1, binlog: true, baseDir: join(dir, 'primary') });
    standby = await MariadbServer.start({ serverId: 2, binlog: false, baseDir: join(dir, 'standby') });
    await query('CREATE DATABASE app');
    await query('CREATE TABLE app.t (id INT AUTO_INCREMENT PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB');
    agent = await startAgent(primary, [{ name: 'a', type: 'file', path: archive }], dir);
    await query("INSERT INTO app.t (v) VALUES ('before')");
    await caughtUp();
  }, 180_000);

  afterAll(async () => {
    await agent?.stop();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('under another log_bin basename: refused while it lasts; back, the chain restarts at a new base and the promotion holds that period\'s rows', async () => {
    await primary.restart({ extraArgs: ['--log-bin=other-bin'] });
    await query("INSERT INTO app.t (v) VALUES ('under other-bin')");
    await refusedWith('ARCHIVE_FOREIGN');
    expect(agent?.trackers[0]?.snapshot.failure?.message).toContain('other-bin');
    await primary.restart();
    await query("INSERT INTO app.t (v) VALUES ('back')");
    await waitFor('a gap recorded', () => gaps().length === 1, 120_000);
    expect(gaps()[0]?.reason).toContain('now runs as');
    await caughtUp();
    expect(existsSync(join(archive, 'state', 'primary-break.json'))).toBe(false);
    await promotedEqualsPrimary();
  }, 300_000);

  it('without a binlog: the same', async () => {
    await primary.restart({ extraArgs: ['--skip-log-bin'] });
    await query("INSERT INTO app.t (v) VALUES ('no binlog')");
    await refusedWith('BINLOG_DISABLED');
    await primary.restart();
    await query("INSERT INTO app.t (v) VALUES ('back again')");
    await waitFor('a second gap recorded', () => gaps().length === 2, 120_000);
    await caughtUp();
    await promotedEqualsPrimary();
  }, 300_000);
});
