import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareBinlogNames } from '../../src/archive/archive-layout.js';
import { listBaseBackups } from '../../src/archive/base-catalog.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import type { RecordedGap } from '../../src/archive/binlog-gaps.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { createWorkloadSchema, workloadStep } from '../../src/sandbox/write-workload.js';
import type { TargetSpec } from '../../src/standby/stop-point.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { promoteInto as promoteSandbox } from '../support/promote-into.js';
import { primaryHead, purgeBinlogsTo } from '../support/primary-head.js';

const execFileAsync = promisify(execFile);
const BIN = new URL('../../bin/hotspare.js', import.meta.url).pathname;

/** Waits for the next whole second plus `offsetMs`, so that event times (seconds) separate cleanly. */
async function nextSecond(offsetMs: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + offsetMs));
}

/**
 * Goal: after the primary purged binlog the archive needed (BINLOG_PURGED), the agent takes a
 * new base by itself and restarts the archive's chain at that base's file, recording the gap;
 * status and verify report it; promotion from the new base gives the primary's CHECKSUM TABLE;
 * a point before or inside the gap is refused, never reached by replaying across it.
 * Method: real primary and standby servers, the real agent process, real PURGE BINARY LOGS.
 */
describe('binlog gap: the archive restarts its chain at a new base', () => {
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let conn: Connection;
  let standbyConn: Connection;
  let archive: string;
  let config: string;
  let agent: HotspareProcess | undefined;
  let firstChainMs: number;
  let insideGapMs: number;
  let gapLog: Record<string, unknown> | undefined;
  let lastBeforeGap: string;
  let expectedEnd: Record<string, string>;

  const promoteInto = (target: TargetSpec) => promoteSandbox(standby, archive, target);

  const caughtUp = async (): Promise<void> => {
    const end = await primaryHead(conn);
    const path = join(archive, 'binlog', end.file);
    await waitFor(`the archive to reach ${end.file}:${end.position}`, () => existsSync(path) && statSync(path).size >= end.position, 120_000);
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-gap-'));
    primary = await MariadbServer.start({ serverId: 41, binlog: true, baseDir: join(dir, 'primary') });
    standby = await MariadbServer.start({ serverId: 42, binlog: false, baseDir: join(dir, 'standby'), extraArgs: ['--read-only=ON'] });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await createWorkloadSchema(conn);
    for (let n = 0; n < 30; n += 1) await workloadStep(conn, n, { blobBytes: 64 * 1024 });
    archive = join(dir, 'archive');
    config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);

    // 1. The agent archives the first chain.
    agent = new HotspareProcess(['agent', '--config', config]);
    await waitFor('the agent to stream', () => agent?.stderr.includes('streaming binlog to replica') === true, 120_000);
    for (let n = 30; n < 50; n += 1) await workloadStep(conn, n, { blobBytes: 64 * 1024 });
    // An instant of the first chain, with commits after it.
    await nextSecond(100);
    firstChainMs = Date.now();
    await nextSecond(100);
    for (let n = 50; n < 80; n += 1) await workloadStep(conn, n, { blobBytes: 64 * 1024 });
    await caughtUp();
    lastBeforeGap = readdirSync(join(archive, 'binlog')).sort(compareBinlogNames).at(-1) ?? '';
    expect(await agent.kill('SIGTERM')).toBe(0);
    agent = undefined;

    // 2. While it is stopped the primary writes, rotates and purges what the archive needs.
    await waitFor('the old dump thread to end', async () => {
      const [threads] = await conn.query<RowDataPacket[]>("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'");
      return threads.length === 0;
    });
    await conn.query("INSERT INTO app.orders (customer, amount) VALUES ('lost in the gap', 1)");
    await conn.query('FLUSH BINARY LOGS');
    insideGapMs = Date.now();
    await nextSecond(100);
    await conn.query("INSERT INTO app.orders (customer, amount) VALUES ('also in the gap', 2)");
    await conn.query('FLUSH BINARY LOGS');
    const newest = (await primaryHead(conn)).file;
    await purgeBinlogsTo(conn, newest);

    // 3. The agent meets BINLOG_PURGED, takes a new base and restarts the chain there.
    agent = new HotspareProcess(['agent', '--config', config]);
    await waitFor('the gap to be recorded', () => agent?.logs().some((l) => l['code'] === 'BINLOG_GAP_RECORDED') === true, 120_000);
    gapLog = agent.logs().find((l) => l['code'] === 'BINLOG_GAP_RECORDED');
    for (let n = 80; n < 140; n += 1) await workloadStep(conn, n, { blobBytes: 64 * 1024 });
    await caughtUp();
    expectedEnd = await tableChecksums(conn);
    expect(await agent.kill('SIGTERM')).toBe(0);
    agent = undefined;
  }, 400_000);

  afterAll(async () => {
    await agent?.kill('SIGKILL');
    await conn?.end();
    await standbyConn?.end();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('records the gap durably, logs it at warn, and restarts the chain at the new base file', async () => {
    const bases = await listBaseBackups(new LocalArchiveFiles(archive));
    expect(bases).toHaveLength(2);
    const fresh = bases[1];
    const { gaps } = JSON.parse(readFileSync(join(archive, 'state', 'gaps.json'), 'utf8')) as { gaps: RecordedGap[] };
    expect(gaps).toHaveLength(1);
    expect(gaps[0]?.after.file).toBe(lastBeforeGap);
    expect(gaps[0]?.resumeAt).toEqual({ file: fresh?.binlog.file, position: 4 });
    expect(gaps[0]?.base).toBe(fresh?.id);
    const names = readdirSync(join(archive, 'binlog')).sort(compareBinlogNames);
    expect(names).toContain(lastBeforeGap);
    expect(names).toContain(fresh?.binlog.file);
    // The files the primary purged are not in the archive, and nothing was invented for them.
    expect(names.filter((n) => compareBinlogNames(n, lastBeforeGap) > 0 && compareBinlogNames(n, fresh?.binlog.file ?? '') < 0)).toEqual([]);
    // Loud: at warn, with both ends of the gap.
    expect(gapLog?.['level']).toBe(40);
    expect(String(gapLog?.['msg'])).toContain(`restarts at ${fresh?.binlog.file}:4 from base ${fresh?.id}`);
  });

  it('status and verify report the gap; the archive is intact', async () => {
    const verify = await execFileAsync('node', [BIN, 'verify', '--archive', archive, '--json']);
    const report = JSON.parse(verify.stdout) as { intact: boolean; recordedGaps: RecordedGap[]; bases: Array<{ restorable: boolean; beforeGap: boolean }>; binlog: { first: { file: string } } };
    expect(report.intact).toBe(true);
    expect(report.recordedGaps).toHaveLength(1);
    expect(report.bases.map((b) => [b.restorable, b.beforeGap])).toEqual([
      [false, true],
      [true, false],
    ]);
    expect(report.binlog.first.file).toBe(report.recordedGaps[0]?.resumeAt.file);
    const status = await execFileAsync('node', [BIN, 'status', '--archive', archive]);
    expect(status.stdout).toMatch(/recorded gaps: 1 /);
    expect(status.stdout).toContain(`${report.recordedGaps[0]?.after.file}:${report.recordedGaps[0]?.after.position} .. ${report.recordedGaps[0]?.resumeAt.file}:4`);
    // The summary agrees with the list below it (it said "none" above "recorded gaps: 1").
    expect(status.stdout).toMatch(/gaps\/damage: 1 recorded gap \(below\), no damage\n/);
  });

  it('promotes from the new base to the end: every table equals the primary', async () => {
    const bases = await listBaseBackups(new LocalArchiveFiles(archive));
    const plan = await promoteInto({ kind: 'end' });
    expect(plan.base.id).toBe(bases[1]?.id);
    expect(plan.replay.every((r) => compareBinlogNames(r.file, bases[1]?.binlog.file ?? '') >= 0)).toBe(true);
    expect(await tableChecksums(standbyConn)).toEqual(expectedEnd);
  });

  it('refuses a point inside the gap and a point before it, and changes nothing on the target', async () => {
    const before = await tableChecksums(standbyConn);
    await expect(promoteInto({ kind: 'time', atMs: insideGapMs })).rejects.toMatchObject({ code: 'POINT_UNREACHABLE', message: expect.stringContaining('falls inside the binlog gap') });
    await expect(promoteInto({ kind: 'time', atMs: firstChainMs })).rejects.toMatchObject({ code: 'POINT_UNREACHABLE', message: expect.stringContaining('lies before the binlog gap') });
    expect(await tableChecksums(standbyConn)).toEqual(before);
  });

  // Last: it resets the primary's binlog.
  it('RESET MASTER on the primary (names start again): BINLOG_GAP at once; no base taken, no gap recorded, the archive unchanged', async () => {
    const files = new LocalArchiveFiles(archive);
    const basesBefore = (await listBaseBackups(files)).map((b) => b.id);
    const gapsBefore = readFileSync(join(archive, 'state', 'gaps.json'), 'utf8');
    const namesBefore = readdirSync(join(archive, 'binlog')).sort(compareBinlogNames);
    await waitFor('the old dump thread to end', async () => {
      const [threads] = await conn.query<RowDataPacket[]>("SELECT id FROM information_schema.processlist WHERE command LIKE 'Binlog Dump%'");
      return threads.length === 0;
    });
    await conn.query('RESET MASTER');
    await conn.query("INSERT INTO app.orders (customer, amount) VALUES ('after the reset', 1)");
    agent = new HotspareProcess(['agent', '--config', config]);
    const failure = await waitFor('BINLOG_GAP', () => agent?.logs().find((l) => l['code'] === 'BINLOG_GAP'), 120_000);
    expect(String(failure['msg'] ?? failure['message'] ?? JSON.stringify(failure))).toContain('names started again');
    expect(await agent.kill('SIGTERM')).toBe(0);
    agent = undefined;
    // Before: a base of the new timeline and a gap into an archived name were written on every
    // retry, and the writer then refused the name (the archive mixed two timelines' bases).
    expect((await listBaseBackups(files)).map((b) => b.id)).toEqual(basesBefore);
    expect(readFileSync(join(archive, 'state', 'gaps.json'), 'utf8')).toBe(gapsBefore);
    expect(readdirSync(join(archive, 'binlog')).sort(compareBinlogNames)).toEqual(namesBefore);
    // Nor by hand: a base of the new timeline would be restored with the old one's binlog of the same names.
    const byHand = await execFileAsync('node', [BIN, 'base', '--config', config]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(byHand.code).toBe(1);
    expect(byHand.stderr).toContain('error BINLOG_GAP');
    expect(byHand.stderr).toContain('names started again');
    expect((await listBaseBackups(files)).map((b) => b.id)).toEqual(basesBefore);
  });
});
