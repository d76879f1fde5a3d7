import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { SyncAgent } from '../../src/agent/sync-agent.js';
import { listBaseBackups } from '../../src/archive/base-catalog.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { readLastHeard } from '../../src/archive/last-heard.js';
import { loadAgentConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { divergeStandby } from '../support/promote-into.js';
import { packPath, type SourceMeta } from '../../src/spool/spool-format.js';
import { listSpoolSources, restoreSpool, spoolTreeAt } from '../../src/standby/spool-restore.js';
import { primaryHead } from '../support/primary-head.js';
import { nextSecond, waitFor } from '../support/wait.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';

// Goal: `hotspare promote` turns an archive back into the gateway as it was at one moment:
// the database and its spool directory at the same point, the hooks run with that point, and
// the report says when the archive last heard from the primary.

const execFileAsync = promisify(execFile);
const BIN = new URL('../../bin/hotspare.js', import.meta.url).pathname;

interface Report {
  lossWindowSeconds: number | undefined;
  lastTransaction: { commitTime: string } | undefined;
  lastHeard: { time: string; source: string; caughtUp: boolean } | undefined;
  filesRestored: Array<{ name: string; path: string; pointMs: number }>;
  hooks: Array<{ source: string; exitCode: number | null }>;
  steps: Array<{ name: string; run: boolean }>;
}

describe('promote restores the database and the spool files at the same point', () => {
  let primary: MariadbServer;
  let standby: MariadbServer;
  let work: string;
  let spool: string;
  let archive: string;
  let conn: Connection;
  let standbyConn: Connection;
  let agent: SyncAgent;
  let instant: { atMs: number; sums: Record<string, string>; tree: Map<string, string>; seqno: string };
  let final: { sums: Record<string, string>; tree: Map<string, string> };
  /** The gateway source's post-promotion hook. */
  let hook: string;
  const targetUrl = (): string => `mysql://root@localhost?socket=${standby.socketPath}`;

  let message = 0;
  /** One gateway step: the message row, its queue file, the seqno counter; old queue files go. */
  async function gatewayStep(): Promise<void> {
    message += 1;
    await conn.query('INSERT INTO gw.messages (id, body) VALUES (?, ?)', [message, `message ${message}`]);
    writeFileSync(join(spool, 'queue', `msg-${message}`), `to: +4471234${message}\nbody: message ${message}\n`);
    writeFileSync(join(spool, 'seqno'), `${message}\n`);
    if (message > 5) rmSync(join(spool, 'queue', `msg-${message - 5}`), { force: true });
  }

  async function settle(): Promise<void> {
    const head = await primaryHead(conn);
    // Spool changes are seen after a short debounce: quiet for a while, nothing pending, binlog durable.
    let quietPolls = 0;
    await waitFor('the archive to hold everything', () => {
      const s = agent.trackers[0]?.snapshot;
      const durable = s?.durable;
      const done = s !== undefined && s.files.pendingChanges === 0 && durable !== undefined && compareBinlogPositions(durable, head) >= 0;
      quietPolls = done ? quietPolls + 1 : 0;
      return quietPolls >= 8;
    });
  }

  async function runSteps(n: number): Promise<void> {
    for (let i = 0; i < n; i += 1) {
      await gatewayStep();
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hotspare-promote-files-'));
    archive = join(work, 'archive');
    spool = join(work, 'gateway');
    mkdirSync(join(spool, 'queue'), { recursive: true });
    mkdirSync(join(spool, 'log'));
    writeFileSync(join(spool, 'server.cfg'), 'port=9000\n', { mode: 0o640 });
    writeFileSync(join(spool, 'log', 'gateway.log'), 'excluded\n');
    symlinkSync('server.cfg', join(spool, 'current.cfg'));
    primary = await MariadbServer.start({ serverId: 1, binlog: true });
    standby = await MariadbServer.start({ serverId: 2, binlog: false, extraArgs: ['--read-only=ON'] });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await conn.query('CREATE DATABASE gw');
    await conn.query('CREATE TABLE gw.messages (id INT PRIMARY KEY, body VARCHAR(200)) ENGINE=InnoDB');

    // The hook a gateway would run: report the point and the restored seqno; fail on request.
    hook = `printf '%s|%s|%s|%s\\n' "$HOTSPARE_RESTORE_POINT_TIME" "$HOTSPARE_SOURCE_PATH" "$(cat "$HOTSPARE_SOURCE_PATH/seqno")" "$HOTSPARE_RESTORE_POINT_FILE" >> ${join(work, 'hook.out')}; test ! -e ${join(work, 'fail-hook')}`;
    writeFileSync(
      join(work, 'agent.json'),
      JSON.stringify({
        primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 },
        stateDir: join(work, 'state'),
        replicas: [{ name: 'a', type: 'file', path: archive }],
        spool: [{ name: 'gateway', path: spool, exclude: ['log/**'], hooks: [{ run: hook }] }],
      }),
    );
    const config = loadAgentConfig(join(work, 'agent.json'));
    agent = new SyncAgent(config, await SyncAgent.preflight(config), { logger: silentLogger(), clock: systemClock, random01: () => 0.5 });
    agent.start();
    await waitFor('the base backup', async () => (await listBaseBackups(new LocalArchiveFiles(archive))).length > 0);
    await runSteps(60);

    // The instant: no commit and no file change in its second.
    await settle();
    await nextSecond(100);
    instant = { atMs: Date.now(), sums: await tableChecksums(conn), tree: await describeTree(spool, (p) => p.startsWith('log')), seqno: readFileSync(join(spool, 'seqno'), 'utf8').trim() };
    await nextSecond(50);
    await runSteps(60);
    await settle();
    final = { sums: await tableChecksums(conn), tree: await describeTree(spool, (p) => p.startsWith('log')) };
    // Let the agent hear the primary (a heartbeat) over a second after the last commit, and record
    // it caught up, before the "primary dies": the loss window then closes by that record.
    const lastCommitAtMs = Date.now();
    await waitFor('a heartbeat heard after the last commit', async () => {
      const heard = await readLastHeard(archive);
      return heard?.caughtUp === true && heard.atMs > lastCommitAtMs + 1_500;
    }, 30_000, 50);
    await agent.stop();
  }, 240_000);

  afterAll(async () => {
    await conn?.end();
    await standbyConn?.end();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it("status shows each spool source's last change and when the primary was last heard", async () => {
    const { stdout } = await execFileAsync('node', [BIN, 'status', '--archive', archive, '--json']);
    const status = JSON.parse(stdout) as { spool: Array<{ name: string; path: string; lastChange: string }>; lastHeard: { at: string; caughtUp: boolean } };
    expect(status.spool).toEqual([{ name: 'gateway', path: spool, lastChange: expect.stringMatching(/^\d{4}-/) as string }]);
    expect(Date.parse(status.spool[0]?.lastChange ?? '')).toBeGreaterThan(instant.atMs);
    expect(status.lastHeard).toMatchObject({ at: (await readLastHeard(archive))?.at, caughtUp: true });
    const text = await execFileAsync('node', [BIN, 'status', '--archive', archive]);
    expect(text.stdout).toMatch(/gateway \(.*\): last change \d{4}-/);
    expect(text.stdout).toMatch(/last heard from the primary: \d{4}-.*archive caught up/);
  });

  it('a flipped byte in a spool pack: verify names the source, and a file restore refuses the block', async () => {
    const ok = await execFileAsync('node', [BIN, 'verify', '--archive', archive]);
    expect(ok.stdout).toMatch(/spool gateway: \d+ blocks verified/);
    expect(ok.stdout).toMatch(/verify: intact/);
    const copy = join(work, 'archive-flipped-pack');
    cpSync(archive, copy, { recursive: true });
    // Flip a byte of a block the newest tree uses: server.cfg never changed after the start.
    const [meta] = await listSpoolSources(copy);
    const { tree } = await spoolTreeAt(copy, meta as SourceMeta, undefined, silentLogger());
    const entry = tree.get('server.cfg');
    if (entry?.kind !== 'file') throw new Error('server.cfg is not in the archived tree');
    const [, pack, offset] = entry.blocks[0] as [string, number, number];
    const packFile = join(copy, packPath('gateway', pack));
    const bytes = readFileSync(packFile);
    bytes[offset] = (bytes[offset] ?? 0) ^ 0xff;
    writeFileSync(packFile, bytes);
    const damaged = await execFileAsync('node', [BIN, 'verify', '--archive', copy]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(damaged.code).toBe(1);
    expect(damaged.stdout).toMatch(/spool gateway: DAMAGED/);
    expect(damaged.stdout).toMatch(/verify: DAMAGED spool data/);
    expect(await restoreSpool({ archiveDir: copy, filesRoot: join(work, 'from-damaged'), logger: silentLogger() })).toMatchObject([{ name: 'gateway', skipCode: 'SPOOL_DATA_DAMAGED' }]);
    // The standby is promoted all the same (the files are reported, not the database held back).
    const promoted = await execFileAsync('node', [BIN, 'promote', '--archive', copy, '--target', targetUrl(), '--replace', '--files-root', join(work, 'promoted-damaged')]).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (err: { code: number; stdout: string; stderr: string }) => err,
    );
    expect(promoted.code).toBe(1);
    expect(promoted.stdout).toMatch(/files NOT restored: gateway/);
    expect(promoted.stderr).toMatch(/SPOOL_NOT_RESTORED/);
    expect(await tableChecksums(standbyConn)).toEqual(final.sums);
    const [[ro]] = (await standbyConn.query('SELECT @@read_only AS ro')) as [RowDataPacket[], unknown];
    expect(Number(ro?.['ro'])).toBe(0);
    // The standby empty again, and no hook output, for the tests that follow (they promote
    // without --replace and read the hook's first line).
    rmSync(join(work, 'hook.out'), { force: true });
    const [dbs] = (await standbyConn.query('SHOW DATABASES')) as [RowDataPacket[], unknown];
    for (const name of dbs.map((r) => String(Object.values(r)[0])).filter((n) => !['information_schema', 'mysql', 'performance_schema', 'sys', 'test'].includes(n))) {
      await standbyConn.query(`DROP DATABASE \`${name}\``);
    }
  });

  it('--dry-run plans the file restore and the hooks and changes nothing', async () => {
    const root = join(work, 'dry');
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--files-root', root, '--dry-run', '--json']);
    const report = JSON.parse(stdout) as Report;
    expect(report.steps.find((s) => s.name === 'restore-spool-files')).toMatchObject({ run: true });
    // The commands, from the archive, are shown before anything runs them.
    expect(report.steps.find((s) => s.name === 'run-hooks')).toMatchObject({ run: true, detail: expect.stringContaining(JSON.stringify(hook)) });
    expect(report.filesRestored).toEqual([]);
    expect(existsSync(root)).toBe(false);
    expect(existsSync(join(work, 'hook.out'))).toBe(false);
  });

  it("a standby where BLAKE3's module does not load: the plan leaves the source as it is, and verify says what it could not check", async () => {
    const env = { ...process.env, HOTSPARE_BLAKE3: 'off' };
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--files-root', join(work, 'no-blake3'), '--dry-run', '--json'], { env });
    const report = JSON.parse(stdout) as { steps: Array<{ name: string; detail?: string }> };
    expect(report.steps.find((s) => s.name === 'restore-spool-files')?.detail).toMatch(/gateway left as it is \(.*BLAKE3/);
    const verified = await execFileAsync('node', [BIN, 'verify', '--archive', archive], { env }).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(verified.code).toBe(1);
    expect(verified.stdout).toMatch(/spool gateway: 0 blocks verified, \d+ NOT CHECKED/);
    expect(verified.stdout).toMatch(/verify: NOT VERIFIED: \d+ spool blocks could not be checked here \(named by BLAKE3, and HOTSPARE_BLAKE3=off is set; hint: unset HOTSPARE_BLAKE3/);
    const json = await execFileAsync('node', [BIN, 'verify', '--archive', archive, '--json'], { env }).then(
      () => ({ stdout: '' }),
      (err: { stdout: string }) => err,
    );
    const checked = JSON.parse(json.stdout) as { intact: boolean; spoolUnchecked: number; spoolChecks: Array<{ source: string; problems: string[]; unchecked: number; blocks: number }> };
    expect(checked.intact).toBe(false);
    expect(checked.spoolChecks).toEqual([expect.objectContaining({ source: 'gateway', problems: [], unchecked: checked.spoolUnchecked })]);
    expect(checked.spoolUnchecked).toBeGreaterThan(0);
  });

  it('--until an instant: the tables and the spool tree are exactly as they were then, and the hook sees that point', async () => {
    const root = join(work, 'at-instant');
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--until', new Date(instant.atMs).toISOString(), '--files-root', root, '--json']);
    const report = JSON.parse(stdout) as Report;
    expect(instant.sums).not.toEqual(final.sums);
    expect(treeDiff(instant.tree, final.tree)).not.toEqual([]);
    expect(await tableChecksums(standbyConn)).toEqual(instant.sums);
    expect(treeDiff(instant.tree, await describeTree(join(root, 'gateway')))).toEqual([]);
    expect(report.filesRestored).toMatchObject([{ name: 'gateway', path: join(root, 'gateway') }]);
    expect(report.hooks).toEqual([expect.objectContaining({ source: 'gateway', exitCode: 0 })]);
    const [line] = readFileSync(join(work, 'hook.out'), 'utf8').trim().split('\n');
    // The files' point is the end of the instant's second, as the database's (binlog times are whole seconds).
    expect(line?.split('|').slice(0, 3)).toEqual([new Date(Math.floor(instant.atMs / 1000) * 1000 + 999).toISOString(), join(root, 'gateway'), instant.seqno]);
    // The text report says why it counts no loss window: a point in time was asked for.
    const plan = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--replace', '--dry-run', '--until', new Date(instant.atMs).toISOString()]);
    expect(plan.stdout).toMatch(/^ {2}loss window: +none counted: a point in time was asked for/m);
  });

  it('to the end: everything the primary had, with the loss window closed by the last heartbeat heard', async () => {
    const root = join(work, 'at-end');
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--replace', '--files-root', root, '--json']);
    const report = JSON.parse(stdout) as Report;
    expect(await tableChecksums(standbyConn)).toEqual(final.sums);
    expect(treeDiff(final.tree, await describeTree(join(root, 'gateway')))).toEqual([]);
    const heard = await readLastHeard(archive);
    expect(heard?.caughtUp).toBe(true);
    expect(report.lastHeard).toEqual({ time: heard?.at, source: 'state/last-heard.json', caughtUp: true });
    expect(report.lossWindowSeconds).toBe(0);
    // Heard after the last commit: the heartbeats kept coming while the primary was idle.
    expect(Date.parse(report.lastHeard?.time ?? '')).toBeGreaterThan(Date.parse(report.lastTransaction?.commitTime ?? '') + 1000);
    const [[ro]] = (await standbyConn.query('SELECT @@read_only AS ro')) as [RowDataPacket[], unknown];
    expect(Number(ro?.['ro'])).toBe(0);
  });

  it('--files-only: the spool files alone, as of the same points, with no database touched and no hook run', async () => {
    const sumsBefore = await tableChecksums(standbyConn);
    const hookLinesBefore = existsSync(join(work, 'hook.out')) ? readFileSync(join(work, 'hook.out'), 'utf8') : '';
    const atEnd = join(work, 'files-only-end');
    const end = await execFileAsync('node', [BIN, 'promote', '--files-only', '--archive', archive, '--files-root', atEnd]);
    expect(end.stdout).toMatch(/^spool files restored \(no database touched, no hook run\)$/m);
    expect(end.stdout).toMatch(/^ {2}hooks: +not run \(--files-only\): gateway: /m);
    expect(treeDiff(final.tree, await describeTree(join(atEnd, 'gateway')))).toEqual([]);
    const atInstant = join(work, 'files-only-instant');
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--files-only', '--archive', archive, '--until', new Date(instant.atMs).toISOString(), '--files-root', atInstant, '--json']);
    const report = JSON.parse(stdout) as { filesRestored: Array<{ name: string; path: string; pointMs: number }> };
    expect(report.filesRestored).toMatchObject([{ name: 'gateway', path: join(atInstant, 'gateway') }]);
    expect(treeDiff(instant.tree, await describeTree(join(atInstant, 'gateway')))).toEqual([]);
    // Nothing else happened: the standby's tables and the hook's record are as they were.
    expect(await tableChecksums(standbyConn)).toEqual(sumsBefore);
    expect(existsSync(join(work, 'hook.out')) ? readFileSync(join(work, 'hook.out'), 'utf8') : '').toBe(hookLinesBefore);
    // A database option with --files-only is a usage error (exit 2), not silently ignored.
    const mixed = await execFileAsync('node', [BIN, 'promote', '--files-only', '--archive', archive, '--target', targetUrl()]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('--files-only restores no database: leave out --target');
    // In place (no --files-root) only the sources named: a live application's folder is replaced.
    const unnamed = await execFileAsync('node', [BIN, 'promote', '--files-only', '--archive', archive]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(unnamed.code).toBe(2);
    expect(unnamed.stderr).toContain('name the sources to replace with --source NAME');
    const unknown = await execFileAsync('node', [BIN, 'promote', '--files-only', '--archive', archive, '--source', 'nope', '--files-root', join(work, 'files-only-unknown')]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('error SPOOL_SOURCE_UNKNOWN');
    const named = join(work, 'files-only-named');
    await execFileAsync('node', [BIN, 'promote', '--files-only', '--archive', archive, '--source', 'gateway', '--files-root', named]);
    expect(treeDiff(final.tree, await describeTree(join(named, 'gateway')))).toEqual([]);
  });

  it('--until after the last commit but not after the primary was last heard: the end; later than that: refused', async () => {
    const heard = await readLastHeard(archive);
    expect(heard?.caughtUp).toBe(true);
    // A second before the agent last heard the primary: that second had ended by then.
    const atMs = (heard?.atMs ?? 0) - 1000;
    const root = join(work, 'idle-tail');
    await divergeStandby(standbyConn, final.sums);
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--replace', '--until', new Date(atMs).toISOString(), '--files-root', root, '--json']);
    const report = JSON.parse(stdout) as Report;
    // The primary was idle after its last commit, and the archive knew it: the whole archive.
    expect(Date.parse(report.lastTransaction?.commitTime ?? '')).toBeLessThan(atMs - 1000);
    expect(await tableChecksums(standbyConn)).toEqual(final.sums);
    expect(treeDiff(final.tree, await describeTree(join(root, 'gateway')))).toEqual([]);
    // Within the second the agent last heard in: a commit later in that second would count, and it is unknown.
    const later = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--replace', '--until', new Date(heard?.atMs ?? 0).toISOString()]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(later.code).toBe(1);
    expect(later.stderr).toContain('error POINT_UNREACHABLE');
    expect(later.stderr).toContain(`the primary was last heard at ${heard?.at}`);
  });

  it('a failing hook: the server is promoted, and promote exits 1 with HOOK_FAILED', async () => {
    await divergeStandby(standbyConn, final.sums);
    writeFileSync(join(work, 'fail-hook'), '');
    const result = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--replace', '--files-root', join(work, 'failing')]).then(
      () => ({ code: 0, stderr: '', stdout: '' }),
      (err: { code: number; stderr: string; stdout: string }) => err,
    );
    unlinkSync(join(work, 'fail-hook'));
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/error HOOK_FAILED: .*gateway/);
    expect(result.stdout).toMatch(/hook: +gateway: .* -> FAILED \(exit 1\)/);
    expect(await tableChecksums(standbyConn)).toEqual(final.sums);
  });

  it('--no-hooks: everything restored, no hook run (a rehearsal into a scratch server must not start the gateway)', async () => {
    await divergeStandby(standbyConn, final.sums);
    const hookBefore = existsSync(join(work, 'hook.out')) ? readFileSync(join(work, 'hook.out'), 'utf8') : '';
    // The failing hook is armed: run, it would make promote exit 1.
    writeFileSync(join(work, 'fail-hook'), '');
    const root = join(work, 'no-hooks');
    try {
      const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', targetUrl(), '--replace', '--files-root', root, '--no-hooks', '--json']);
      const report = JSON.parse(stdout) as Report & { steps: Array<{ name: string; run: boolean; detail: string }> };
      expect(report.hooks).toEqual([]);
      expect(report.steps.find((s) => s.name === 'run-hooks')).toMatchObject({ run: false, detail: expect.stringContaining('NOT run (--no-hooks)') });
    } finally {
      unlinkSync(join(work, 'fail-hook'));
    }
    expect(await tableChecksums(standbyConn)).toEqual(final.sums);
    expect(treeDiff(final.tree, await describeTree(join(root, 'gateway')))).toEqual([]);
    expect(existsSync(join(work, 'hook.out')) ? readFileSync(join(work, 'hook.out'), 'utf8') : '').toBe(hookBefore);
  });
});
