import { closeSync, cpSync, existsSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Connection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { listBaseBackups, type BaseBackupMetadata } from '../../src/archive/base-catalog.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { WorkloadRunner, createWorkloadSchema, workloadStep } from '../../src/sandbox/write-workload.js';
import { inspectArchive } from '../../src/standby/verify-archive.js';
import { HotspareProcess, runHotspare, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { primaryHead } from '../support/primary-head.js';
import { divergeStandby, promoteInto } from '../support/promote-into.js';

/**
 * Goal: a flipped byte in binlog kept only for older points in time (before a newer base
 * backup) does not stand between a failover and the archive's end: promote restores from the
 * base after the damage and replays to the end, says what it passed over, and still refuses
 * a point inside the damage; verify still reports the damage (exit 1) with the end as the
 * latest restorable point. Before, promote to the end was refused (ARCHIVE_DAMAGED) with a hint
 * to restore up to the damage: hours or months of transactions lost for nothing.
 * Method: a real primary, the real agent process and `hotspare base`, a byte flipped in the
 * archived file of the first base, real promotion into a standby, CHECKSUM TABLE compared.
 */
/** Flips a byte in the middle of one of a base's data files (its sha256 then fails). */
/** Flips a bit of the byte at `offset` of an archived binlog file (flipped again, it is mended). */
function flipByte(archive: string, file: string, offset: number): void {
  const fd = openSync(join(archive, 'binlog', file), 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, offset);
  byte[0] = (byte[0] ?? 0) ^ 0x10;
  writeSync(fd, byte, 0, 1, offset);
  closeSync(fd);
}

/** The promotion's refusal (undefined when it went through). */
const refusal = (promotion: Promise<unknown>): Promise<{ code: string; message: string; hint: string } | undefined> =>
  promotion.then(
    () => undefined,
    (err: unknown) => err as { code: string; message: string; hint: string },
  );

function damageBase(archive: string, base: BaseBackupMetadata): void {
  const baseDir = join(archive, 'base', base.id);
  const data = readdirSync(baseDir).find((f) => f.startsWith('data-')) ?? 'schema.sql.gz';
  const bytes = readFileSync(join(baseDir, data));
  bytes[Math.floor(bytes.length / 2)] = (bytes[Math.floor(bytes.length / 2)] ?? 0) ^ 0x01;
  writeFileSync(join(baseDir, data), bytes);
}

describe('promotion past damage that a newer base passes over', () => {
  let dir: string;
  let primary: MariadbServer;
  let standby: MariadbServer;
  let conn: Connection;
  let standbyConn: Connection;
  let archive: string;
  let expected: Record<string, string>;
  let first: BaseBackupMetadata;
  let second: BaseBackupMetadata;
  /** The newest base, in a later file than the second. */
  let third: BaseBackupMetadata;
  let damaged: { file: string; offset: number };
  /** What verify calls the latest restorable point: the one promote to the end must reach. */
  let restorable: { file: string; position: number } | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-past-damage-'));
    primary = await MariadbServer.start({ serverId: 41, binlog: true, baseDir: join(dir, 'primary') });
    standby = await MariadbServer.start({ serverId: 42, binlog: false, baseDir: join(dir, 'standby'), extraArgs: ['--read-only=ON'] });
    conn = await primary.connect();
    standbyConn = await standby.connect();
    await createWorkloadSchema(conn);
    archive = join(dir, 'archive');
    const config = writeAgentConfig(dir, primary, [{ name: 'a', type: 'file', path: archive }]);
    const agent = new HotspareProcess(['agent', '--config', config]);
    try {
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), 120_000);
      const runner = new WorkloadRunner(conn, { blobBytes: 64 * 1024, firstStep: 0 });
      runner.start();
      await waitFor('writes after the first base', () => runner.steps > 60, 60_000);
      await runner.stop();
      // Steps one by one from here (workloadStep rotates the binlog every 97th step: none of
      // these does, until the last batch), so the second base lies well inside its file.
      const steps = async (from: number, to: number): Promise<void> => {
        for (let n = from; n < to; n += 1) await workloadStep(conn, n, { blobBytes: 64 * 1024 });
      };
      await conn.query('FLUSH BINARY LOGS');
      // Writes in the second base's file before it (a later test damages them).
      await steps(1000, 1030);
      const taken = await runHotspare(['base', '--config', config]);
      expect(taken.code).toBe(0);
      await steps(1030, 1060);
      await conn.query('FLUSH BINARY LOGS');
      await steps(1060, 1090);
      await conn.query('FLUSH BINARY LOGS');
      await steps(1090, 1120);
      expect((await runHotspare(['base', '--config', config])).code).toBe(0);
      await steps(1120, 1150);
      expected = await tableChecksums(conn);
      const end = await primaryHead(conn);
      const archived = join(archive, 'binlog', end.file);
      await waitFor('the archive to catch up', () => existsSync(archived) && statSync(archived).size >= end.position, 60_000);
    } finally {
      expect(await agent.kill('SIGTERM')).toBe(0);
    }
    const bases = await listBaseBackups(new LocalArchiveFiles(archive));
    expect(bases).toHaveLength(3);
    [first, second, third] = bases as [BaseBackupMetadata, BaseBackupMetadata, BaseBackupMetadata];
    // The second base lies in a later file than the first: the first's file is kept only for
    // points before the second base.
    expect(compareBinlogPositions({ file: first.binlog.file, position: Number.MAX_SAFE_INTEGER }, second.binlog)).toBeLessThan(0);
    // A bit flipped in an event after the first base, in the first base's file.
    damaged = { file: first.binlog.file, offset: first.binlog.position + 200 };
    flipByte(archive, damaged.file, damaged.offset);
  }, 300_000);

  /** D2: a flipped byte halfway between the second base and the end of its file. */
  const damageAfterSecondBase = (copy: string): { file: string; offset: number } => {
    const size = statSync(join(copy, 'binlog', second.binlog.file)).size;
    const d2 = { file: second.binlog.file, offset: second.binlog.position + Math.floor((size - second.binlog.position) / 2) };
    flipByte(copy, d2.file, d2.offset);
    return d2;
  };

  afterAll(async () => {
    await conn?.end();
    await standbyConn?.end();
    await Promise.all([primary?.destroy(), standby?.destroy()]);
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it('verify reports the damage (exit 1), and the end as the latest restorable point', async () => {
    const verify = await runHotspare(['verify', '--archive', archive]);
    expect(verify.code).toBe(1);
    expect(verify.stdout).toContain(`first bad point ${damaged.file}:`);
    const report = await inspectArchive(archive, { checksums: true });
    expect(report.firstBad?.file).toBe(damaged.file);
    expect(report.intact).toBe(false);
    // In the newest file, past the damage and the second base (the primary may write events of
    // its own after the last commit: the point is that commit's end).
    const head = await primaryHead(conn);
    restorable = report.latestRestorable;
    expect(restorable?.file).toBe(head.file);
    expect(compareBinlogPositions(restorable ?? { file: '', position: 0 }, second.binlog)).toBeGreaterThan(0);
    expect(report.bases.find((b) => b.id === first.id)).toMatchObject({ restorable: false, beforeGap: true });
    expect(report.bases.find((b) => b.id === second.id)).toMatchObject({ restorable: true });
    expect(report.bases.find((b) => b.id === third.id)).toMatchObject({ restorable: true });
    // (status reads no CRC32, so it does not see a flipped byte; verify's text names the restart.)
    expect(verify.stdout).toContain(`last good restorable point ${restorable?.file}:${restorable?.position}`);
  });

  it('refuses a position inside the damage, naming the damage (no base at or before it restarts there); the target is unchanged', async () => {
    const before = await tableChecksums(standbyConn);
    await expect(promoteInto(standby, archive, { kind: 'position', at: { file: damaged.file, position: damaged.offset + 5000 } })).rejects.toMatchObject({
      code: 'POINT_UNREACHABLE',
      message: expect.stringContaining(`damaged at ${damaged.file}:`),
    });
    expect(await tableChecksums(standbyConn)).toEqual(before);
  });

  it('promotes to the end from the base after the damage: every table equals the primary, the damage is reported', async () => {
    const plan = await promoteInto(standby, archive, { kind: 'end' });
    // The newest base after the damage restores it.
    expect(plan.base.id).toBe(third.id);
    expect(plan.passedOverDamage?.file).toBe(damaged.file);
    expect(plan.stoppedBeforeDamage).toBeUndefined();
    expect(plan.lastTransaction).toMatchObject({ file: restorable?.file, position: restorable?.position });
    expect(await tableChecksums(standbyConn)).toEqual(expected);
  });

  it('the newest file cut back to an earlier transaction end (a volume that lost its tail): verify finds damage at the end, promote to the end refuses and offers that point; before, both took the shorter archive for a whole one', async () => {
    const copy = join(dir, 'archive-tail-cut');
    cpSync(archive, copy, { recursive: true });
    // The agent's record of what the archive held durably when it last heard the primary.
    const heard = JSON.parse(readFileSync(join(copy, 'state', 'last-heard.json'), 'utf8')) as { boundary?: { file: string; position: number } };
    const cut = { file: third.binlog.file, position: third.binlog.position };
    expect(heard.boundary?.file).toBe((await primaryHead(conn)).file);
    expect(compareBinlogPositions(heard.boundary ?? cut, cut)).toBeGreaterThan(0);
    // Cut at a transaction boundary: the files alone look like a clean end.
    const fd = openSync(join(copy, 'binlog', cut.file), 'r+');
    ftruncateSync(fd, cut.position);
    closeSync(fd);
    const report = await inspectArchive(copy, { checksums: true });
    expect(report.intact).toBe(false);
    expect(report.endDamage).toMatchObject({ kind: 'truncated', file: cut.file, offset: cut.position, reason: expect.stringContaining('its tail was cut off') });
    const before = await tableChecksums(standbyConn);
    const refused = await refusal(promoteInto(standby, copy, { kind: 'end' }));
    expect(refused).toMatchObject({ code: 'ARCHIVE_DAMAGED', message: expect.stringContaining(`${cut.file}:${cut.position} (truncated: the archive ends here`) });
    expect(refused?.hint).toContain(`--until-position ${cut.file}:${cut.position}`);
    expect(await tableChecksums(standbyConn)).toEqual(before);
    rmSync(copy, { recursive: true, force: true });
  });

  it('when the bases after the damage are damaged too: refused to the end with the point before the damage, as before; verify says so', async () => {
    const copy = join(dir, 'archive-both-damaged');
    cpSync(archive, copy, { recursive: true });
    for (const base of [second, third]) damageBase(copy, base);
    const before = await tableChecksums(standbyConn);
    // Not BASE_DAMAGED with a hint to take a new base (the primary is gone in a failover).
    const refused = await refusal(promoteInto(standby, copy, { kind: 'end' }));
    expect(refused?.code).toBe('ARCHIVE_DAMAGED');
    expect(refused?.hint).toMatch(/--until-position \S+:\d+/);
    expect(await tableChecksums(standbyConn)).toEqual(before);
    const report = await inspectArchive(copy, { checksums: true });
    expect(report.firstBad?.file).toBe(damaged.file);
    expect(report.latestRestorable).toBeDefined();
    expect(compareBinlogPositions(report.latestRestorable ?? { file: '', position: 0 }, { file: damaged.file, position: damaged.offset })).toBeLessThanOrEqual(0);
    expect(report.bases.find((b) => b.id === first.id)?.restorable).toBe(true);
  });

  it('damage earlier in the very file a base starts in: the chain restarts at the base\'s position, and the end is reached', async () => {
    const copy = join(dir, 'archive-same-file');
    cpSync(archive, copy, { recursive: true });
    // The first damage mended (flipped back), and a new one in the second base's file, before its position.
    flipByte(copy, damaged.file, damaged.offset);
    // Thirty steps of writes lie before the base in its file.
    expect(second.binlog.position).toBeGreaterThan(100_000);
    const inFile = { file: second.binlog.file, offset: Math.floor(second.binlog.position / 2) };
    flipByte(copy, inFile.file, inFile.offset);
    const report = await inspectArchive(copy, { checksums: true });
    expect(report.firstBad?.file).toBe(inFile.file);
    expect(report.binlog.first).toEqual(second.binlog);
    expect(report.latestRestorable).toMatchObject({ file: restorable?.file, position: restorable?.position });
    // A position inside the damaged stretch, before the base, is refused; the end is reached from the base.
    await expect(promoteInto(standby, copy, { kind: 'position', at: { file: inFile.file, position: inFile.offset + 10 } })).rejects.toMatchObject({ code: 'POINT_UNREACHABLE' });
    await divergeStandby(standbyConn, expected);
    const plan = await promoteInto(standby, copy, { kind: 'end' });
    expect(plan.base.id).toBe(third.id);
    expect(plan.passedOverDamage?.file).toBe(inFile.file);
    expect(await tableChecksums(standbyConn)).toEqual(expected);
  });

  it('damage again after the second base, and the newest base damaged: refused to the end with the point the second base reaches, not the first damage\'s', async () => {
    const copy = join(dir, 'archive-two-damages');
    cpSync(archive, copy, { recursive: true });
    // D2: after the second base, in its own file (D1 stays in the first base's file).
    const d2 = damageAfterSecondBase(copy);
    damageBase(copy, third);
    const refused = await refusal(promoteInto(standby, copy, { kind: 'end' }));
    expect(refused?.code).toBe('ARCHIVE_DAMAGED');
    expect(refused?.message).toContain(`damaged at ${d2.file}:`);
    expect(refused?.message).toContain(third.id);
    // The point offered is the last intact transaction before D2, reached from the second base.
    const point = /--until-position (\S+):(\d+)/.exec(refused?.hint ?? '');
    expect(point?.[1]).toBe(second.binlog.file);
    expect(Number(point?.[2])).toBeGreaterThan(second.binlog.position);
    // verify names both: the first damage, and the one that cuts the archive's end off.
    const report = await inspectArchive(copy, { checksums: true });
    expect(report.firstBad?.file).toBe(damaged.file);
    expect(report.endDamage?.file).toBe(d2.file);
    const verify = await runHotspare(['verify', '--archive', copy]);
    expect(verify.stdout).toContain(`the archive's end is cut off by ${d2.file}:`);
  });

  it('two damages and every base after the first damaged: the point offered is one an intact base reaches, before the first damage', async () => {
    const copy = join(dir, 'archive-all-later-damaged');
    cpSync(archive, copy, { recursive: true });
    damageAfterSecondBase(copy);
    damageBase(copy, second);
    damageBase(copy, third);
    const refused = await refusal(promoteInto(standby, copy, { kind: 'end' }));
    expect(refused?.code).toBe('ARCHIVE_DAMAGED');
    // Not the point before D2, which only the damaged second base reaches.
    expect(refused?.message).toContain(`damaged at ${damaged.file}:`);
    const point = /--until-position (\S+):(\d+)/.exec(refused?.hint ?? '');
    expect(point?.[1]).toBe(damaged.file);
    expect(Number(point?.[2])).toBeLessThanOrEqual(damaged.offset);
    // The point offered restores: from the first base, up to the last transaction before D1.
    const plan = await promoteInto(standby, copy, { kind: 'position', at: { file: point?.[1] ?? '', position: Number(point?.[2]) } });
    expect(plan.base.id).toBe(first.id);
  });
});
