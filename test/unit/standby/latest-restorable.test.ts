import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { inspectArchive } from '../../../src/standby/verify-archive.js';
import { FIXTURE_NAME, FIXTURE_PATH, fixtureEvents } from '../../support/fixtures.js';

/**
 * Goal: status and verify name the newest point promote reaches also when nothing committed
 * after the newest base (a chain just restarted at a new base, an idle primary): the base's own
 * point, not "none". Method: an archive written by hand around the fixture binlog.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-latest-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function archiveWithBaseAt(position: number): string {
  const root = join(work, `a-${position}`);
  mkdirSync(join(root, 'binlog'), { recursive: true });
  copyFileSync(FIXTURE_PATH, join(root, 'binlog', FIXTURE_NAME));
  const primary = { serverId: 1, serverUuid: null, flavor: 'mariadb', version: '10.11', hostname: 'p', binlogBasename: '/var/lib/mysql/mysql-bin' };
  writeFileSync(join(root, 'archive.json'), JSON.stringify({ formatVersion: 1, primary, createdAt: '2026-12-05T00:00:00.000Z' }));
  const id = '20261205T010000.000Z';
  mkdirSync(join(root, 'base', id), { recursive: true });
  writeFileSync(join(root, 'base', id, 'metadata.json'), JSON.stringify({
    formatVersion: 1, id, method: 'logical-exact', startedAt: '2026-12-05T01:00:00.000Z', finishedAt: '2026-12-05T01:00:05.000Z',
    binlog: { file: FIXTURE_NAME, position }, gtidBinlogPos: '0-1-9', files: [],
  }));
  return root;
}

describe('latest restorable point', () => {
  const events = fixtureEvents();
  const end = (events.at(-1)?.offset ?? 0) + (events.at(-1)?.bytes.length ?? 0);

  it('is the base\u2019s point when no commit follows the base', async () => {
    const report = await inspectArchive(archiveWithBaseAt(end), { checksums: false });
    expect(report.latestRestorable).toEqual({ file: FIXTURE_NAME, position: end, commitTime: '2026-12-05T01:00:00.000Z', gtid: '0-1-9' });
  });

  it('is the last commit when one follows the base', async () => {
    const report = await inspectArchive(archiveWithBaseAt(4), { checksums: false });
    expect(report.latestRestorable?.file).toBe(FIXTURE_NAME);
    expect(report.latestRestorable?.position).toBeGreaterThan(4);
    expect(report.latestRestorable?.commitTime).not.toBe('2026-12-05T01:00:00.000Z');
  });
});
