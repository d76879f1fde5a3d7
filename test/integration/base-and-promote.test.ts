import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection, type Connection, type RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareBinlogNames } from '../../src/archive/archive-layout.js';
import { listBaseBackups } from '../../src/archive/base-catalog.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { settingsRecordPath } from '../../src/standby/promote-settings.js';
import { loadAgentConfig } from '../../src/config/load.js';
import { HotspareError } from '../../src/core/errors.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { WorkloadRunner, createWorkloadSchema, workloadStep } from '../../src/sandbox/write-workload.js';
import { promote, type PromoteOptions } from '../../src/standby/promote.js';
import { formatReport } from '../../src/cmd/promote.js';
import type { TargetSpec } from '../../src/standby/stop-point.js';
import { captureLogger } from '../support/capture-logger.js';
import { trackChild } from '../support/live-children.js';
import { takeBaseBackup } from '../../src/primary/base/take-base-backup.js';
import { inspectArchive } from '../../src/standby/verify-archive.js';
import { replayBinlog } from '../../src/standby/binlog-replay.js';
import { TargetServer } from '../../src/standby/target-server.js';
import { promoteInto as promoteSandbox } from '../support/promote-into.js';
import { nextSecond, waitFor } from '../support/wait.js';
import { primaryHead, settleBinlog } from '../support/primary-head.js';

const execFileAsync = promisify(execFile);
const BIN = new URL('../../bin/hotspare.js', import.meta.url).pathname;

/**
 * A command (`promote`, say) started as its own process, resolved once its stderr holds `line`
 * (its exit before that rejects, with what it said): a signal or a change sent then lands at a
 * known step. `stderr()` is all it has said so far.
 */
async function startUntil(command: string, args: string[], line: string): Promise<{ child: ChildProcess; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>; stderr: () => string }> {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  let stderr = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  await new Promise<void>((resolve, reject) => {
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes(line)) resolve();
    });
    void exited.then(() => reject(new Error(`${command} ended before "${line}": ${stderr.slice(-2000)}`)));
  });
  return { child, exited, stderr: () => stderr };
}

describe('base backup and promotion to any point', () => {
  let primary: MariadbServer;
  let standby: MariadbServer;
  let work: string;
  let archive: string;
  let primaryConn: Connection;
  let standbyConn: Connection;
  const sums: Record<'instant' | 'beforeLast' | 'end', Record<string, string>> = { instant: {}, beforeLast: {}, end: {} };
  let instant: { atMs: number; file: string; position: number; gtid: string };
  let lastTrxStart: { file: string; position: number };
  let lastTrxEnd: Awaited<ReturnType<typeof primaryHead>>;

  const promoteInto = (target: TargetSpec, archiveRoot = archive, extra: Partial<PromoteOptions> = {}) => promoteSandbox(standby, archiveRoot, target, extra);

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hotspare-promote-'));
    archive = join(work, 'archive');
    primary = await MariadbServer.start({ serverId: 1, binlog: true });
    standby = await MariadbServer.start({ serverId: 2, binlog: false, extraArgs: ['--read-only=ON'] });
    primaryConn = await primary.connect();
    standbyConn = await standby.connect();
    await createWorkloadSchema(primaryConn);
    // Some history before the agent (and so the base) starts; the base is taken while writes run.
    for (let n = 0; n < 40; n += 1) await workloadStep(primaryConn, n, { blobBytes: 2 * 1024 * 1024 });
    // An application account made before the base, changed after it: the replay's GRANT and
    // ALTER USER must find it on the standby.
    await primaryConn.query("CREATE USER 'reader'@'%' IDENTIFIED BY 'first'");
    // An empty database, as the `test` that mariadb-install-db makes on primary and standby alike.
    await primaryConn.query('CREATE DATABASE test_empty');
    await primaryConn.query('CREATE ROLE auditor');
    await primaryConn.query('GRANT SELECT ON app.orders TO auditor');
    writeFileSync(
      join(work, 'agent.json'),
      JSON.stringify({ primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 }, stateDir: join(work, 'state'), replicas: [{ name: 'a', type: 'file', path: archive }] }),
    );
    const config = loadAgentConfig(join(work, 'agent.json'));
    const identity = await SyncAgent.preflight(config);
    const agent = new SyncAgent(config, identity, { logger: silentLogger(), clock: systemClock, random01: () => 0.5 });
    const fastRunner = new WorkloadRunner(primaryConn, { blobBytes: 2 * 1024 * 1024, firstStep: 40 });
    fastRunner.start();
    agent.start();
    const files = new LocalArchiveFiles(archive);
    await waitFor('the base backup', async () => (await listBaseBackups(files)).length > 0);
    await waitFor('writes after the base', async () => fastRunner.steps > 200);
    await primaryConn.query("GRANT SELECT ON app.* TO 'reader'@'%'");
    await primaryConn.query("GRANT auditor TO 'reader'@'%'");
    await primaryConn.query("ALTER USER 'reader'@'%' IDENTIFIED BY 'second'");

    // The instant: no commit in its second, so "committed at or before" is exact at second precision.
    await fastRunner.pause();
    await nextSecond(100);
    sums.instant = await tableChecksums(primaryConn);
    instant = { atMs: Date.now(), ...(await primaryHead(primaryConn)) };
    await nextSecond(50);
    fastRunner.resume();
    const resumedAt = fastRunner.steps;
    await waitFor('writes after the instant', async () => fastRunner.steps > resumedAt + 150);
    await fastRunner.stop();

    // The last transaction: several events (InnoDB only: a MyISAM change would be its own group), alone at the tail
    // of a file that holds another transaction before it, and followed by nothing the server writes on its own.
    await settleBinlog(primaryConn, "INSERT INTO app.orders (customer, amount) VALUES ('primer', 1)");
    sums.beforeLast = await tableChecksums(primaryConn);
    lastTrxStart = await primaryHead(primaryConn);
    await primaryConn.query('START TRANSACTION');
    await primaryConn.query("INSERT INTO app.orders (customer, amount) VALUES ('last', 1), ('last', 2)");
    await primaryConn.query("UPDATE app.orders SET amount = amount * 2 WHERE id < 100");
    await primaryConn.query('COMMIT');
    sums.end = await tableChecksums(primaryConn);
    const end = await primaryHead(primaryConn);
    lastTrxEnd = end;
    await waitFor('the archive to catch up', async () => {
      const durable = agent.trackers[0]?.snapshot.durable;
      return durable !== undefined && compareBinlogPositions(durable, end) >= 0;
    });
    expect(statSync(join(archive, 'binlog', end.file)).size).toBe(end.position);
    await agent.stop();
  }, 240_000);

  afterAll(async () => {
    await primaryConn?.end();
    await standbyConn?.end();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('archives several binlog files and an exact base; verify says intact', async () => {
    const names = readdirSync(join(archive, 'binlog')).sort(compareBinlogNames);
    expect(names.length).toBeGreaterThanOrEqual(3);
    const [base] = await listBaseBackups(new LocalArchiveFiles(archive));
    expect(base?.files.map((f) => f.name)).toEqual(['schema.sql.gz', 'accounts.sql.gz', 'data-1.sql.gz', 'data-2.sql.gz', 'triggers.sql.gz']);
    expect(base?.tables.find((t) => t.name === 'feed_1')?.consistency).toBe('locked');
    expect(base?.tables.find((t) => t.name === 'orders')?.consistency).toBe('snapshot');
    // The archive keeps whole files from the one holding the base coordinates.
    expect(names[0]).toBe(base?.binlog.file);
    const { stdout } = await execFileAsync('node', [BIN, 'verify', '--archive', archive, '--json']);
    const report = JSON.parse(stdout) as { intact: boolean; latestRestorable: { file: string; position: number }; firstBad: unknown };
    expect(report.intact).toBe(true);
    // Nothing is bad, and the key says so (null), for scripts that read it.
    expect(report).toHaveProperty('firstBad', null);
    expect(report.latestRestorable).toMatchObject({ file: names[names.length - 1] });
  });

  it('promotes to the end of the archive: every table equals the primary, and the server is writable', async () => {
    // Sampled from a session of its own while the promotion runs: the target is read-only during
    // the restore (applications write nothing into a half-restored database), writable after.
    const sampler = await standby.connect();
    // (Writable before, as a standby an operator runs writable would be.)
    await sampler.query('SET GLOBAL read_only = OFF');
    // A fresh install's empty database, which the base holds too: promoted over without --replace.
    await sampler.query('CREATE DATABASE test_empty');
    const readOnlySeen = new Set<number>();
    let promoting = true;
    const sampling = (async () => {
      while (promoting) {
        const [[row]] = (await sampler.query('SELECT @@global.read_only AS ro')) as [RowDataPacket[], unknown];
        readOnlySeen.add(Number(row?.['ro']));
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    const { stdout } = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--json']).finally(() => {
      promoting = false;
    });
    await sampling;
    await sampler.end();
    expect([...readOnlySeen].sort()).toEqual([0, 1]);
    const report = JSON.parse(stdout) as { lastTransaction: { file: string; position: number; gtid: string }; lossWindowSeconds: number; replay: unknown[] };
    expect(await tableChecksums(standbyConn)).toEqual(sums.end);
    expect(report.replay.length).toBeGreaterThan(0);
    expect(report.lastTransaction).toMatchObject({ file: lastTrxEnd.file, position: lastTrxEnd.position, gtid: lastTrxEnd.gtid });
    expect(report.lossWindowSeconds).toBe(0);
    const [[ro]] = (await standbyConn.query('SELECT @@read_only AS ro, @@global.innodb_flush_log_at_trx_commit AS f')) as [RowDataPacket[], unknown];
    expect(Number(ro?.['ro'])).toBe(0);
    // The replay ran with innodb_flush_log_at_trx_commit=2; the setting is back.
    expect(Number(ro?.['f'])).toBe(1);
    // The account came with the base and the replay changed it: its grants and new password.
    const [grants] = (await standbyConn.query("SHOW GRANTS FOR 'reader'@'%'")) as [RowDataPacket[], unknown];
    const lines = grants.map((g) => String(Object.values(g)[0]));
    expect(lines).toContain('GRANT SELECT ON `app`.* TO `reader`@`%`');
    expect(lines).toContain('GRANT `auditor` TO `reader`@`%`');
    const reader = await createConnection({ socketPath: standby.socketPath, user: 'reader', password: 'second' });
    await reader.end();
  });

  it('replay relaxes the per-commit redo flush and puts it back durable; an operator\'s own setting is kept', async () => {
    const server = await TargetServer.connect({ socketPath: standby.socketPath, user: 'root', password: '' }, 'the standby');
    const setting = async (): Promise<number> => Number(((await standbyConn.query('SELECT @@global.innodb_flush_log_at_trx_commit AS f')) as [RowDataPacket[], unknown])[0][0]?.['f']);
    const lsn = async (name: string): Promise<bigint> => BigInt(String(((await standbyConn.query(`SHOW GLOBAL STATUS LIKE '${name}'`)) as [RowDataPacket[], unknown])[0][0]?.['Value']));
    try {
      const relaxed = await server.relaxCommitFlush();
      expect(relaxed.was).toBe(1);
      expect(await setting()).toBe(2);
      await standbyConn.query("INSERT INTO app.orders (customer, amount) VALUES ('relaxed', 1)");
      const written = await lsn('Innodb_lsn_current');
      await relaxed.restore();
      expect(await setting()).toBe(1);
      expect(await lsn('Innodb_lsn_flushed')).toBeGreaterThanOrEqual(written);

      await standbyConn.query('SET GLOBAL innodb_flush_log_at_trx_commit = 0');
      const kept = await server.relaxCommitFlush();
      expect(kept.was).toBe(0);
      await kept.restore();
      expect(await setting()).toBe(0);
    } finally {
      await standbyConn.query('SET GLOBAL innodb_flush_log_at_trx_commit = 1');
      await server.close();
    }
  });

  it('promotes to a point in time, a position and a GTID: exactly the checksums of that instant', async () => {
    await promoteInto({ kind: 'time', atMs: instant.atMs });
    expect(await tableChecksums(standbyConn)).toEqual(sums.instant);
    await promoteInto({ kind: 'position', at: { file: instant.file, position: instant.position } });
    expect(await tableChecksums(standbyConn)).toEqual(sums.instant);
    const gtid = instant.gtid.split(',').find((g) => g.startsWith('0-')) ?? instant.gtid;
    const plan = await promoteInto({ kind: 'gtid', gtid });
    expect(await tableChecksums(standbyConn)).toEqual(sums.instant);
    expect(plan.lastTransaction?.gtid).toBe(gtid);
    expect(sums.instant).not.toEqual(sums.end);
  });

  /**
   * The agent's record as it stood when the stream had brought the archive `durableTo`, inside the
   * last transaction (the primary died then): the last boundary held is that transaction's start,
   * and the archive held everything received. (The agent's own record names the transaction's
   * end, which this copy no longer holds: a tail cut off, damage; see promote-past-damage.)
   */
  const heardInsideLastTransaction = (copy: string, durableTo: number): void => {
    const path = join(copy, 'state', 'last-heard.json');
    const record = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const durable = { file: lastTrxStart.file, position: durableTo };
    writeFileSync(path, JSON.stringify({ ...record, primary: durable, durable, boundary: lastTrxStart, caughtUp: true }));
  };

  it('an archive whose tail ends mid-transaction promotes to the last complete one, and counts that transaction lost', async () => {
    const copy = join(work, 'archive-truncated');
    cpSync(archive, copy, { recursive: true });
    const tail = join(copy, 'binlog', lastTrxStart.file);
    truncateSync(tail, lastTrxEnd.position - 10);
    heardInsideLastTransaction(copy, lastTrxEnd.position - 10);
    const plan = await promoteInto({ kind: 'end' }, copy);
    expect(await tableChecksums(standbyConn)).toEqual(sums.beforeLast);
    expect(plan.partialTailCut).toMatchObject({ file: lastTrxStart.file, from: lastTrxStart.position });
    // The primary had written that transaction whole (it writes one at commit): not "held
    // everything", and no loss window of 0 (a rehearsal's 62 MB transaction was reported so).
    expect(plan.lastHeard?.caughtUp).toBe(false);
    expect(plan.lossWindowSeconds).toBeDefined();
    expect(formatReport(plan, false, true)).not.toContain('held everything');
    expect(formatReport(plan, false, true)).toContain('counted as lost');
  });

  it('a tail torn inside the event at the stop point: mariadb-binlog is given only the bytes before it', async () => {
    const copy = join(work, 'archive-torn-event');
    cpSync(archive, copy, { recursive: true });
    const tail = join(copy, 'binlog', lastTrxStart.file);
    // 10 bytes into the transaction's GTID event: mariadb-binlog reads the event at its
    // --stop-position before it stops, and a torn one can fail it (exit 1).
    truncateSync(tail, lastTrxStart.position + 10);
    heardInsideLastTransaction(copy, lastTrxStart.position + 10);
    const plan = await promoteInto({ kind: 'end' }, copy);
    expect(plan.replay[plan.replay.length - 1]).toMatchObject({ file: lastTrxStart.file, stop: lastTrxStart.position, cutAtStop: true });
    expect(await tableChecksums(standbyConn)).toEqual(sums.beforeLast);
    expect(plan.partialTailCut).toMatchObject({ file: lastTrxStart.file, from: lastTrxStart.position, to: lastTrxStart.position + 10 });
  });

  it('a base folder whose metadata.json is gone or torn: verify names it instead of passing over it', async () => {
    const copy = join(work, 'archive-lost-base');
    cpSync(archive, copy, { recursive: true });
    const [base] = await listBaseBackups(new LocalArchiveFiles(copy));
    expect(base).toBeDefined();
    writeFileSync(join(copy, 'base', base?.id ?? '', 'metadata.json'), '{"formatVersion": 1, "id": "');
    const report = await inspectArchive(copy, { checksums: false });
    expect(report.intact).toBe(false);
    expect(report.firstBad).toMatchObject({ file: `base/${base?.id}`, reason: expect.stringContaining('not valid JSON') });
    rmSync(join(copy, 'base', base?.id ?? '', 'metadata.json'));
    expect((await inspectArchive(copy, { checksums: false })).firstBad).toMatchObject({ file: `base/${base?.id}`, reason: expect.stringContaining('missing') });
  });

  it('a flipped byte: verify fails and names it; promote to the end refuses, changing nothing; the point its hint names restores up to it', async () => {
    const copy = join(work, 'archive-flipped');
    cpSync(archive, copy, { recursive: true });
    const path = join(copy, 'binlog', lastTrxStart.file);
    const fd = openSync(path, 'r+');
    const at = lastTrxStart.position + 30;
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x40;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    const verify = await execFileAsync('node', [BIN, 'verify', '--archive', copy]).then(
      () => ({ code: 0, stdout: '' }),
      (err: { code: number; stdout: string }) => err,
    );
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`first bad point ${lastTrxStart.file}:${lastTrxStart.position}`);
    const report = await inspectArchive(copy, { checksums: true });
    expect(report.firstBad).toMatchObject({ kind: 'corrupt', file: lastTrxStart.file, offset: lastTrxStart.position });
    // The end lies past the damage: promoting there would report success without the damaged
    // transaction (a script reading the exit code would not know). Refused before any change.
    const before = await tableChecksums(standbyConn);
    const refused = await promoteInto({ kind: 'end' }, copy).then(
      () => undefined,
      (err: unknown) => err as HotspareError,
    );
    expect(refused?.code).toBe('ARCHIVE_DAMAGED');
    expect(refused?.message).toContain(`${lastTrxStart.file}:${lastTrxStart.position}`);
    expect(await tableChecksums(standbyConn)).toEqual(before);
    // Taking the loss is the operator's choice, with the point the hint names: the last intact transaction.
    const point = /--until-position (\S+):(\d+)/.exec(refused?.hint ?? '');
    expect(point?.[1]).toBe(lastTrxStart.file);
    const plan = await promoteInto({ kind: 'position', at: { file: point?.[1] ?? '', position: Number(point?.[2]) } }, copy);
    expect(plan.stoppedBeforeDamage).toMatchObject({ file: lastTrxStart.file, offset: lastTrxStart.position });
    expect(await tableChecksums(standbyConn)).toEqual(sums.beforeLast);
    // An explicit target past the damage is refused.
    await expect(promoteInto({ kind: 'position', at: { file: lastTrxStart.file, position: lastTrxStart.position + 1000 } }, copy)).rejects.toMatchObject({ code: 'POINT_UNREACHABLE' });
  });

  it('a damaged newest base gives way to an older one: the same end point, reported', async () => {
    const copy = join(work, 'archive-damaged-base');
    cpSync(archive, copy, { recursive: true });
    // A newer base (a copy of the one there, under a later id), one of whose files is damaged.
    const [base] = await listBaseBackups(new LocalArchiveFiles(copy));
    if (base === undefined) throw new Error('the archive has a base');
    const newerId = base.id.replace(/^\d{4}/, '2999');
    const newer = join(copy, 'base', newerId);
    cpSync(join(copy, 'base', base.id), newer, { recursive: true });
    writeFileSync(join(newer, 'metadata.json'), JSON.stringify({ ...JSON.parse(readFileSync(join(newer, 'metadata.json'), 'utf8')), id: newerId }));
    const damaged = join(newer, 'data-1.sql.gz');
    const bytes = readFileSync(damaged);
    bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] ?? 0) ^ 0x01;
    writeFileSync(damaged, bytes);
    expect((await listBaseBackups(new LocalArchiveFiles(copy))).map((b) => b.id)).toEqual([base.id, newerId]);
    // A standby running its event scheduler: off while its data is made the primary's, on again after.
    await standbyConn.query('SET GLOBAL event_scheduler = ON');
    const log = captureLogger();
    const plan = await promoteInto({ kind: 'end' }, copy, { logger: log.logger });
    expect(log.lines().some((l) => l.msg === 'event scheduler off during the restore and replay')).toBe(true);
    const [[scheduler]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e')) as [Array<{ e: string }>, unknown];
    expect(scheduler?.e).toBe('ON');
    await standbyConn.query('SET GLOBAL event_scheduler = OFF');
    expect(plan.base.id).toBe(base.id);
    expect(plan.damagedBases).toHaveLength(1);
    expect(plan.damagedBases[0]).toContain(newerId);
    expect(await tableChecksums(standbyConn)).toEqual(await tableChecksums(primaryConn));
  });

  it('refuses the primary as target, a non-empty target without --replace, and an unreachable point; each target is unchanged', async () => {
    const before = await tableChecksums(standbyConn);
    const primaryBefore = await tableChecksums(primaryConn);
    const asPrimary = promote({
      archiveRoot: archive,
      target: { kind: 'end' },
      credentials: { user: 'root', password: '', socketPath: primary.socketPath },
      targetDescription: 'primary',
      replace: true,
      dryRun: false,
      filesRoot: undefined,
      logger: silentLogger(),
    });
    await expect(asPrimary).rejects.toMatchObject({ code: 'TARGET_IS_PRIMARY' });
    expect(await tableChecksums(primaryConn)).toEqual(primaryBefore);
    await expect(promoteInto({ kind: 'end' }, archive, { replace: false })).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    await expect(promoteInto({ kind: 'time', atMs: Date.now() + 3_600_000 })).rejects.toMatchObject({ code: 'POINT_UNREACHABLE' });
    await expect(promoteInto({ kind: 'gtid', gtid: '0-1-999999' })).rejects.toMatchObject({ code: 'POINT_UNREACHABLE' });
    // Another server's file name with this archive's file number is not this archive's position.
    const [firstArchived] = readdirSync(join(archive, 'binlog')).sort();
    const number = firstArchived?.slice(firstArchived.lastIndexOf('.')) ?? '.000001';
    await expect(promoteInto({ kind: 'position', at: { file: `other-bin${number}`, position: 4 } })).rejects.toMatchObject({ code: 'POINT_UNREACHABLE', message: expect.stringContaining('is not a file of this archive') as string });
    // Before the archive's first file: the base was taken later and would hold commits made after that point.
    await expect(promoteInto({ kind: 'time', atMs: Date.parse('2001-01-01T00:00:00Z') })).rejects.toThrow(/lies before the archive's first binlog file/);
    const dry = await promoteInto({ kind: 'end' }, archive, { dryRun: true });
    expect(dry.steps.map((s) => s.name)).toContain('restore-spool-files');
    // A standby that holds only an empty database the base holds too (a fresh install's `test`)
    // needs no --replace: nothing of it is lost.
    const holding = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--dry-run']).then(
      () => '',
      (err: { stderr: string }) => err.stderr,
    );
    expect(holding).toContain('error TARGET_NOT_EMPTY');
    expect(holding).not.toContain('test_empty');
    expect(await tableChecksums(standbyConn)).toEqual(before);
    const failed = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root:secret-pw@127.0.0.1:${primary.port}`]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/error (TARGET_IS_PRIMARY|TARGET_AUTH)/);
    expect(failed.stderr).not.toContain('secret-pw');
  });

  it('a DROP the target keeps waiting (an application holds its tables open): TARGET_BUSY, nothing dropped, read_only put back', async () => {
    const before = await tableChecksums(standbyConn);
    const [[was]] = (await standbyConn.query('SELECT @@global.read_only AS ro')) as [RowDataPacket[], unknown];
    await standbyConn.query('SET GLOBAL read_only = OFF');
    const holder = await standby.connect();
    try {
      // A reporting session reading every database the promotion would replace.
      const [tables] = (await standbyConn.query(
        "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') AND table_type = 'BASE TABLE'",
      )) as [RowDataPacket[], unknown];
      expect(tables.length).toBeGreaterThan(0);
      await holder.query('START TRANSACTION');
      for (const row of tables) await holder.query(`SELECT 1 FROM \`${String(row['s'])}\`.\`${String(row['t'])}\` LIMIT 1`);
      await expect(promoteInto({ kind: 'end' }, archive, { replace: true, lockWaitSeconds: 1 })).rejects.toMatchObject({
        code: 'TARGET_BUSY',
        message: expect.stringContaining('DROP DATABASE'),
        hint: expect.stringContaining('SHOW PROCESSLIST'),
      });
      // Nothing was dropped, so the target is as it was: writable, as the operator had it.
      const [[ro]] = (await standbyConn.query('SELECT @@global.read_only AS ro')) as [RowDataPacket[], unknown];
      expect(Number(ro?.['ro'])).toBe(0);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
      await standbyConn.query(`SET GLOBAL read_only = ${Number(was?.['ro']) === 1 ? 'ON' : 'OFF'}`);
    }
    expect(await tableChecksums(standbyConn)).toEqual(before);
  });

  it('a user without the base-backup privileges gets a PRIVILEGES error, and no base is left behind', async () => {
    await primaryConn.query("CREATE USER 'weak'@'localhost' IDENTIFIED BY 'pw'");
    await primaryConn.query("GRANT REPLICATION SLAVE, SELECT ON *.* TO 'weak'@'localhost'");
    const dir = join(work, 'archive-weak');
    const files = new LocalArchiveFiles(dir);
    const attempt = takeBaseBackup({ primary: { socketPath: primary.socketPath, user: 'weak', password: 'pw', serverId: 4243 }, files, clock: systemClock, logger: silentLogger() });
    await expect(attempt).rejects.toMatchObject({ code: 'PRIVILEGES' });
    expect(await files.list('base')).toEqual([]);
  });

  it('a client that fails while mariadb-binlog still has megabytes to write: RESTORE_FAILED with its own message, no hang', async () => {
    const names = readdirSync(join(archive, 'binlog')).filter((n) => !n.startsWith('.')).sort(compareBinlogNames);
    const file = names.find((n) => statSync(join(archive, 'binlog', n)).size > 4 * 1024 * 1024) as string;
    expect(file).toBeDefined();
    const cnf = join(work, 'unreachable.cnf');
    writeFileSync(cnf, `[client]\nuser=root\nsocket=${join(work, 'no-server.sock')}\nprotocol=SOCKET\n`);
    const size = statSync(join(archive, 'binlog', file)).size;
    await expect(replayBinlog(archive, [{ file, start: 4, stop: size, toFileEnd: true, cutAtStop: false }], cnf)).rejects.toMatchObject({
      code: 'RESTORE_FAILED',
      message: expect.stringContaining("Can't connect"),
    });
  });

  it('status reports the base, the coverage and the latest restorable time', async () => {
    const { stdout } = await execFileAsync('node', [BIN, 'status', '--archive', archive]);
    expect(stdout).toMatch(/base backups:/);
    expect(stdout).toMatch(/latest restorable: \d{4}-/);
    expect(stdout).toMatch(/gaps\/damage: none/);
  });

  it("SIGTERM during the base restore: the target's event scheduler and max_allowed_packet are put back before the command ends; a promote after completes", async () => {
    await standbyConn.query('SET GLOBAL event_scheduler = ON');
    const [[before]] = (await standbyConn.query('SELECT @@global.max_allowed_packet AS p')) as [RowDataPacket[], unknown];
    // The first change is made (and logged) while the restore has not begun: the signal lands
    // during the restore of the base (tens of MB of rows), never after it.
    const { child, exited, stderr } = await startUntil('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace'], 'event scheduler off during the restore and replay');
    child.kill('SIGTERM');
    const ended = await exited;
    expect(ended.signal).toBe('SIGTERM');
    expect(stderr()).toContain("interrupted during the restore or replay; putting the target's settings back");
    expect(stderr()).not.toContain('base restored');
    const [[after]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e, @@global.max_allowed_packet AS p')) as [RowDataPacket[], unknown];
    expect(String(after?.['e'])).toBe('ON');
    expect(Number(after?.['p'])).toBe(Number(before?.['p']));

    // The half-restored target promoted again, whole.
    await standbyConn.query('SET GLOBAL event_scheduler = OFF');
    await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace']);
    expect(await tableChecksums(standbyConn)).toEqual(sums.end);
  });

  it("SIGKILL during the restore: the next promote puts back the settings the killed one changed (recorded in the archive), says so, and leaves no record", async () => {
    await standbyConn.query('SET GLOBAL event_scheduler = ON');
    const [[before]] = (await standbyConn.query('SELECT @@global.max_allowed_packet AS p')) as [RowDataPacket[], unknown];
    const { child, exited } = await startUntil('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace'], 'max_allowed_packet raised to 1 GiB');
    child.kill('SIGKILL');
    expect((await exited).signal).toBe('SIGKILL');
    // Killed: nothing could put them back.
    const [[changed]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e, @@global.max_allowed_packet AS p')) as [RowDataPacket[], unknown];
    expect(String(changed?.['e'])).toBe('OFF');
    expect(Number(changed?.['p'])).not.toBe(Number(before?.['p']));
    const records = (): string[] => (existsSync(join(archive, 'state', 'promote-settings')) ? readdirSync(join(archive, 'state', 'promote-settings')) : []);
    expect(records()).toHaveLength(1);

    const again = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace']);
    expect(again.stderr).toMatch(/"code":"PROMOTE_SETTINGS_RESTORED".*put back: event_scheduler = ON, max_allowed_packet = \d+/);
    const [[after]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e, @@global.max_allowed_packet AS p, @@global.innodb_flush_log_at_trx_commit AS f')) as [RowDataPacket[], unknown];
    expect(String(after?.['e'])).toBe('ON');
    expect(Number(after?.['p'])).toBe(Number(before?.['p']));
    expect(Number(after?.['f'])).toBe(1);
    expect(records()).toEqual([]);
    expect(await tableChecksums(standbyConn)).toEqual(sums.end);
    await standbyConn.query('SET GLOBAL event_scheduler = OFF');
  });

  it('archive files promote cannot read (a user without the permission): ARCHIVE_READ naming the file, at planning and during the restore, never INTERNAL or a stack trace', async () => {
    // Root reads any file: promote runs without the capabilities that let it.
    const unprivileged = (args: string[]): Promise<{ code: number; stderr: string }> =>
      execFileAsync('setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search', 'node', BIN, ...args]).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
    const promoteArgs = ['promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace'];
    const baseDir = join(archive, 'base', readdirSync(join(archive, 'base')).filter((n) => !n.startsWith('.')).sort()[0] as string);
    const denied = async (path: string, run: () => Promise<{ code: number; stderr: string }>): Promise<string> => {
      const mode = statSync(path).mode & 0o777;
      chmodSync(path, 0);
      try {
        const result = await run();
        expect(result.code).toBe(1);
        expect(result.stderr).not.toMatch(/INTERNAL|at .*\.js:\d+/);
        return result.stderr;
      } finally {
        chmodSync(path, mode);
      }
    };
    // The record of when the primary was last heard: not taken for absent.
    const heard = join(archive, 'state', 'last-heard.json');
    expect(existsSync(heard)).toBe(true);
    expect(await denied(heard, () => unprivileged(promoteArgs))).toMatch(/^error ARCHIVE_READ: cannot read .*last-heard\.json: EACCES/m);
    // A base's metadata, read while planning.
    expect(await denied(join(baseDir, 'metadata.json'), () => unprivileged(promoteArgs))).toMatch(/^error ARCHIVE_READ: cannot read .*metadata\.json in the archive \(EACCES/m);
    expect(await denied(join(baseDir, 'metadata.json'), () => unprivileged(['status', '--archive', archive]))).toMatch(/^error ARCHIVE_READ: /m);
    // A base file, read while planning (its checksum): refused is not damaged, no older base in its place.
    const triggers = readdirSync(baseDir).find((n) => n.startsWith('triggers'));
    expect(triggers).toBeDefined();
    const triggersPath = join(baseDir, triggers as string);
    expect(await denied(triggersPath, () => unprivileged(promoteArgs))).toMatch(/^error ARCHIVE_READ: cannot read .*triggers.* in the archive \(EACCES/m);
    // The same file refused once the restore has begun (after the plan read it), before the
    // triggers, which come last: the target's settings are put back, and it stays read-only.
    await standbyConn.query('SET GLOBAL event_scheduler = ON');
    const running = await startUntil('setpriv', ['--bounding-set=-dac_override,-dac_read_search', '--inh-caps=-dac_override,-dac_read_search', 'node', BIN, ...promoteArgs], 'max_allowed_packet raised to 1 GiB');
    const mode = statSync(triggersPath).mode & 0o777;
    try {
      chmodSync(triggersPath, 0);
      expect((await running.exited).code).toBe(1);
    } finally {
      chmodSync(triggersPath, mode);
    }
    expect(running.stderr()).toMatch(/^error ARCHIVE_READ: cannot read .*triggers.* in the archive \(EACCES/m);
    expect(running.stderr()).not.toMatch(/INTERNAL|Unhandled/);
    const [[after]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e, @@global.read_only AS ro')) as [RowDataPacket[], unknown];
    expect(String(after?.['e'])).toBe('ON');
    expect(Number(after?.['ro'])).toBe(1);
    await standbyConn.query('SET GLOBAL event_scheduler = OFF');
    await execFileAsync('node', [BIN, ...promoteArgs]);
    expect(await tableChecksums(standbyConn)).toEqual(sums.end);
  });

  it("a settings record is put back only where the server still holds the promotion's values, and not at all when it predates the server's start", async () => {
    const [[srv]] = (await standbyConn.query('SELECT @@hostname AS h, @@port AS p, @@datadir AS d, UNIX_TIMESTAMP() AS now')) as [RowDataPacket[], unknown];
    const [[up]] = (await standbyConn.query("SHOW GLOBAL STATUS LIKE 'Uptime'")) as [RowDataPacket[], unknown];
    const startedS = Number(srv?.['now']) - Number(up?.['Value']);
    const key = `${String(srv?.['h'])}:${String(srv?.['p'])}:${String(srv?.['d'])}`;
    const state = settingsRecordPath(archive, key);
    mkdirSync(dirname(state), { recursive: true });
    const record = (settingsStartedS: number): string =>
      JSON.stringify({ server: key, target: 'a killed promote', savedAt: '2026-12-07T00:00:00.000Z', settings: { eventScheduler: 'ON', maxAllowedPacket: 16 * 1024 * 1024, flushLogAtTrxCommit: 1, startedS: settingsStartedS } });
    const promoteArgs = ['promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace'];
    // After the kill, the operator set max_allowed_packet themselves; the scheduler is still at the promotion's OFF.
    await standbyConn.query('SET GLOBAL event_scheduler = OFF');
    await standbyConn.query(`SET GLOBAL max_allowed_packet = ${256 * 1024 * 1024}`);
    writeFileSync(state, record(startedS));
    const kept = await execFileAsync('node', [BIN, ...promoteArgs]);
    expect(kept.stderr).toMatch(/"code":"PROMOTE_SETTINGS_RESTORED".*put back: event_scheduler = ON"/);
    const [[after]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e, @@global.max_allowed_packet AS p')) as [RowDataPacket[], unknown];
    expect(String(after?.['e'])).toBe('ON');
    expect(Number(after?.['p'])).toBe(256 * 1024 * 1024);
    expect(existsSync(state)).toBe(false);
    // A record from before the server's last start: its values are gone with that run of the server.
    await standbyConn.query('SET GLOBAL event_scheduler = OFF');
    writeFileSync(state, record(startedS - 3600));
    const stale = await execFileAsync('node', [BIN, ...promoteArgs]);
    expect(stale.stderr).not.toContain('PROMOTE_SETTINGS_RESTORED');
    expect(stale.stderr).toContain('predates its last start');
    const [[still]] = (await standbyConn.query('SELECT @@global.event_scheduler AS e')) as [RowDataPacket[], unknown];
    expect(String(still?.['e'])).toBe('OFF');
    expect(existsSync(state)).toBe(false);
    expect(await tableChecksums(standbyConn)).toEqual(sums.end);
  });

  it('a second promote into a target another promote is restoring is refused before it changes anything (PROMOTE_RUNNING); once that one ends, it runs', async () => {
    // The running promotion, as its session holds the target's promotion lock.
    const running = await standby.connect();
    try {
      const [[lock]] = (await running.query("SELECT GET_LOCK('hotspare.promote', 0) AS got, CONNECTION_ID() AS id")) as [RowDataPacket[], unknown];
      expect(Number(lock?.['got'])).toBe(1);
      await standbyConn.query('CREATE DATABASE IF NOT EXISTS test_empty');
      await standbyConn.query('CREATE TABLE IF NOT EXISTS test_empty.marker (id INT PRIMARY KEY)');
      const refused = await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace']).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(new RegExp(`^error PROMOTE_RUNNING: another hotspare promote is running into the target .* \\(its session ${String(lock?.['id'])}, from localhost, Sleep for \\d+ s holds the lock hotspare\\.promote\\)`, 'm'));
      expect(refused.stderr).toMatch(/^hint: wait for it to end, or stop it \(KILL \d+ on the target/m);
      // Nothing was touched: the table --replace would have dropped with its database is there.
      const [tables] = (await standbyConn.query("SHOW TABLES FROM test_empty LIKE 'marker'")) as [RowDataPacket[], unknown];
      expect(tables).toHaveLength(1);
      // A dry run changes nothing and takes no lock.
      await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace', '--dry-run']);
    } finally {
      await running.end();
    }
    await execFileAsync('node', [BIN, 'promote', '--archive', archive, '--target', `mysql://root@localhost?socket=${standby.socketPath}`, '--replace']);
    expect(await tableChecksums(standbyConn)).toEqual(sums.end);
  });
});
