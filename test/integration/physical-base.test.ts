import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, chmodSync, closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SyncAgent } from '../../src/agent/sync-agent.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { listBaseBackups, type BaseBackupMetadata } from '../../src/archive/base-catalog.js';
import { loadAgentConfig } from '../../src/config/load.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { takePhysicalBaseBackup } from '../../src/primary/base/take-physical-base-backup.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { WorkloadRunner, createWorkloadSchema, workloadStep } from '../../src/sandbox/write-workload.js';
import type { PromoteOptions } from '../../src/standby/promote.js';
import type { TargetSpec } from '../../src/standby/stop-point.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { checkBaseFiles } from '../../src/standby/base-checksums.js';
import { extractXbstream } from '../../src/standby/xbstream-extract.js';
import { planPhysicalRestore, startTarget, stopOnceStaged } from '../../src/standby/physical-restore.js';
import { TargetServer } from '../../src/standby/target-server.js';
import { HotspareError } from '../../src/core/errors.js';
import { describeTree, treeDiff } from '../../src/sandbox/tree-compare.js';
import { captureLogger } from '../support/capture-logger.js';
import { xbstreamChunk } from '../support/xbstream-chunk.js';
import { primaryHead } from '../support/primary-head.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { promoteInto as promoteSandbox } from '../support/promote-into.js';
import { nextSecond, waitFor } from '../support/wait.js';

const execFileAsync = promisify(execFile);
const BIN = new URL('../../bin/hotspare.js', import.meta.url).pathname;

/** The CLI's exit code and output, whether it succeeded or not. */
async function hotspare(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFileAsync('node', [BIN, ...args], { maxBuffer: 64 * 1024 * 1024 }).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

describe('physical (mariabackup) base backups and promotion from them', () => {
  let primary: MariadbServer;
  let standby: MariadbServer;
  let work: string;
  let archive: string;
  let configPath: string;
  let primaryConn: Connection;
  const sums: Record<'instant' | 'end', Record<string, string>> = { instant: {}, end: {} };
  let instant: { atMs: number };
  let bases: BaseBackupMetadata[];

  const standbyUrl = (): string => `mysql://root@localhost?socket=${standby.socketPath}`;
  const physicalTarget = (): Partial<PromoteOptions> => ({ targetDatadir: standby.datadir, targetStart: standby.startCommand() });
  const standbyChecksums = async (): Promise<Record<string, string>> => {
    const conn = await standby.connect();
    try {
      return await tableChecksums(conn);
    } finally {
      await conn.end();
    }
  };
  const runAgent = async (until: (agent: SyncAgent) => Promise<boolean>): Promise<void> => {
    const config = loadAgentConfig(configPath);
    const agent = new SyncAgent(config, await SyncAgent.preflight(config), { logger: silentLogger(), clock: systemClock, random01: () => 0.5 });
    agent.start();
    try {
      await waitFor('the agent', () => until(agent), 120_000);
    } finally {
      await agent.stop();
    }
  };
  /** Durable (fsynced and reported), not just written: the stop then records the archive caught up. */
  const archivedTo = (head: { file: string; position: number }) => async (agent: SyncAgent): Promise<boolean> => {
    const durable = agent.trackers[0]?.snapshot.durable;
    return durable !== undefined && compareBinlogPositions(durable, head) >= 0;
  };

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'hotspare-physical-'));
    archive = join(work, 'archive');
    primary = await MariadbServer.start({ serverId: 1, binlog: true });
    standby = await MariadbServer.start({ serverId: 2, binlog: false, extraArgs: ['--read-only=ON'] });
    primaryConn = await primary.connect();
    await createWorkloadSchema(primaryConn);
    for (let n = 0; n < 40; n += 1) await workloadStep(primaryConn, n, { blobBytes: 512 * 1024 });
    configPath = join(work, 'agent.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 },
        stateDir: join(work, 'state'),
        replicas: [{ name: 'a', type: 'file', path: archive }],
        base: { method: 'physical' },
      }),
    );
    // InnoDB and the key-less MyISAM feed are written all the time, during both bases.
    const runner = new WorkloadRunner(primaryConn, { blobBytes: 512 * 1024, firstStep: 40 });
    runner.start();
    const files = new LocalArchiveFiles(archive);
    // 1. The agent's own base (the archive has none): the configured method.
    await runAgent(async () => (await listBaseBackups(files)).length > 0 && runner.steps > 150);
    // The instant: no commit in its second.
    await runner.pause();
    await nextSecond(100);
    sums.instant = await tableChecksums(primaryConn);
    instant = { atMs: Date.now() };
    await nextSecond(50);
    runner.resume();
    const resumedAt = runner.steps;
    await waitFor('writes after the instant', () => runner.steps > resumedAt + 60);
    // 2. `hotspare base --method physical` while the writes go on (no agent running: it opens the archive itself).
    const base = await hotspare(['base', '--config', configPath, '--method', 'physical']);
    expect(base.stderr.split('\n').filter((l) => l.includes('"level":50'))).toEqual([]);
    expect(base.code).toBe(0);
    const afterBase = runner.steps;
    await waitFor('writes after the second base', () => runner.steps > afterBase + 60);
    await runner.stop();
    sums.end = await tableChecksums(primaryConn);
    const end = await primaryHead(primaryConn);
    await runAgent(archivedTo(end));
    bases = await listBaseBackups(files);
  }, 300_000);

  afterAll(async () => {
    await primaryConn?.end();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  });

  it('takes physical bases with mariabackup\'s coordinates; verify is intact and status names the method', async () => {
    expect(bases.map((b) => b.method)).toEqual(['physical-mariabackup', 'physical-mariabackup']);
    for (const base of bases) {
      expect(base.files.map((f) => f.role)).toEqual(['physical']);
      expect(base.physical?.info['binlog_pos']).toContain(`'${base.binlog.file}'`);
      expect(base.binlog.position).toBeGreaterThan(4);
      expect(base.tool.mariabackup).toMatch(/mariabackup|mariadb-backup/i);
      expect(base.databases).toEqual(['app', 'feeds']);
    }
    expect(readdirSync(join(archive, 'base')).filter((n) => n.endsWith('.partial'))).toEqual([]);
    const verify = await hotspare(['verify', '--archive', archive, '--json']);
    expect(verify.code).toBe(0);
    expect((JSON.parse(verify.stdout) as { bases: Array<{ method: string; problems: string[] }> }).bases).toMatchObject([
      { method: 'physical-mariabackup', problems: [] },
      { method: 'physical-mariabackup', problems: [] },
    ]);
    const status = await hotspare(['status', '--archive', archive]);
    expect(status.stdout).toContain(`${bases[1]?.id} (physical-mariabackup)`);
    // The primary's whole identity, as --json has it: flavor and version on the first line.
    expect(status.stdout.split('\n')[0]).toMatch(/primary server_id \d+ on .* \(mariadb \d+\.\d+/);
  });

  it('our extractor makes of every archived stream exactly what mbstream -x makes of it: files, bytes, modes', async () => {
    const withoutTimes = (tree: Map<string, string>): Map<string, string> => new Map([...tree].map(([p, v]) => [p, v.replace(/ mtime \d+$/, '')]));
    for (const base of bases) {
      const stream = join(archive, 'base', base.id, base.physical?.stream ?? '');
      const ours = mkdtempSync(join(work, 'ours-'));
      const theirs = mkdtempSync(join(work, 'mbstream-'));
      expect((await extractXbstream(stream, ours).done).files).toBeGreaterThan(10);
      await execFileAsync('sh', ['-c', `mbstream -x -C '${theirs}' < '${stream}'`]);
      expect(treeDiff(withoutTimes(await describeTree(theirs)), withoutTimes(await describeTree(ours)))).toEqual([]);
      rmSync(ours, { recursive: true });
      rmSync(theirs, { recursive: true });
    }
  });

  it('refuses a physical base without --target-datadir, with the wrong datadir, and a non-empty target without --replace; nothing changes', async () => {
    const badExtractor = await hotspare(['promote', '--archive', archive, '--target', standbyUrl(), '--extractor', 'cp']);
    expect(badExtractor.code).toBe(2);
    expect(badExtractor.stderr).toContain('--extractor: expected hotspare or mbstream');
    // Something of the standby's own that must survive every refusal.
    const conn = await standby.connect();
    await conn.query('CREATE DATABASE IF NOT EXISTS mine');
    await conn.query('CREATE TABLE IF NOT EXISTS mine.keep (a INT) ENGINE=InnoDB');
    await conn.query('INSERT INTO mine.keep VALUES (1)');
    await conn.end();
    const before = await standbyChecksums();
    const pid = standby.pid;
    const datadirInode = statSync(standby.datadir).ino;
    const refused = await hotspare(['promote', '--archive', archive, '--target', standbyUrl(), '--replace']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('error TARGET_DATADIR_NEEDED');
    expect(refused.stderr).toMatch(/hint: .*--target-datadir/);
    const elsewhere = join(work, 'not-the-datadir');
    cpSync(standby.datadir, elsewhere, { recursive: true });
    await expect(promoteSandbox(standby, archive, { kind: 'end' }, { targetDatadir: elsewhere, targetStart: 'true' })).rejects.toMatchObject({ code: 'TARGET_DATADIR_MISMATCH' });
    await expect(promoteSandbox(standby, archive, { kind: 'end' }, { ...physicalTarget(), replace: false })).rejects.toMatchObject({ code: 'TARGET_NOT_EMPTY' });
    const dry = await hotspare(['promote', '--archive', archive, '--target', standbyUrl(), '--replace', '--dry-run', '--target-datadir', standby.datadir, '--target-start', standby.startCommand()]);
    expect(dry.code).toBe(0);
    for (const step of ['prepare-physical-base', 'stop-target', 'swap-datadir', 'start-target', 'replay-binlog']) expect(dry.stdout).toContain(`[x] ${step}`);
    expect(standby.pid).toBe(pid);
    expect(statSync(standby.datadir).ino).toBe(datadirInode);
    expect(await standbyChecksums()).toEqual(before);
    expect(readdirSync(dirname(standby.datadir)).filter((n) => n.includes('.hotspare-'))).toEqual([]);
  });

  it('the staged copy failing to reach the disk once the target stopped: the target starts again on its own datadir, and the failure is thrown', async () => {
    // The shutdown overlaps the copy's write-back (stopOnceStaged); a disk error in the
    // write-back is simulated by its promise, the server and its restart are real.
    const before = await standbyChecksums();
    const pid = standby.pid;
    const datadirInode = statSync(standby.datadir).ino;
    const credentials = { user: 'root', password: '', socketPath: standby.socketPath };
    const connect = (): Promise<TargetServer> => TargetServer.connect(credentials, 'standby');
    const server = await connect();
    const plan = await planPhysicalRestore({ base: bases[bases.length - 1] as BaseBackupMetadata, server, datadir: standby.datadir, startCommand: standby.startCommand(), replace: true, nowMs: Date.now() });
    const diskError = new HotspareError('RESTORE_FAILED', 'fdatasync: EIO', { hint: 'check the disk' });
    const { logger, lines } = captureLogger();
    const staging = { checked: Promise.resolve(), durable: Promise.reject(diskError) };
    staging.durable.catch(() => undefined);
    await expect(stopOnceStaged(staging, server, plan, connect, logger)).rejects.toBe(diskError);
    await server.close().catch(() => undefined);
    expect(lines().map((l) => l['msg'])).toEqual(expect.arrayContaining(['target server stopped', 'the restored copy could not be made durable; starting the target again on its own datadir']));
    // Stopped and started again: a new process, on the datadir it had, with the data it had.
    expect(standby.pid).toBeDefined();
    expect(standby.pid).not.toBe(pid);
    expect(statSync(standby.datadir).ino).toBe(datadirInode);
    expect(await standbyChecksums()).toEqual(before);
  });

  it('a restored server that refuses --target\'s login (the primary\'s accounts came with the datadir): TARGET_AUTH at once, not TARGET_START_FAILED after the start timeout', async () => {
    const plan = { startCommand: 'true', datadir: standby.datadir, previous: `${standby.datadir}.before` } as unknown as Parameters<typeof startTarget>[0];
    const wrong = (): Promise<TargetServer> => TargetServer.connect({ user: 'root', password: 'not-the-primary-s', socketPath: standby.socketPath }, 'standby');
    const started = Date.now();
    const refused = await startTarget(plan, wrong).then(
      () => undefined,
      (err: unknown) => err as HotspareError,
    );
    expect(refused?.code).toBe('TARGET_AUTH');
    expect(refused?.message).toContain("the restored datadir holds the primary's accounts");
    expect(refused?.hint).toContain(standby.datadir);
    expect(Date.now() - started).toBeLessThan(10_000);
  }, 30_000);

  it('promotes to the end from the newest physical base: every table equals the primary, the old datadir is kept', async () => {
    // Started writable (as `systemctl start mariadb` starts a server whose config does not say read-only).
    const start = standby.startCommand({ extraArgs: ['--read-only=OFF'] });
    const { code, stdout, stderr } = await hotspare(['promote', '--archive', archive, '--target', standbyUrl(), '--replace', '--json', '--target-datadir', standby.datadir, '--target-start', start]);
    expect(stderr.split('\n').filter((l) => l.includes('"level":50'))).toEqual([]);
    expect(code).toBe(0);
    // Our extractor read the stream (mbstream is only its fallback).
    expect(stderr).toContain('"extractor":"hotspare","msg":"extracting the physical base stream"');
    expect(stderr).not.toContain('mbstream extracts it');
    // It answered writable before promote made it read-only: promote says so.
    expect(stderr).toContain('"code":"TARGET_STARTED_WRITABLE"');
    const report = JSON.parse(stdout) as { base: { id: string; method: string }; physical: { previous: string }; lossWindowSeconds: number };
    expect(report.base).toMatchObject({ id: bases[1]?.id, method: 'physical-mariabackup' });
    expect(await standbyChecksums()).toEqual(sums.end);
    expect(report.lossWindowSeconds).toBe(0);
    const conn = await standby.connect();
    const [[ro]] = (await conn.query('SELECT @@read_only AS ro')) as [RowDataPacket[], unknown];
    await conn.end();
    expect(Number(ro?.['ro'])).toBe(0);
    // The standby's own database went with its old datadir, which is kept beside the new one.
    expect(basename(report.physical.previous)).toMatch(/^data\.hotspare-before-/);
    expect(readdirSync(report.physical.previous)).toContain('mine');
  });

  it('promotes to an instant recorded during the writes, with --extractor mbstream: exactly the checksums of that instant', async () => {
    const target: TargetSpec = { kind: 'time', atMs: instant.atMs };
    const log = captureLogger();
    // Started read-only (the standby's own --read-only=ON), as README says an operator's start
    // command should: no writable window, and the promotion still ends writable.
    const plan = await promoteSandbox(standby, archive, target, { ...physicalTarget(), extractor: 'mbstream', logger: log.logger });
    expect(plan.base.id).toBe(bases[0]?.id);
    expect(log.lines().filter((l) => l.msg === 'extracting the physical base stream').map((l) => l['extractor'])).toEqual(['mbstream']);
    expect(log.lines().filter((l) => l['code'] === 'TARGET_STARTED_WRITABLE')).toEqual([]);
    expect(log.lines().some((l) => l.msg === 'target server started on the restored datadir')).toBe(true);
    const conn = await standby.connect();
    const [[ro]] = (await conn.query('SELECT @@read_only AS ro')) as [RowDataPacket[], unknown];
    await conn.end();
    expect(Number(ro?.['ro'])).toBe(0);
    expect(await standbyChecksums()).toEqual(sums.instant);
    expect(sums.instant).not.toEqual(sums.end);
  });

  /** A copy of the archive in which one byte in the middle of `base`'s stream is flipped (its sha256 no longer matches). */
  const archiveWithFlippedStream = (name: string, base: BaseBackupMetadata): string => {
    const copy = join(work, name);
    cpSync(archive, copy, { recursive: true });
    const path = join(copy, 'base', base.id, base.physical?.stream ?? '');
    const fd = openSync(path, 'r+');
    const at = Math.floor(statSync(path).size / 2);
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = (byte[0] ?? 0) ^ 0x01;
    writeSync(fd, byte, 0, 1, at);
    closeSync(fd);
    return copy;
  };

  it('a flipped byte in the physical base: verify exits 1 and names the file', async () => {
    const base = bases[0] as BaseBackupMetadata;
    const copy = archiveWithFlippedStream('archive-flipped', base);
    const verify = await hotspare(['verify', '--archive', copy]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`base/${base.id}`);
    expect(verify.stdout).toContain(`${base.physical?.stream}: sha256 mismatch`);
    // Promote finds it while staging the stream, before the target is touched.
    const before = await standbyChecksums();
    const pid = standby.pid;
    await expect(promoteSandbox(standby, copy, { kind: 'time', atMs: instant.atMs }, physicalTarget())).rejects.toMatchObject({ code: 'BASE_DAMAGED' });
    expect(standby.pid).toBe(pid);
    expect(await standbyChecksums()).toEqual(before);
    expect(readdirSync(dirname(standby.datadir)).filter((n) => n.includes('.hotspare-staging-'))).toEqual([]);
  });

  it('a damaged newest physical base, found while it is staged: promote plans again from the older one, to the same end', async () => {
    const newest = bases[1] as BaseBackupMetadata;
    const copy = archiveWithFlippedStream('archive-newest-flipped', newest);
    const log = captureLogger();
    const plan = await promoteSandbox(standby, copy, { kind: 'end' }, { ...physicalTarget(), logger: log.logger });
    expect(plan.base.id).toBe(bases[0]?.id);
    expect(plan.damagedBases).toHaveLength(1);
    expect(plan.damagedBases[0]).toContain(`${newest.id}: base backup ${newest.id} is damaged`);
    expect(log.lines().some((l) => l.code === 'BASE_DAMAGED' && l['base'] === newest.id)).toBe(true);
    expect(await standbyChecksums()).toEqual(sums.end);
    expect(readdirSync(dirname(standby.datadir)).filter((n) => n.includes('.hotspare-staging-'))).toEqual([]);
  });

  it('damage the extraction cannot see (a chunk\'s flags byte) is caught by the stream\'s sha256 check; nothing changes', async () => {
    const copy = join(work, 'archive-flipped-flags');
    cpSync(archive, copy, { recursive: true });
    const base = bases[0] as BaseBackupMetadata;
    const fd = openSync(join(copy, 'base', base.id, base.physical?.stream ?? ''), 'r+');
    // Byte 8 of the first chunk: its flags, which no extractor reads for a payload chunk.
    writeSync(fd, Buffer.from([0x02]), 0, 1, 8);
    closeSync(fd);
    const before = await standbyChecksums();
    const pid = standby.pid;
    await expect(promoteSandbox(standby, copy, { kind: 'time', atMs: instant.atMs }, physicalTarget())).rejects.toMatchObject({
      code: 'BASE_DAMAGED',
      message: expect.stringContaining('sha256 mismatch') as unknown,
    });
    expect(standby.pid).toBe(pid);
    expect(await standbyChecksums()).toEqual(before);
    expect(readdirSync(dirname(standby.datadir)).filter((n) => n.includes('.hotspare-staging-'))).toEqual([]);
  });

  /**
   * A copy of the archive whose first base's stream ends with one more chunk (type, flags, path,
   * payload), and whose metadata has the stream's new size and sha256: a stream stored exactly as
   * it was taken, as far as the archive can tell.
   */
  const archiveWithExtraChunk = (name: string, chunk: { type: string; flags: number; path: string; payload: Buffer }): { copy: string; base: BaseBackupMetadata } => {
    const copy = join(work, name);
    cpSync(archive, copy, { recursive: true });
    const base = bases[0] as BaseBackupMetadata;
    const stream = join(copy, 'base', base.id, base.physical?.stream ?? '');
    appendFileSync(stream, xbstreamChunk(chunk.type, chunk.path, { offset: 0, data: chunk.payload }, chunk.flags));
    const metadataPath = join(copy, 'base', base.id, 'metadata.json');
    const metadata = JSON.parse(readFileSync(metadataPath, 'utf8')) as BaseBackupMetadata;
    const entry = metadata.files.find((f) => f.name === base.physical?.stream);
    if (entry === undefined) throw new Error('the stream is listed in the metadata');
    entry.bytes = statSync(stream).size;
    entry.sha256 = createHash('sha256').update(readFileSync(stream)).digest('hex');
    writeFileSync(metadataPath, JSON.stringify(metadata));
    return { copy, base };
  };

  it('a stream whose path leaves the backup, stored as taken: promote refuses it (mbstream would skip the file and exit 0); nothing changes', async () => {
    const { copy } = archiveWithExtraChunk('archive-escaping-path', { type: 'P', flags: 0, path: '../escaped', payload: Buffer.from('outside') });
    const before = await standbyChecksums();
    const pid = standby.pid;
    await expect(promoteSandbox(standby, copy, { kind: 'time', atMs: instant.atMs }, physicalTarget())).rejects.toMatchObject({ code: 'BASE_DAMAGED' });
    expect(standby.pid).toBe(pid);
    expect(await standbyChecksums()).toEqual(before);
    const parent = dirname(standby.datadir);
    expect(readdirSync(parent).filter((n) => n.includes('.hotspare-staging-') || n === 'escaped')).toEqual([]);
  });

  it('a stream holding a chunk type our extractor does not read: mbstream extracts it, and the promotion is exact', async () => {
    // An ignorable chunk of an unknown type ('Z', flag 1) at the end, as a newer mariabackup
    // might write: mbstream skips it; ours refuses what it does not know.
    const { copy, base } = archiveWithExtraChunk('archive-newer-format', { type: 'Z', flags: 1, path: 'z', payload: Buffer.from('newer') });
    const log = captureLogger();
    const plan = await promoteSandbox(standby, copy, { kind: 'time', atMs: instant.atMs }, { ...physicalTarget(), logger: log.logger });
    expect(plan.base.id).toBe(base.id);
    expect(log.lines().filter((l) => l.msg.includes('mbstream extracts it')).map((l) => l.code)).toEqual(['XBSTREAM_UNSUPPORTED']);
    expect(await standbyChecksums()).toEqual(sums.instant);
  });

  it('a physical base through a remote replica (`hotspare receive`): the same putFile path, intact on the standby', async () => {
    const remoteArchive = join(work, 'archive-remote');
    const tokenFile = join(work, 'token');
    writeFileSync(tokenFile, 'physical-remote-token-0123456789\n');
    const port = await freePort();
    const receiver = new ReceiverProcess(['--archive', remoteArchive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    await receiver.start();
    try {
      const config = join(work, 'agent-remote.json');
      writeFileSync(
        config,
        JSON.stringify({
          primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4250 },
          stateDir: join(work, 'state-remote'),
          replicas: [{ name: 'r', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }],
          base: { method: 'physical' },
        }),
      );
      const run = await hotspare(['base', '--config', config, '--json']);
      expect(run.code).toBe(0);
      const [result] = JSON.parse(run.stdout) as Array<{ method: string; id: string }>;
      expect(result?.method).toBe('physical-mariabackup');
      const [base] = await listBaseBackups(new LocalArchiveFiles(remoteArchive));
      expect(base).toMatchObject({ id: result?.id, method: 'physical-mariabackup' });
      expect(await checkBaseFiles(remoteArchive, base as BaseBackupMetadata)).toEqual([]);
      expect(readdirSync(join(remoteArchive, 'base'))).toEqual([result?.id]);
    } finally {
      await receiver.stop();
    }
  });

  it('mariabackup failing mid-stream: BASE_PHYSICAL_FAILED with its message, and nothing that looks like a base', async () => {
    // A stand-in for mariabackup on PATH that streams some bytes, complains and exits 1, as
    // mariabackup does when it cannot read a file: the failure is the tool's, deterministic.
    const bin = join(work, 'failing-bin');
    mkdirSync(bin);
    const fake = join(bin, 'mariabackup');
    writeFileSync(
      fake,
      '#!/bin/sh\nif [ "$1" = "--version" ]; then echo "mariabackup based on MariaDB server 10.11.19-MariaDB"; exit 0; fi\n' +
        'head -c 3000000 /dev/zero\necho "[00] [ERROR] InnoDB: simulated read error on ./ibdata1" >&2\nexit 1\n',
    );
    chmodSync(fake, 0o755);
    const failingArchive = join(work, 'archive-failing');
    const config = join(work, 'agent-failing.json');
    writeFileSync(config, readFileSync(configPath, 'utf8').replace(JSON.stringify(archive), JSON.stringify(failingArchive)));
    const run = await execFileAsync('node', [BIN, 'base', '--config', config], { env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` } }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => err,
    );
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('error BASE_PHYSICAL_FAILED');
    expect(run.stderr).toContain('simulated read error');
    expect(readdirSync(join(failingArchive, 'base'))).toEqual([]);
    expect(await listBaseBackups(new LocalArchiveFiles(failingArchive))).toEqual([]);
  });

  it('a user without mariabackup\'s privileges gets PRIVILEGES with the GRANT, and no base is left behind', async () => {
    await primaryConn.query("CREATE USER 'weak'@'localhost' IDENTIFIED BY 'pw'");
    // All that streaming and a logical base need, but not PROCESS.
    await primaryConn.query("GRANT REPLICATION SLAVE, BINLOG MONITOR, SELECT, RELOAD, LOCK TABLES ON *.* TO 'weak'@'localhost'");
    const files = new LocalArchiveFiles(join(work, 'archive-weak'));
    const attempt = takePhysicalBaseBackup({ primary: { socketPath: primary.socketPath, user: 'weak', password: 'pw', serverId: 4243 }, files, clock: systemClock, logger: silentLogger() });
    await expect(attempt).rejects.toMatchObject({ code: 'PRIVILEGES', hint: expect.stringContaining('GRANT RELOAD, PROCESS, LOCK TABLES, BINLOG MONITOR') });
    expect(await files.list('base')).toEqual([]);
    // The agent with base.method physical checks it at start and stops with the fix.
    const config = join(work, 'agent-weak.json');
    writeFileSync(
      config,
      JSON.stringify({
        primary: { socketPath: primary.socketPath, user: 'weak', password: 'pw', serverId: 4244 },
        stateDir: join(work, 'state-weak'),
        replicas: [{ name: 'w', type: 'file', path: join(work, 'archive-weak-agent') }],
        base: { method: 'physical' },
      }),
    );
    const agent = await hotspare(['agent', '--config', config]);
    expect(agent.code).toBe(1);
    expect(agent.stderr).toContain('error PRIVILEGES');
    expect(agent.stderr).toContain('lacks PROCESS, which mariabackup needs');
  });
});
