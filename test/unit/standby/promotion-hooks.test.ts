import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/platform/logger.js';
import { SPOOL_FORMAT_VERSION, sourceMetaPath, type SourceMeta } from '../../../src/spool/spool-format.js';
import { runPromotionHooks } from '../../../src/standby/promotion-hooks.js';
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
});
