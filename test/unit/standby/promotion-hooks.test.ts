import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { SPOOL_FORMAT_VERSION, sourceMetaPath, type SourceMeta } from '../../../src/spool/spool-format.js';
import { runPromotionHooks } from '../../../src/standby/promotion-hooks.js';
import { parseMysqlUrl } from '../../../src/standby/mysql-url.js';
import { waitFor } from '../../support/wait.js';

/**
 * Goal: a post-promotion hook that starts a daemon (which keeps the hook's output pipes open)
 * does not hold promote, and a hook that runs past its timeout is killed with everything it
 * started. Method: real /bin/sh hooks from a source.json written by hand.
 */
const work = mkdtempSync(join(tmpdir(), 'hotspare-hooks-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function archiveWithHooks(hooks: SourceMeta['hooks']): string {
  const root = join(work, `archive-${Math.random().toString(36).slice(2)}`);
  const meta: SourceMeta = { format: SPOOL_FORMAT_VERSION, name: 's', path: '/nowhere', exclude: [], blockBytes: 65536, retentionSeconds: 60, hooks, completeFromMs: 0 };
  mkdirSync(join(root, 'files', 's'), { recursive: true });
  writeFileSync(join(root, sourceMetaPath('s')), JSON.stringify(meta));
  return root;
}

const run = (archive: string): ReturnType<typeof runPromotionHooks> =>
  runPromotionHooks({ archiveDir: archive, restorePoint: { timeMs: 0, file: undefined, position: undefined, gtid: undefined }, filesRoot: work, logger: silentLogger() });

/** Running (a killed process whose parent died may stay a zombie until something reaps it). */
const alive = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
};

describe('post-promotion hooks', () => {
  it('a timeout from source.json too large for a timer, or missing, does not kill the hook at its start', async () => {
    // Past 2^31-1 ms a Node timer fires at once; the archive's source.json is not checked by the config schema.
    const results = await run(archiveWithHooks([{ run: 'sleep 0.2; exit 0', timeoutSeconds: 1e12 }, { run: 'sleep 0.2; exit 0' } as SourceMeta['hooks'][number]]));
    expect(results).toMatchObject([{ exitCode: 0, timedOut: false }, { exitCode: 0, timedOut: false }]);
  });

  it('a hook that leaves a daemon behind (holding its output) returns when the hook itself ends', async () => {
    const pidFile = join(work, 'daemon.pid');
    const started = Date.now();
    const [result] = await run(archiveWithHooks([{ run: `sleep 30 & echo $! > ${pidFile}; echo started`, timeoutSeconds: 20 }]));
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    expect(Date.now() - started).toBeLessThan(5_000);
    const daemon = Number(readFileSync(pidFile, 'utf8'));
    // It is the application's: promote lets it run.
    expect(alive(daemon)).toBe(true);
    process.kill(daemon, 'SIGKILL');
  });

  it('a hook past its timeout is killed with what it started', async () => {
    const pidFile = join(work, 'child.pid');
    const started = Date.now();
    const [result] = await run(archiveWithHooks([{ run: `sleep 30 & echo $! > ${pidFile}; sleep 30`, timeoutSeconds: 1 }]));
    expect(result).toMatchObject({ timedOut: true, exitCode: null, signal: 'SIGKILL' });
    expect(Date.now() - started).toBeLessThan(5_000);
    const child = Number(readFileSync(pidFile, 'utf8'));
    // SIGKILL went to the whole group; the kernel reaps it a moment later.
    await waitFor('what the hook started to be gone', () => !alive(child), 5_000, 5);
  });

  it('a hook that ends just inside its timeout is not killed afterwards, nor is what it started', async () => {
    const pidFile = join(work, 'late.pid');
    const [result] = await run(archiveWithHooks([{ run: `sleep 30 & echo $! > ${pidFile}; sleep 0.8`, timeoutSeconds: 1 }]));
    expect(result).toMatchObject({ exitCode: 0, timedOut: false });
    await new Promise((r) => setTimeout(r, 500));
    const daemon = Number(readFileSync(pidFile, 'utf8'));
    expect(alive(daemon)).toBe(true);
    process.kill(daemon, 'SIGKILL');
  });

  it('a hook gets absolute paths and the target to reach, never its password', async () => {
    const archive = archiveWithHooks([{ run: `env | grep '^HOTSPARE_' | sort > ${join(work, 'env.txt')}`, timeoutSeconds: 10 }]);
    const url = parseMysqlUrl('mysql://pro%40moter:s3cr%3Aet@db.example:3307');
    expect(url.redacted).toBe('mysql://pro%40moter@db.example:3307');
    const socket = parseMysqlUrl('mysql://root:s3cr%3Aet@localhost?socket=/run/mysqld/mysqld.sock');
    expect(socket.redacted).toBe('mysql://root@localhost?socket=/run/mysqld/mysqld.sock');
    const results = await runPromotionHooks({
      // As typed on the command line, relative to promote's own folder.
      archiveDir: relative(process.cwd(), archive),
      restorePoint: { timeMs: Date.parse('2026-12-06T14:44:04.250Z'), commitTimeMs: Date.parse('2026-12-06T14:44:03.000Z'), file: 'mysql-bin.000002', position: 900, gtid: '0-1-5' },
      filesRoot: relative(process.cwd(), join(work, 'restored')),
      target: { url: url.redacted, user: url.user, host: url.host, port: url.port },
      logger: silentLogger(),
    });
    expect(results).toMatchObject([{ exitCode: 0 }]);
    const env = Object.fromEntries(
      readFileSync(join(work, 'env.txt'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toEqual({
      HOTSPARE_ARCHIVE: archive,
      HOTSPARE_RESTORE_POINT_COMMIT_TIME: '2026-12-06T14:44:03.000Z',
      HOTSPARE_RESTORE_POINT_FILE: 'mysql-bin.000002',
      HOTSPARE_RESTORE_POINT_GTID: '0-1-5',
      HOTSPARE_RESTORE_POINT_MS: String(Date.parse('2026-12-06T14:44:04.250Z')),
      HOTSPARE_RESTORE_POINT_POSITION: '900',
      HOTSPARE_RESTORE_POINT_TIME: '2026-12-06T14:44:04.250Z',
      HOTSPARE_SOURCE_NAME: 's',
      HOTSPARE_SOURCE_PATH: join(work, 'restored', 's'),
      HOTSPARE_SOURCE_RESTORED: '1',
      HOTSPARE_TARGET: 'mysql://pro%40moter@db.example:3307',
      HOTSPARE_TARGET_HOST: 'db.example',
      HOTSPARE_TARGET_PORT: '3307',
      HOTSPARE_TARGET_SOCKET: '',
      HOTSPARE_TARGET_USER: 'pro@moter',
    });
    expect(JSON.stringify(env)).not.toContain('s3cr');
  });
});
