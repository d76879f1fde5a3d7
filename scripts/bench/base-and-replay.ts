import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createReadStream, createWriteStream, mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { compareBinlogNames } from '../../src/archive/archive-layout.js';
import { LocalArchiveFiles } from '../../src/archive/archive-files.js';
import { listBaseBackups, type BaseBackupMetadata } from '../../src/archive/base-catalog.js';
import { DEFAULT_PHYSICAL_SYNC_CONCURRENCY } from '../../src/config/defaults.js';
import { systemClock } from '../../src/platform/clock.js';
import { syncTree } from '../../src/platform/durable-file.js';
import { silentLogger } from '../../src/platform/logger.js';
import { takePhysicalBaseBackup } from '../../src/primary/base/take-physical-base-backup.js';
import { MariadbServer, writeClientDefaults } from '../../src/sandbox/mariadb-server.js';
import { tableChecksums } from '../../src/sandbox/table-checksums.js';
import { benchDir, median, removeBenchDir, say, type BenchSuite } from './bench-suite.js';
import { HOTSPARE_BIN, hotspareNodeFlags } from './hotspare-command.js';
import { buildBaseData, settleCheckpoint, writeAfterBase } from './base-data.js';

const execFileAsync = promisify(execFile);
/** `BENCH_BASE_SCALE=0.2` for a quick run; 1 is about 300 MB of tables. */
const SCALE = Number(process.env['BENCH_BASE_SCALE'] ?? '1');
/** Binlog written after the base, replayed by promote and by the manual pipeline. */
const REPLAY_BYTES = Math.round(120 * 1024 * 1024 * SCALE);
/** The same server settings for every server of the suite (a sandbox default pool is tiny). */
const SERVER_ARGS = ['--innodb-buffer-pool-size=256M', '--innodb-log-file-size=256M'];
const MB = 1024 * 1024;
/** A pause before each physical promote, after its input was evicted from the page cache (see there). */
const MEMORY_SETTLE_MS = 6_000;
/** Replay runs of ours and of the reference each, alternating which goes first. */
const REPLAY_PAIRS = Number(process.env['BENCH_REPLAY_PAIRS'] ?? '3');


async function timed<T>(fn: () => Promise<T>): Promise<{ seconds: number; value: T }> {
  const t = process.hrtime.bigint();
  const value = await fn();
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, value };
}

/** One step's time, as it happens (a long run shows where it is). */
function phase(name: string, seconds: number): void {
  say(`    ${name}: ${seconds.toFixed(2)} s`);
}

function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? folderBytes(path) : statSync(path).size;
  }
  return total;
}

async function mariabackupAvailable(): Promise<boolean> {
  try {
    await execFileAsync('mariabackup', ['--version']);
    return true;
  } catch {
    return false;
  }
}

/** Runs a command with stdin and/or stdout bound to files; rejects on a non-zero exit. */
async function run(command: string, args: string[], io: { stdin?: string; stdout?: string } = {}): Promise<void> {
  const child = spawn(command, args, { stdio: [io.stdin === undefined ? 'ignore' : 'pipe', io.stdout === undefined ? 'ignore' : 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const feeds: Promise<void>[] = [];
  if (io.stdin !== undefined && child.stdin !== null) feeds.push(pipeline(createReadStream(io.stdin), child.stdin));
  if (io.stdout !== undefined && child.stdout !== null) feeds.push(pipeline(child.stdout, createWriteStream(io.stdout)));
  await Promise.all(feeds);
  const code = await exited;
  if (code !== 0) throw new Error(`${command} ${args.slice(0, 2).join(' ')} exited with ${code}: ${stderr}`);
}

/** mariadb-binlog FILES | mariadb, the manual replay an operator would type. */
async function manualReplay(files: string[], startPosition: number, defaultsFile: string): Promise<void> {
  const binlog = spawn('mariadb-binlog', [`--start-position=${startPosition}`, ...files], { stdio: ['ignore', 'pipe', 'inherit'] });
  const client = spawn('mariadb', [`--defaults-file=${defaultsFile}`, '--binary-mode', '--max-allowed-packet=1G'], { stdio: ['pipe', 'ignore', 'inherit'] });
  const closed = (child: ChildProcess): Promise<number | null> => new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  const [, a, b] = await Promise.all([pipeline(binlog.stdout, client.stdin), closed(binlog), closed(client)]);
  if (a !== 0 || b !== 0) throw new Error(`manual replay failed: mariadb-binlog ${a}, mariadb ${b}`);
}

/** Drops files' pages from the page cache (`dd iflag=nocache count=0`: posix_fadvise DONTNEED). */
/** Every regular file under a folder. */
function filesUnder(root: string): string[] {
  return readdirSync(root, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

async function evictFromPageCache(paths: string[]): Promise<void> {
  for (const path of paths) await execFileAsync('dd', [`if=${path}`, 'iflag=nocache', 'count=0']);
}

/** Tables whose CHECKSUM TABLE differs from the expected ones (missing tables count too). */
function differing(expected: Record<string, string>, actual: Record<string, string>): string[] {
  const names = new Set([...Object.keys(expected), ...Object.keys(actual)]);
  return [...names].filter((n) => expected[n] !== actual[n]).sort();
}

async function dropApplicationDatabases(conn: Connection): Promise<void> {
  const [rows] = await conn.query<RowDataPacket[]>('SHOW DATABASES');
  for (const row of rows) {
    const name = String(Object.values(row)[0]);
    if (!['mysql', 'information_schema', 'performance_schema', 'sys'].includes(name)) await conn.query(`DROP DATABASE \`${name}\``);
  }
}

/** The seconds between two messages of a promote run's JSON log. */
function logSpan(stderr: string, from: string, to: string): number {
  const times = new Map<string, number>();
  for (const line of stderr.split('\n')) {
    try {
      const entry = JSON.parse(line) as { msg?: string; time?: number };
      if (entry.msg !== undefined && entry.time !== undefined) times.set(entry.msg, entry.time);
    } catch {
      // not a log line
    }
  }
  const a = times.get(from);
  const b = times.get(to);
  if (a === undefined || b === undefined) throw new Error(`promote log lacks "${from}" or "${to}"`);
  return (b - a) / 1000;
}

async function promoteCli(args: string[]): Promise<{ seconds: number; stderr: string }> {
  const { seconds, value } = await timed(() => execFileAsync(process.execPath, [...hotspareNodeFlags(), HOTSPARE_BIN, 'promote', ...args, '--json'], { maxBuffer: 64 * MB }));
  return { seconds, stderr: value.stderr };
}

/**
 * Issue 3, on the same data in one run: our base backup and restore against `mariabackup`
 * (backup; prepare + copy-back into a stopped standby's datadir + start) and against
 * `mariadb-dump | mariadb`; how many tables each restore gets wrong (CHECKSUM TABLE against the
 * primary at the backup point); and the replay of the same archived binlog by `hotspare promote`
 * against `mariadb-binlog FILES | mariadb`.
 */
export const baseAndReplaySuite: BenchSuite = {
  title: 'base backup, restore and replay (issue 3)',
  async run(report) {
    const dir = benchDir('base');
    const servers: MariadbServer[] = [];
    const start = async (name: string, serverId: number, binlog: boolean): Promise<MariadbServer> => {
      const server = await MariadbServer.start({ serverId, binlog, baseDir: join(dir, name), extraArgs: SERVER_ARGS });
      servers.push(server);
      return server;
    };
    try {
      const primary = await start('primary', 1, true);
      const standby = await start('standby', 2, false);
      const conn = await primary.connect();
      const standbyConn = await standby.connect();
      const primaryCnf = join(dir, 'primary.cnf');
      const standbyCnf = join(dir, 'standby.cnf');
      writeClientDefaults(primary, primaryCnf);
      writeClientDefaults(standby, standbyCnf);
      const standbyUrl = `mysql://root@localhost?socket=${standby.socketPath}`;

      const data = await buildBaseData(conn, SCALE);
      await conn.query('FLUSH BINARY LOGS');
      const atBase = await tableChecksums(conn);
      say(`  data: ${(data.bytes / MB).toFixed(0)} MB in ${data.tables} tables (~${(data.rows / 1e6).toFixed(1)} M rows; InnoDB, MyISAM FLOAT feeds, Aria)`);

      // 1. Backups of the same data (nothing writes until all three are taken).
      const archive = join(dir, 'archive');
      const config = join(dir, 'agent.json');
      // Two archives: the logical base goes to one, the physical base to the other (each gets
      // the same binlog from the agent below), so each restore starts from its own base.
      const physicalArchive = join(dir, 'archive-physical');
      writeFileSync(config, JSON.stringify({
        primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 },
        stateDir: join(dir, 'state'),
        replicas: [
          { name: 'bench', type: 'file', path: archive },
          { name: 'physical', type: 'file', path: physicalArchive },
        ],
      }));
      const oursBackup = await timed(() => execFileAsync(process.execPath, [...hotspareNodeFlags(), HOTSPARE_BIN, 'base', '--config', config, '--replica', 'bench'], { maxBuffer: 64 * MB }));
      phase('hotspare base', oursBackup.seconds);
      const [base] = await listBaseBackups(new LocalArchiveFiles(archive));
      if (base === undefined) throw new Error('hotspare base left no base backup');
      const oursBytes = base.files.reduce((n, f) => n + f.bytes, 0);

      const haveMariabackup = await mariabackupAvailable();
      const physical = join(dir, 'mariabackup');
      // mariabackup --backup leaves its files in the page cache: it never fsyncs them, so a crash
      // just after "completed OK!" can lose the backup. Ours is fsynced before it counts, as is the
      // restore reference below (its copy-back is synced): the backup targets are judged against
      // mariabackup with its folder then synced (mbBackup), and the figure without is printed beside.
      let mbBackup: number | undefined;
      let mbBackupUnsynced: number | undefined;
      if (haveMariabackup) {
        await settleCheckpoint(conn);
        mbBackupUnsynced = (await timed(() => run('mariabackup', ['--backup', '--user=root', `--socket=${primary.socketPath}`, `--target-dir=${physical}`]))).seconds;
        const mbSynced = (await timed(() => syncTree(physical, DEFAULT_PHYSICAL_SYNC_CONCURRENCY))).seconds;
        mbBackup = mbBackupUnsynced + mbSynced;
        phase('mariabackup --backup', mbBackupUnsynced);
        phase('  then its folder synced', mbSynced);
      } else {
        say('  mariabackup: not installed (package mariadb-backup); that reference is unavailable in this run');
      }

      // Ours, physical: `hotspare base --method physical` (mariabackup streamed through ArchiveFiles
      // into the archive), right after the reference on the same data; then the same stream stored
      // gzip-compressed (Z_RLE, level 1) and as it is, side by side, to choose how it is kept.
      let oursPhysical: { seconds: number; bytes: number; base: BaseBackupMetadata } | undefined;
      const physicalStorage: Array<{ compression: 'gzip' | 'none'; seconds: number; bytes: number }> = [];
      if (haveMariabackup) {
        await settleCheckpoint(conn);
        const run = await timed(() => execFileAsync(process.execPath, [...hotspareNodeFlags(), HOTSPARE_BIN, 'base', '--config', config, '--replica', 'physical', '--method', 'physical'], { maxBuffer: 64 * MB }));
        const [physicalBase] = await listBaseBackups(new LocalArchiveFiles(physicalArchive));
        if (physicalBase === undefined) throw new Error('hotspare base --method physical left no base backup');
        oursPhysical = { seconds: run.seconds, bytes: physicalBase.files.reduce((n, f) => n + f.bytes, 0), base: physicalBase };
        phase('hotspare base --method physical', run.seconds);
        for (const compression of ['gzip', 'none'] as const) {
          const scratch = new LocalArchiveFiles(join(dir, `physical-${compression}`));
          const taken = await timed(() =>
            takePhysicalBaseBackup({ primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: 4242 }, files: scratch, clock: systemClock, logger: silentLogger(), compression }),
          );
          physicalStorage.push({ compression, seconds: taken.seconds, bytes: taken.value.files.reduce((n, f) => n + f.bytes, 0) });
          phase(`physical stream stored ${compression === 'gzip' ? 'gzip (Z_RLE, level 1)' : 'uncompressed'}`, taken.seconds);
          await rm(join(dir, `physical-${compression}`), { recursive: true, force: true });
        }
      }

      const databases = ['app', 'feeds'];
      const dumpFile = join(dir, 'dump.sql');
      const dumpBackup = await timed(() =>
        run('mariadb-dump', [`--defaults-file=${primaryCnf}`, '--single-transaction', '--master-data=2', '--routines', '--triggers', '--events', '--databases', ...databases], { stdout: dumpFile }),
      );
      phase('mariadb-dump', dumpBackup.seconds);

      // 2. The binlog after the base, archived by the real agent.
      const agent = spawn(process.execPath, [...hotspareNodeFlags(), HOTSPARE_BIN, 'agent', '--config', config], { stdio: ['ignore', 'ignore', 'ignore'] });
      await writeAfterBase(conn, REPLAY_BYTES);
      const atEnd = await tableChecksums(conn);
      const [[head]] = (await conn.query('SHOW MASTER STATUS')) as [RowDataPacket[], unknown];
      const headFile = String(head?.['File']);
      const headPosition = Number(head?.['Position']);
      for (;;) {
        if (agent.exitCode !== null) throw new Error('the agent exited during the benchmark');
        const sizes = await Promise.all([archive, physicalArchive].map((a) => archivedSize(a, headFile)));
        if (sizes.every((size) => size !== undefined && size >= headPosition)) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      agent.kill('SIGTERM');
      await new Promise((r) => agent.once('exit', r));

      // 3. Restores. Ours: promote to the base's own position (verify + restore, nothing to replay).
      const oursRestore = await promoteCli(['--archive', archive, '--target', standbyUrl, '--until-position', `${base.binlog.file}:${base.binlog.position}`]);
      phase('hotspare promote to the base point', oursRestore.seconds);
      const oursWrong = differing(atBase, await tableChecksums(standbyConn));

      // mariadb-dump | mariadb into the same standby.
      await dropApplicationDatabases(standbyConn);
      const dumpRestore = await timed(() => run('mariadb', [`--defaults-file=${standbyCnf}`, '--binary-mode', '--max-allowed-packet=1G'], { stdin: dumpFile }));
      phase('mariadb < dump', dumpRestore.seconds);
      const dumpWrong = differing(atBase, await tableChecksums(standbyConn));

      // mariabackup: prepare, copy back into a stopped standby's empty datadir, start it.
      let mbRestore: number | undefined;
      let mbRestoreUnsynced: number | undefined;
      let mbWrong: string[] | undefined;
      if (haveMariabackup && mbBackup !== undefined) {
        const physicalStandby = await start('physical-standby', 3, false);
        await physicalStandby.stop();
        // The backup is read from disk, as ours is below (each side restores a base taken a while
        // ago, and starts from the same memory state): hot, the copy-back read it from the page
        // cache that --backup had just filled, while ours read its stream cold.
        await evictFromPageCache(filesUnder(physical));
        await new Promise((r) => setTimeout(r, MEMORY_SETTLE_MS));
        const prepare = await timed(() => run('mariabackup', ['--prepare', `--target-dir=${physical}`]));
        // The datadir is moved aside, not removed (mariabackup wants an empty one), as promote
        // keeps the previous datadir: removing it would hand the copy-back memory just freed,
        // which on this VM is several times cheaper to write than memory free for a while (the
        // balloon device returns that to the host; see README, Benchmarks).
        renameSync(physicalStandby.datadir, `${physicalStandby.datadir}.previous`);
        mkdirSync(physicalStandby.datadir);
        const copyBack = await timed(() => run('mariabackup', ['--copy-back', `--target-dir=${physical}`, `--datadir=${physicalStandby.datadir}`]));
        // copy-back leaves much of its copy in the page cache only; ours is on disk before its
        // server starts, so the reference is timed to the same point (both figures are shown).
        // The copy's own files and folders, as promote syncs its staging (a global sync would
        // also flush what the earlier steps left dirty).
        const synced = await timed(() => syncTree(physicalStandby.datadir, DEFAULT_PHYSICAL_SYNC_CONCURRENCY));
        const started = await timed(() => physicalStandby.restart());
        mbRestore = prepare.seconds + copyBack.seconds + synced.seconds + started.seconds;
        mbRestoreUnsynced = mbRestore - synced.seconds;
        say(`  mariabackup restore: prepare ${prepare.seconds.toFixed(2)} s, copy-back ${copyBack.seconds.toFixed(2)} s, sync ${synced.seconds.toFixed(2)} s, server start ${started.seconds.toFixed(2)} s`);
        const physicalConn = await physicalStandby.connect();
        mbWrong = differing(atBase, await tableChecksums(physicalConn));
        await physicalConn.end();
      }

      // Ours, physical: promote into a standby from the physical base, to its own point (prepare
      // beside the datadir, SHUTDOWN, swap, start; nothing to replay), like the reference above;
      // then the same with `--extractor mbstream` into another fresh standby, so each run shows
      // what our stream extractor changes in the whole restore (this one runs second).
      const physicalPromote = async (base: BaseBackupMetadata, name: string, serverId: number, label: string, extra: string[]): Promise<{ seconds: number; restoring: number; wrong: string[] }> => {
        const target = await start(name, serverId, false);
        // Each promote reads the archive cold, as the promotion of a base taken a while ago does
        // (the archive wrote the stream past the page cache), and writes into memory in the same
        // state: the pages evicted are given a few seconds to go back to the host first. Without
        // both, the second promote read what the first had cached, or wrote into the pages the
        // eviction had just freed (cheap on this VM; see "Large buffered writes"), and looked
        // 0.3-0.45 s faster whichever extractor it ran.
        const binlogs = (await readdir(join(physicalArchive, 'binlog'))).map((f) => join(physicalArchive, 'binlog', f));
        await evictFromPageCache([join(physicalArchive, 'base', base.id, base.physical?.stream ?? ''), ...binlogs]);
        await new Promise((r) => setTimeout(r, MEMORY_SETTLE_MS));
        const result = await promoteCli([
          '--archive', physicalArchive,
          '--target', `mysql://root@localhost?socket=${target.socketPath}`,
          '--until-position', `${base.binlog.file}:${base.binlog.position}`,
          '--target-datadir', target.datadir,
          '--target-start', target.startCommand(),
          ...extra,
        ]);
        // From the start of planning: the staging runs beside the archive's verification.
        const restoring = logSpan(result.stderr, 'planning the promotion', 'base restored');
        phase(`hotspare promote from the physical base, ${label} (verify + restore ${restoring.toFixed(2)} s)`, result.seconds);
        // Where the restore's time goes, from promote's own log: the staging of the physical
        // base runs beside the archive's verification, so these are instants (seconds after
        // planning began), in the order they happened, each with the time since the one before.
        const milestones = [
          ['archive binlog scanned', 'archive verified'],
          ['promotion planned', 'planned'],
          ['physical base extracted; preparing it while its checksum is checked', 'extracted'],
          ['physical base stream checksum verified', 'sha256 checked'],
          ['physical base prepared and its checksum verified; making it durable', 'prepared (mariabackup --prepare)'],
          ['physical base prepared', 'synced to disk'],
          ['target server stopped', 'SHUTDOWN done'],
          ['datadir replaced; the previous one is kept', 'swapped'],
          ['target server started on the restored datadir', 'started'],
        ] as const;
        const timeline = milestones
          .map(([msg, name]) => ({ name, at: logSpan(result.stderr, 'planning the promotion', msg) }))
          .sort((a, b) => a.at - b.at);
        const lastAt = timeline[timeline.length - 1]?.at ?? 0;
        say(`  physical restore timeline, ${label} (s after planning began): ${timeline.map((m, i) => `${m.name} ${m.at.toFixed(2)} (+${(m.at - (timeline[i - 1]?.at ?? 0)).toFixed(2)})`).join(', ')}`);
        // The rest: node's start and the connection before, the steps after the start, the exit.
        say(`  physical restore outside that: ${(result.seconds - lastAt).toFixed(2)} s (node start, connect, read_only, exit)`);
        const targetConn = await target.connect();
        const wrong = differing(atBase, await tableChecksums(targetConn));
        await targetConn.end();
        return { seconds: result.seconds, restoring, wrong };
      };
      let oursPhysicalRestore: { seconds: number; restoring: number; wrong: string[] } | undefined;
      let mbstreamPhysicalRestore: { seconds: number; restoring: number; wrong: string[] } | undefined;
      if (oursPhysical !== undefined) {
        oursPhysicalRestore = await physicalPromote(oursPhysical.base, 'ours-physical-standby', 4, 'hotspare\'s extractor', []);
        mbstreamPhysicalRestore = await physicalPromote(oursPhysical.base, 'mbstream-physical-standby', 5, 'mbstream -x', ['--extractor', 'mbstream']);
      }

      // 4. Replay of the same archived binlog, ours (a whole promotion to the end, the replay
      // timed from its log) against mariadb-binlog FILES | mariadb, each into a fresh standby just
      // restored from the same base (physical when mariabackup is here: 3 s a restore instead of
      // 25, so there is time for pairs), in pairs that alternate which goes first; medians compared.
      const replayArchive = oursPhysical === undefined ? archive : physicalArchive;
      const replayBase = oursPhysical?.base ?? base;
      const replayFiles = (await readdir(join(replayArchive, 'binlog'))).filter((f) => compareBinlogNames(f, replayBase.binlog.file) >= 0).sort(compareBinlogNames);
      const replayBytes = replayFiles.reduce((n, f) => n + statSync(join(replayArchive, 'binlog', f)).size, 0) - replayBase.binlog.position;
      const pairs = oursPhysical === undefined ? 1 : REPLAY_PAIRS;
      say(`  replay: ${(replayBytes / MB).toFixed(0)} MB of binlog in ${replayFiles.length} file(s) after the ${oursPhysical === undefined ? 'logical' : 'physical'} base, ${pairs} pair(s)`);
      const replays: Record<'ours' | 'reference', number[]> = { ours: [], reference: [] };
      const replayWrong: Record<'ours' | 'reference', string[]> = { ours: [], reference: [] };
      let replayTargets = 0;
      const replayOnce = async (kind: 'ours' | 'reference'): Promise<void> => {
        replayTargets += 1;
        const target = await start(`replay-${replayTargets}`, 10 + replayTargets, false);
        try {
          const args = ['--archive', replayArchive, '--target', `mysql://root@localhost?socket=${target.socketPath}`];
          if (oursPhysical !== undefined) args.push('--target-datadir', target.datadir, '--target-start', target.startCommand());
          let seconds: number;
          if (kind === 'ours') {
            const promoted = await promoteCli(args);
            seconds = logSpan(promoted.stderr, 'base restored', 'binlog replayed');
          } else {
            await promoteCli([...args, '--until-position', `${replayBase.binlog.file}:${replayBase.binlog.position}`]);
            const cnf = join(dir, `replay-${replayTargets}.cnf`);
            writeClientDefaults(target, cnf);
            seconds = (await timed(() => manualReplay(replayFiles.map((f) => join(replayArchive, 'binlog', f)), replayBase.binlog.position, cnf))).seconds;
          }
          phase(kind === 'ours' ? 'hotspare promote to the end, replay' : 'mariadb-binlog | mariadb', seconds);
          replays[kind].push(seconds);
          const targetConn = await target.connect();
          const wrong = differing(atEnd, await tableChecksums(targetConn));
          await targetConn.end();
          replayWrong[kind] = [...new Set([...replayWrong[kind], ...wrong])];
        } finally {
          await target.destroy();
        }
      };
      for (let pair = 0; pair < pairs; pair += 1) {
        for (const kind of pair % 2 === 0 ? (['ours', 'reference'] as const) : (['reference', 'ours'] as const)) await replayOnce(kind);
      }
      const oursReplaySeconds = median(replays.ours);
      const manualReplaySeconds = median(replays.reference);
      const promoteWrong = replayWrong.ours;
      const manualWrong = replayWrong.reference;

      say(`  base sizes: hotspare ${(oursBytes / MB).toFixed(0)} MB (gzip), mariabackup ${haveMariabackup ? (folderBytes(physical) / MB).toFixed(0) : '-'} MB, mariadb-dump ${(statSync(dumpFile).size / MB).toFixed(0)} MB`);
      say(`  hotspare base: ${base.tables.length} tables, global read lock held ${base.lockHeldMs} ms${base.tableLockHeldMs === undefined ? ' (non-transactional tables copied under it)' : `, non-transactional tables read-locked ${base.tableLockHeldMs} ms`}`);
      if (oursWrong.length > 0) say(`  hotspare restore differs in: ${oursWrong.join(', ')}`);
      say(`  mariadb-dump restore differs in: ${dumpWrong.length === 0 ? 'nothing' : dumpWrong.join(', ')}`);
      if (mbWrong !== undefined && mbWrong.length > 0) say(`  mariabackup restore differs in: ${mbWrong.join(', ')}`);
      if (manualWrong.length > 0 || promoteWrong.length > 0) say(`  replay differs from the primary: manual ${manualWrong.join(', ') || '-'}; promote ${promoteWrong.join(', ') || '-'}`);

      const within2x = (ours: number, ref: number | undefined): boolean | undefined => (ref === undefined ? undefined : ours <= 2 * ref);
      const oursRestoreSeconds = logSpan(oursRestore.stderr, 'promotion planned', 'base restored');
      say(`  hotspare restore: ${oursRestore.seconds.toFixed(2)} s for the whole promote process, of which restoring ${oursRestoreSeconds.toFixed(2)} s`);
      // The 2x-of-mariabackup target is judged on the physical method (below), which copies files
      // as mariabackup does. The logical method renders every row as exact SQL on the server and
      // loads it back through the SQL layer: its peer is mariadb-dump | mariadb (further below);
      // beside mariabackup it is shown as a ratio only.
      say('  the logical method beside mariabackup (a ratio, no target: the 2x target is judged on the physical method; the logical one\'s peer is mariadb-dump):');
      report({ name: 'base backup, logical method', unit: 's', ours: oursBackup.seconds, reference: mbBackup, referenceName: 'mariabackup --backup + sync', higherIsBetter: false });
      report({ name: 'base restore, logical method (promote to the base point)', unit: 's', ours: oursRestore.seconds, reference: mbRestore, referenceName: 'mariabackup prepare + copy-back + sync + start', higherIsBetter: false });
      if (oursPhysical !== undefined && oursPhysicalRestore !== undefined) {
        say(`  hotspare physical base: ${(oursPhysical.bytes / MB).toFixed(0)} MB, commits blocked ${oursPhysical.base.lockHeldMs} ms; restore differs in: ${oursPhysicalRestore.wrong.length === 0 ? 'nothing' : oursPhysicalRestore.wrong.join(', ')}`);
        for (const s of physicalStorage) say(`  physical stream ${s.compression}: ${s.seconds.toFixed(2)} s, ${(s.bytes / MB).toFixed(0)} MB`);
        report({ name: 'physical base backup', unit: 's', ours: oursPhysical.seconds, reference: mbBackup, referenceName: 'mariabackup --backup + sync', higherIsBetter: false, target: '<= 2x mariabackup', met: within2x(oursPhysical.seconds, mbBackup) });
        report({ name: 'physical base backup', unit: 's', ours: oursPhysical.seconds, reference: mbBackupUnsynced, referenceName: 'mariabackup --backup, not synced', higherIsBetter: false });
        report({ name: 'physical base restore (promote to the base point)', unit: 's', ours: oursPhysicalRestore.seconds, reference: mbRestore, referenceName: 'mariabackup prepare + copy-back + sync + start', higherIsBetter: false, target: '<= 2x mariabackup', met: within2x(oursPhysicalRestore.seconds, mbRestore) });
        report({ name: 'physical base restore (promote to the base point)', unit: 's', ours: oursPhysicalRestore.seconds, reference: mbRestoreUnsynced, referenceName: 'mariabackup prepare + copy-back + start, not synced', higherIsBetter: false });
        if (mbstreamPhysicalRestore !== undefined) {
          report({ name: 'physical base restore, hotspare\'s stream extractor against --extractor mbstream (run second)', unit: 's', ours: oursPhysicalRestore.seconds, reference: mbstreamPhysicalRestore.seconds, referenceName: 'promote --extractor mbstream', higherIsBetter: false });
          if (mbstreamPhysicalRestore.wrong.length > 0) say(`  the restore with mbstream -x differs in: ${mbstreamPhysicalRestore.wrong.join(', ')}`);
        }
        const physicalBoth = oursPhysical.seconds + oursPhysicalRestore.seconds;
        const mbTotal = mbBackup === undefined || mbRestore === undefined ? undefined : mbBackup + mbRestore;
        report({ name: 'physical base backup + restore', unit: 's', ours: physicalBoth, reference: mbTotal, referenceName: 'mariabackup', higherIsBetter: false, target: '<= 2x mariabackup', met: within2x(physicalBoth, mbTotal) });
        report({ name: 'tables differing from the primary after the physical restore', unit: 'tables', ours: oursPhysicalRestore.wrong.length, higherIsBetter: false, target: '0', met: oursPhysicalRestore.wrong.length === 0 });
        const gzip = physicalStorage.find((s) => s.compression === 'gzip');
        const none = physicalStorage.find((s) => s.compression === 'none');
        if (gzip !== undefined && none !== undefined) {
          report({ name: 'physical stream stored gzip (Z_RLE, level 1), time', unit: 's', ours: gzip.seconds, reference: none.seconds, referenceName: 'stored uncompressed', higherIsBetter: false });
          report({ name: 'physical stream stored gzip (Z_RLE, level 1), size', unit: 'MB', ours: gzip.bytes / MB, reference: none.bytes / MB, referenceName: 'stored uncompressed', higherIsBetter: false });
        }
      }
      const oursBoth = oursBackup.seconds + oursRestore.seconds;
      const mbBoth = mbBackup === undefined || mbRestore === undefined ? undefined : mbBackup + mbRestore;
      report({ name: 'base backup + restore, logical method', unit: 's', ours: oursBoth, reference: mbBoth, referenceName: 'mariabackup', higherIsBetter: false });
      report({ name: 'base backup, logical method', unit: 's', ours: oursBackup.seconds, reference: dumpBackup.seconds, referenceName: 'mariadb-dump --single-transaction', higherIsBetter: false });
      report({ name: 'base restore, logical method', unit: 's', ours: oursRestore.seconds, reference: dumpRestore.seconds, referenceName: 'mariadb < dump', higherIsBetter: false });
      report({ name: 'tables differing from the primary after restore', unit: 'tables', ours: oursWrong.length, reference: dumpWrong.length, referenceName: 'mariadb-dump | mariadb', higherIsBetter: false, target: '0', met: oursWrong.length === 0 });
      if (mbWrong !== undefined) report({ name: 'tables differing from the primary after restore', unit: 'tables', ours: oursWrong.length, reference: mbWrong.length, referenceName: 'mariabackup', higherIsBetter: false });
      report({ name: `binlog replay of the same archive, median of ${pairs}`, unit: 's', ours: oursReplaySeconds, reference: manualReplaySeconds, referenceName: 'mariadb-binlog FILES | mariadb', higherIsBetter: false, target: '<= 1x', met: oursReplaySeconds <= manualReplaySeconds && promoteWrong.length === 0 });
      await conn.end();
      await standbyConn.end();
    } finally {
      for (const server of servers) await server.destroy().catch(() => undefined);
      removeBenchDir(dir);
    }
  },
};

async function archivedSize(archive: string, file: string): Promise<number | undefined> {
  try {
    return statSync(join(archive, 'binlog', file)).size;
  } catch {
    return undefined;
  }
}
