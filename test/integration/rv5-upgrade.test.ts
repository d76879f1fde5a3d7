import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { spoolSourceSchema } from '../../src/config/schema.js';
import { silentLogger } from '../../src/platform/logger.js';
import { SpoolSyncer } from '../../src/spool/spool-syncer.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../src/standby/spool-verify.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';

// Needs the format-3 build at /tmp/rv5-old (git worktree of b9a1db4, built) (git worktree add /tmp/rv5-old b9a1db4; link node_modules; npm run build there); helpers in test/support/rv5.
let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rv5-up-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!existsSync('/tmp/rv5-old/dist'))('rv5: upgrade from a format-3 archive', () => {
  it('a format-3 archive is extended in pieces; points from before and after restore; verify is clean; the old version refuses it', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(src);
    await writeFile(join(src, 'a.dat'), randomBytes(5000));
    await writeFile(join(src, 'b.dat'), randomBytes(300));
    const t0 = Date.now() + 3_600_000;
    const oldNow = Number(execFileSync('node', ['test/support/rv5/old-sync.mjs', src, archive, String(t0)], { encoding: 'utf8' }));
    const atOld = await describeTree(src);
    expect(JSON.parse(await readFile(join(archive, 'files/feeds/source.json'), 'utf8')).format).toBe(3);
    let now = oldNow;
    const s = new SpoolSyncer({ source: spoolSourceSchema.parse({ name: 'feeds', path: src, retentionSeconds: 100000, blockBytes: 4096 }), files: new LocalArchiveFiles(archive), logger: silentLogger(), clock: { nowMs: () => now }, tuning: { watch: false, racyWindowMs: 0 } });
    s.start();
    const points: Array<{ t: number; tree: Map<string, string> }> = [];
    try {
      for (let k = 0; k < 5; k++) {
        now += 10_000;
        await appendFile(join(src, 'a.dat'), randomBytes(3));
        await appendFile(join(src, 'b.dat'), randomBytes(3));
        await s.syncNow();
        points.push({ t: now, tree: await describeTree(src) });
      }
    } finally {
      await s.stop();
    }
    const jnl = await readFile(join(archive, 'files/feeds/journal/0000000001.jnl'), 'utf8');
    expect(jnl).toMatch(/\]\]\]\]/);
    expect((await verifySpoolArchive(archive, silentLogger())).map((r) => r.problems)).toEqual([[]]);
    await restoreSpool({ archiveDir: archive, filesRoot: join(dir, 'old'), untilMs: oldNow, logger: silentLogger() });
    expect(treeDiff(atOld, await describeTree(join(dir, 'old', 'feeds')))).toEqual([]);
    for (const [i, p] of points.entries()) {
      await restoreSpool({ archiveDir: archive, filesRoot: join(dir, `p${i}`), untilMs: p.t, logger: silentLogger() });
      expect(treeDiff(p.tree, await describeTree(join(dir, `p${i}`, 'feeds')))).toEqual([]);
    }
    const old = JSON.parse(execFileSync('node', ['test/support/rv5/old-restore.mjs', archive, join(dir, 'by-old')], { encoding: 'utf8' })) as { restore: string[]; verify: string[][] };
    expect(old.restore).not.toContain('ok');
  });
});
