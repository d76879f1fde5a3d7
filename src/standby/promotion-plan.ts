import { join } from 'node:path';
import { notAnArchive, samePrimary, describePrimary, readArchiveIdentity, type ArchiveIdentity } from '../archive/archive-identity.js';
import { readLastHeard, type LastHeardRecord } from '../archive/last-heard.js';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { listBaseBackups, type BaseBackupMetadata } from '../archive/base-catalog.js';
import { compareBinlogPositions, formatBinlogPosition, type BinlogPosition } from '../core/binlog-position.js';
import { HotspareError } from '../core/errors.js';
import { baseStartsOf, describeDamage, heldDurably, scanArchive, type ArchiveDamage, type ArchiveScan, type CommitPoint } from './archive-scan.js';
import { checkBaseFiles } from './base-checksums.js';
import type { ReplayRange } from './binlog-replay.js';
import type { Logger } from '../platform/logger.js';
import { checkBlockIds, isSourceSkip, readSpoolSources, spoolTreeAt, unwatchedWindowWords, type PlannedSource, type SpoolPin } from './spool-restore.js';
import { StopPointResolver, describeTarget, refuseBeforeArchiveStart, type TargetSpec } from './stop-point.js';
import type { TargetServer } from './target-server.js';
import { planPhysicalRestore, type PhysicalRestorePlan, type StreamExtractor } from './physical-restore.js';
import { PROMOTED_PATH } from '../archive/promotion-fence.js';
import { childLogger } from '../platform/logger.js';

/** One step of a promotion, in order; `skipped` steps say why (e.g. nothing to replay). */
export interface PromotionStep {
  name:
    | 'read-only-on'
    | 'drop-replaced-databases'
    | 'restore-base'
    | 'prepare-physical-base'
    | 'stop-target'
    | 'swap-datadir'
    | 'start-target'
    | 'replay-binlog'
    | 'restore-spool-files'
    | 'read-only-off'
    | 'fence-archive'
    | 'run-hooks';
  run: boolean;
  detail: string;
}

export interface TransactionInfo {
  file: string;
  position: number;
  gtid: string | undefined;
  commitTime: string;
}

/** Everything a promotion will do, decided before anything changes (what --dry-run prints). */
export interface PromotionPlan {
  archive: string;
  primary: string;
  target: string;
  targetPoint: string;
  base: { id: string; method: BaseBackupMetadata['method']; binlog: BinlogPosition; gtid: string; finishedAt: string };
  /** A physical base: where it is prepared, the datadir it replaces and where the old one goes. */
  physical: PhysicalRestorePlan | undefined;
  replay: ReplayRange[];
  replayBytes: number;
  /** Replay (or the base alone) ends here: right after `lastTransaction`. */
  stopAt: BinlogPosition;
  lastTransaction: TransactionInfo | undefined;
  /** Damage or a gap in the archive after the restore point (a promotion to the end is refused when there is one: ARCHIVE_DAMAGED). */
  stoppedBeforeDamage: ArchiveDamage | undefined;
  /** Newer base backups passed over because their files are damaged (`id: problems`). */
  damagedBases: string[];
  /** Damage in binlog older than the chain this promotion restores from (a base after it restores everything later): not needed, but older points in time are lost with it until mended. The first of `passedOverDamages`. */
  passedOverDamage: ArchiveDamage | undefined;
  /** Every damage passed over, in the archive's order. */
  passedOverDamages: ArchiveDamage[];
  /** An incomplete transaction at the archive's tail, not applied. */
  partialTailCut: { file: string; from: number; to: number } | undefined;
  /**
   * When the archive last heard from the primary, how that is known, and whether the archive
   * then held everything the primary had written (so only later transactions can be missing).
   */
  lastHeard: { time: string; source: string; caughtUp: boolean } | undefined;
  /**
   * From the last applied commit to the last word from the primary (end-of-archive promotions);
   * 0 when the archive had caught up with the primary when it last heard from it.
   */
  lossWindowSeconds: number | undefined;
  replaceDatabases: string[];
  steps: PromotionStep[];
  /** Spool files: restored as of the same point as the database, then the hooks run. */
  files: FilesPlan;
}

/** Which spool sources promotion restores, where, and as of when. */
export interface FilesPlan {
  /** Restore every source's history up to this instant (ms); undefined: its newest durable state. */
  untilMs: number | undefined;
  /** The same point in words, for the report. */
  asOf: string;
  /** Promotion to the archive's end: a damaged spool journal is restored to its last intact state, as the binlog is replayed to its last intact event. */
  stopBeforeDamage: boolean;
  /**
   * `skipped`: why the source is left as it is (no complete tree at the point). `pointMs` and
   * `pin`: the last change the restore takes, fixed here, so that changes a still-running receiver
   * writes during the replay are not restored with a database that lacks their transactions.
   * `lostAfter`: its journal is damaged after pointMs. `uncertainWhy`: the point lies in a window
   * nobody watched the source (SPOOL_POINT_UNCERTAIN), in words.
   */
  sources: Array<{ name: string; restoreTo: string; hooks: number; hookCommands: string[]; skipped?: string; skipCode?: string; pointMs?: number; pin?: SpoolPin; lostAfter?: string; uncertainWhy?: string }>;
}

export interface PlanInput {
  archiveRoot: string;
  target: TargetSpec;
  server: TargetServer;
  replace: boolean;
  filesRoot: string | undefined;
  /** A physical base replaces this datadir (--target-datadir) ... */
  targetDatadir?: string | undefined;
  /** ... and starts the server again with this shell command (--target-start). */
  targetStart?: string | undefined;
  /** Who extracts a physical base's stream (--extractor). */
  extractor?: StreamExtractor | undefined;
  /**
   * The caller checks a physical base's stream against its sha256 while staging it, before the
   * target changes (a real promotion; a dry run checks it here).
   */
  checksumsWhileStaging?: boolean;
  /** Bases found damaged while an earlier attempt staged them (`id: problems`): passed over. */
  damagedWhileStaging?: ReadonlyMap<string, string>;
  /** --no-hooks: the post-promotion hooks are listed, not run (a rehearsal into a scratch server). */
  skipHooks?: boolean;
  /**
   * --fence: this is a failover, so the archive is fenced against its old primary (to the end
   * only). Asked for, never assumed: a promotion from a live archive (a rehearsal into a scratch
   * server, a test of the backups) that fenced it would shut the running primary's agent out of
   * its own archive at its next reconnect.
   */
  fence?: boolean;
  logger: Logger;
}

/** What the archive says about a target, before any server is looked at (planPromotion, planFilesOnly). */
interface ResolvedPoint {
  identity: ArchiveIdentity;
  scan: ArchiveScan;
  resolver: StopPointResolver;
  heard: LastHeardRecord | undefined;
  newestEventS: number;
  /** The newest usable base whose files check out. */
  chosen: BaseBackupMetadata;
  /** Newer usable bases passed over because they are damaged (`id: problems`). */
  damagedBases: string[];
}

interface ResolveInput {
  archiveRoot: string;
  target: TargetSpec;
  logger: Logger;
  /** Runs once the archive's identity is known, before its binlog is read (refuses a wrong target early). */
  beforeScan?: (identity: ArchiveIdentity) => Promise<void>;
  /** A base's problems (empty: intact); each base is asked at most once. */
  checkBase: (base: BaseBackupMetadata) => Promise<string[]>;
  /**
   * The same, now, for a base whose check checkBase defers (a physical base's stream, checked
   * while it is staged): a point offered by a refusal must be one an intact base reaches. checkBase when absent.
   */
  checkBaseNow?: (base: BaseBackupMetadata) => Promise<string[]>;
}

/**
 * Scans the archive for the target and chooses the base, with every refusal a promotion makes:
 * the chain (each event's CRC32, the position chain, the files' continuity, passing over damage
 * that an intact later base restarts), the point (reachable, not inside damage or a gap, not
 * past the last word from the primary), and the newest usable base whose files check out. When
 * every base after passed-over damage is damaged itself, those bases are taken out of the
 * restart candidates and the archive is scanned again, until a base is chosen or the damage
 * ends the chain (ARCHIVE_DAMAGED to the end, with the point an intact base still reaches).
 */
async function resolvePoint(input: ResolveInput): Promise<ResolvedPoint> {
  const { archiveRoot, target } = input;
  const identity = await readArchiveIdentity(archiveRoot);
  if (identity === undefined) {
    throw notAnArchive(archiveRoot);
  }
  await input.beforeScan?.(identity);
  const bases = await listBaseBackups(new LocalArchiveFiles(archiveRoot));
  if (bases.length === 0) {
    throw new HotspareError('NO_BASE', `the archive ${archiveRoot} holds no base backup`, { hint: 'run `hotspare base` on the primary (the agent takes one by itself when an archive has none)' });
  }
  /** Each base's problems as a check found them, asked at most once per base and check; the first finding of damage is logged. */
  const problemsOf = new Map<string, string[]>();
  const problemsNowOf = new Map<string, string[]>();
  const askOnce =
    (check: (base: BaseBackupMetadata) => Promise<string[]>, found: Map<string, string[]>, other: Map<string, string[]>, consequence: string) =>
    async (base: BaseBackupMetadata): Promise<string[]> => {
      let problems = found.get(base.id);
      if (problems === undefined) {
        problems = await check(base);
        found.set(base.id, problems);
        if (problems.length > 0 && (other.get(base.id)?.length ?? 0) === 0) input.logger.warn({ code: 'BASE_DAMAGED', base: base.id, problems }, `base backup ${base.id} is damaged${consequence}`);
      }
      return problems;
    };
  const problems = askOnce(input.checkBase, problemsOf, problemsNowOf, '; trying an older one');
  const problemsNow = input.checkBaseNow === undefined ? problems : askOnce(input.checkBaseNow, problemsNowOf, problemsOf, '');
  /** The excluded bases that are damaged (a chain's restart base may be excluded for lying past a damage it could not restart at). */
  const damagedExcluded = (): string[] => [...excluded].filter((id) => (problemsNowOf.get(id)?.length ?? 0) > 0 || (problemsOf.get(id)?.length ?? 0) > 0);
  /** Bases found damaged: no restart after damage is taken at them. */
  const excluded = new Set<string>();
  const heard = await readLastHeard(archiveRoot);
  const unreachable = (why: string): never => {
    throw new HotspareError('POINT_UNREACHABLE', `the archive cannot reach ${describeTarget(target)}: ${why}`, {
      hint: 'run `hotspare status` for what the archive covers; choose a point inside it, or omit --until to restore to its end',
    });
  };
  for (;;) {
    try {
      const resolver = new StopPointResolver(target);
      const scan = await scanArchive(archiveRoot, {
        verifyChecksums: true,
        ...heldDurably(heard),
        onCommit: (c) => resolver.observe(c),
        // Damage with a base after it does not end the archive for a target past it: the chain
        // restarts at that base (the target settled before the damage, or a position at or before
        // it, is reached by what precedes it, as before).
        restartAfterDamage: {
          // For a position, only bases in its file or before can serve it (a restart in a later file
          // starts past it; one in its file at the file's start, and the resolver refuses a point before that).
          bases: baseStartsOf(bases.filter((b) => !excluded.has(b.id) && (target.kind !== 'position' || compareBinlogPositions({ file: b.binlog.file, position: 0 }, { file: target.at.file, position: 0 }) <= 0))),
          wanted: (damage) => !resolver.settled && !(target.kind === 'position' && compareBinlogPositions(target.at, { file: damage.file, position: damage.offset }) <= 0),
        },
      });
      if (!scan.files.length) throw new HotspareError('ARCHIVE_EMPTY', `the archive ${archiveRoot} holds no binlog`, { hint: 'let the agent stream to it first' });
      input.logger.info({ files: scan.files.length, damage: scan.damage !== undefined }, 'archive binlog scanned');
      const newestEventS = scan.newestEventS ?? 0;
      if (target.kind === 'position') {
        // Positions order by the file's number alone: another server's file name (or a typo in
        // the base name) would silently stand for this archive's file of that number.
        const stem = (name: string): string => name.slice(0, name.lastIndexOf('.'));
        const stems = [...new Set(scan.files.map((f) => stem(f.name)))];
        if (stems.length > 0 && !stems.includes(stem(target.at.file))) {
          unreachable(`${target.at.file} is not a file of this archive, whose binlog files are named ${stems.map((x) => `${x}.NNNNNN`).join(', ')}`);
        }
      }
      if (!resolver.settled) {
        // A position at or before the damage is reached by what precedes it, all intact (the point
        // ARCHIVE_DAMAGED's hint names); any other point past the last intact commit is not.
        const beforeDamage = scan.damage !== undefined && target.kind === 'position' && compareBinlogPositions(target.at, { file: scan.damage.file, position: scan.damage.offset }) <= 0;
        if (scan.damage !== undefined && target.kind !== 'end' && !beforeDamage) unreachable(`the archive is damaged at ${describeDamage(scan.damage)} before it`);
        if (target.kind === 'gtid') unreachable('no archived transaction has that GTID');
        if (target.kind === 'time' && target.atMs > newestEventS * 1000) {
          // Past the newest event is still inside the archive when the agent, caught up, heard from
          // the primary at or after the target: nothing was committed between that event and then,
          // so the archive's last transaction is the last one at or before the target (an idle
          // primary: its heartbeats kept coming). Without that record nobody knows, and replaying
          // to the end would silently promise a point the archive may not hold.
          const end = scan.files[scan.files.length - 1];
          // Binlog timestamps are whole seconds: a commit later in T's own second still counts as
          // "at or before T", so the agent must have heard the primary after that second ended.
          const secondEndMs = (Math.floor(target.atMs / 1000) + 1) * 1000;
          const heardAtEnd =
            heard !== undefined &&
            heard.caughtUp &&
            heard.atMs >= secondEndMs &&
            end !== undefined &&
            heard.durable !== undefined &&
            compareBinlogPositions({ file: end.name, position: end.cleanEnd }, heard.durable) >= 0;
          if (!heardAtEnd) {
            const since = heard === undefined ? '' : `, and the primary was last heard at ${heard.at}${heard.caughtUp ? '' : ' with the archive behind it'}`;
            unreachable(`its newest event is from ${new Date(newestEventS * 1000).toISOString()}${since}`);
          }
        }
        if (target.kind === 'position') {
          const end = scan.files[scan.files.length - 1];
          if (end !== undefined && compareBinlogPositions(target.at, { file: end.name, position: end.cleanEnd }) > 0) {
            unreachable(`its last complete transaction ends at ${end.name}:${end.cleanEnd}`);
          }
        }
      }

      const firstFile = scan.files[0]?.name ?? '';
      // Where the chain begins: a file's start, or a base's position inside a file where it restarted after damage.
      const chainStart = { file: firstFile, position: scan.files[0]?.startOffset ?? 4 };
      const ofChain = (b: BaseBackupMetadata): boolean => compareBinlogPositions(b.binlog, chainStart) >= 0 && scan.files.some((f) => f.name === b.binlog.file);
      if (target.kind === 'end' && scan.damage !== undefined) {
        // The end is past the damage: the replay would stop before it and the promotion would
        // report success without every transaction archived after it (a script that reads the
        // exit code would take that loss for a complete promotion). Another standby's archive may
        // hold them intact; taking the loss is a choice the operator makes, with a point, offered
        // only when an intact base reaches it.
        const last = resolver.last;
        const damage = scan.damage;
        // The chain's bases before the damage: each holds the state at the last commit before it
        // (a base after that commit and before the damage holds exactly that state too).
        const reaching = bases.filter((b) => ofChain(b) && compareBinlogPositions(b.binlog, { file: damage.file, position: damage.offset }) <= 0);
        let intact: BaseBackupMetadata | undefined;
        for (const b of [...reaching].reverse()) {
          if ((await problemsNow(b)).length === 0) {
            intact = b;
            break;
          }
        }
        const reached = intact !== undefined;
        // No intact base in a chain that restarted after damage (its own restart base included,
        // though that lies past a damage it could not restart at): scanned again without them.
        const notIntact = [...reaching.map((b) => b.id), ...(scan.chainBase === undefined ? [] : [scan.chainBase])];
        if (!reached && scan.chainStartsAfter === 'damage' && notIntact.some((id) => !excluded.has(id))) {
          for (const id of notIntact) excluded.add(id);
          continue;
        }
        // The point: the last intact transaction, or the base's own position when the chain has no commit before the damage.
        const point = last !== undefined && intact !== undefined && compareBinlogPositions(last, intact.binlog) > 0 ? last : intact?.binlog;
        const when = last !== undefined && point === last ? `the last intact transaction, committed ${new Date(last.timestampS * 1000).toISOString()}` : `base ${intact?.id ?? ''}, with nothing after it before the damage`;
        const accept = point === undefined ? '; no intact base reaches a point before it' : `; or take the loss: --until-position ${point.file}:${point.position} (${when})`;
        const damagedAfter = damagedExcluded();
        const passed = damagedAfter.length > 0 ? ` (bases after it are damaged themselves: ${damagedAfter.join(', ')})` : '';
        throw new HotspareError('ARCHIVE_DAMAGED', `the archive is damaged at ${describeDamage(scan.damage)}${passed}: its end cannot be reached, and what was archived after the damage would be lost; nothing was changed`, {
          hint: `promote from another standby's archive if \`hotspare verify\` finds it intact${accept}`,
        });
      }
      refuseBeforeArchiveStart(target, resolver.last, scan.files[0]);

      const usable = bases.filter(
        (b) =>
          ofChain(b) &&
          (resolver.next === undefined || compareBinlogPositions(b.binlog, resolver.next) < 0) &&
          (scan.damage === undefined || compareBinlogPositions(b.binlog, { file: scan.damage.file, position: scan.damage.offset }) <= 0),
      );
      if (usable.length === 0) {
        unreachable(`no base backup lies at or before it with archived binlog after it (bases: ${bases.map((b) => `${b.id} at ${formatBinlogPosition(b.binlog)}`).join(', ')})`);
      }
      // The newest usable base whose files check out: a damaged one gives way to an older one
      // (more binlog to replay, the same point), as `verify`'s last restorable point assumes.
      let chosen: BaseBackupMetadata | undefined;
      const damagedBases: string[] = [];
      for (let i = usable.length - 1; i >= 0 && chosen === undefined; i--) {
        const candidate = usable[i] as BaseBackupMetadata;
        const found = await problems(candidate);
        if (found.length === 0) chosen = candidate;
        else damagedBases.push(`${candidate.id}: ${found.join('; ')}`);
      }
      if (chosen !== undefined) {
        for (const damage of scan.passedOver) {
          input.logger.warn(
            { code: 'DAMAGE_BEFORE_BASE', damage, restoresFrom: formatBinlogPosition(chainStart) },
            `the archive is damaged at ${describeDamage(damage)}, before the chain this promotion restores from (${formatBinlogPosition(chainStart)} on): passed over; run \`hotspare verify\` and mend it from another standby's archive to keep older points in time`,
          );
        }
        return { identity, scan, resolver, heard, newestEventS, chosen, damagedBases };
      }
      // Every base of a chain that restarted after damage is damaged itself: scanned again without
      // restarting at those, the chain restarts at an intact base before them or the damage ends it.
      const damagedHere = usable.filter((b) => !excluded.has(b.id));
      if (scan.chainStartsAfter === 'damage' && damagedHere.length > 0) {
        for (const b of damagedHere) excluded.add(b.id);
        continue;
      }
      throw new HotspareError('BASE_DAMAGED', `every base backup that could reach the target is damaged: ${damagedBases.join(' | ')}`, {
        hint: 'run `hotspare verify`; promote from another standby\'s archive, or to an earlier point an intact base reaches; take a new base backup with `hotspare base` while the primary still runs',
      });
    } catch (err) {
      // Scanned again without damaged bases, a point may no longer be reached: their damage is why.
      if (excluded.size > 0 && err instanceof HotspareError && err.code === 'POINT_UNREACHABLE') {
        throw new HotspareError('BASE_DAMAGED', `the archive cannot reach ${describeTarget(target)}: every base backup after the damage that reaches it is damaged (${damagedExcluded().join(', ') || 'or lies past a damage it cannot restart at'})`, {
          hint: 'run `hotspare verify`; promote from another standby\'s archive, or to an earlier point an intact base reaches',
          cause: err,
        });
      }
      throw err;
    }
  }
}

/**
 * Checks everything and decides the promotion without changing anything: the archive's chain
 * (every event's CRC32, position chain, file continuity), the target point, the newest base at
 * or before it (and its checksums), and the target server (not the archive's primary; not
 * already holding the archived databases unless --replace). Refusals are HotspareErrors.
 */
export async function planPromotion(input: PlanInput): Promise<PromotionPlan> {
  const { archiveRoot, target, server } = input;
  /** A base's problems, read now (or as an earlier attempt found them while staging it). */
  const checkBaseNow = async (candidate: BaseBackupMetadata): Promise<string[]> => {
    const stagedDamage = input.damagedWhileStaging?.get(candidate.id);
    return stagedDamage !== undefined ? [stagedDamage] : checkBaseFiles(archiveRoot, candidate);
  };
  const { identity, scan, resolver, heard, newestEventS, chosen, damagedBases } = await resolvePoint({
    archiveRoot,
    target,
    logger: input.logger,
    // The target server is checked before the archive is read: a wrong target is told at once.
    beforeScan: (id) => refusePrimaryAsTarget(id, server),
    // A physical base's stream is checked while it is extracted into the staging folder, before
    // the target is touched (preparePhysicalBase): one read of it instead of two.
    checkBase: async (candidate) =>
      candidate.method === 'physical-mariabackup' && input.checksumsWhileStaging === true && !input.damagedWhileStaging?.has(candidate.id) ? [] : checkBaseNow(candidate),
    // A refusal's point is offered only for a base checked now, the deferred kind included.
    checkBaseNow,
  });
  const last: CommitPoint | undefined = resolver.last;
  const stopAt = last !== undefined && compareBinlogPositions(last, chosen.binlog) > 0 ? { file: last.file, position: last.position } : chosen.binlog;
  const replay = replayRanges(scan.files, chosen.binlog, stopAt);

  const physical =
    chosen.method === 'physical-mariabackup'
      ? await planPhysicalRestore({ base: chosen, server, datadir: input.targetDatadir, startCommand: input.targetStart, replace: input.replace, nowMs: Date.now(), extractor: input.extractor })
      : undefined;
  const existing = new Set(await server.databases());
  const clash = physical !== undefined ? physical.userDatabases : chosen.databases.filter((d) => existing.has(d));
  // A database of the base that the target holds empty (the `test` of a fresh install, which
  // the primary's base holds too) is dropped and restored without --replace: nothing is lost,
  // and the first step of a failover is not an error that teaches --replace.
  const empty = await server.emptyDatabases(clash);
  const holding = clash.filter((d) => !empty.has(d));
  if (holding.length > 0 && !input.replace) {
    throw new HotspareError('TARGET_NOT_EMPTY', `the target ${server.describe} already holds ${holding.join(', ')}`, {
      hint: 'promote into an empty standby server, or pass --replace to drop those databases first',
    });
  }

  const lastHeard = lastHeardOf(heard, newestEventS, scan.partialTail !== undefined);
  const atEnd = target.kind === 'end';
  // Caught up when last heard: the archive held all the primary had written, so nothing before
  // that moment is missing; otherwise what was committed after the last archived transaction
  // and before the primary went silent may be lost.
  // (A promotion to the end of a damaged archive was refused above.) Milliseconds at most: the
  // times it is made of are whole seconds and a millisecond timestamp.
  // Without the agent's record of when it last heard the primary, nobody knows (the newest
  // event's own time would make it 0).
  const lossWindowSeconds =
    !atEnd || heard === undefined || lastHeard === undefined || last === undefined
      ? undefined
      : lastHeard.caughtUp
        ? 0
        : Math.round(Math.max(0, Date.parse(lastHeard.time) / 1000 - last.timestampS) * 1000) / 1000;
  const replayBytes = replay.reduce((n, r) => n + r.stop - r.start, 0);
  const files = await planFiles(archiveRoot, target, last, Date.parse(chosen.startedAt), input.filesRoot, input.logger);
  const hooks = files.sources.reduce((n, s) => n + s.hooks, 0);
  return {
    archive: archiveRoot,
    primary: describePrimary(identity.primary),
    target: server.describe,
    targetPoint: describeTarget(target),
    base: { id: chosen.id, method: chosen.method, binlog: chosen.binlog, gtid: chosen.gtidBinlogPos, finishedAt: chosen.finishedAt },
    physical,
    replay,
    replayBytes,
    stopAt,
    lastTransaction: last === undefined ? undefined : { file: last.file, position: last.position, gtid: last.gtid, commitTime: new Date(last.timestampS * 1000).toISOString() },
    // Damage past an earlier point (resolvePoint refuses a promotion to the end past damage).
    stoppedBeforeDamage: scan.damage,
    partialTailCut: atEnd ? scan.partialTail : undefined,
    damagedBases,
    passedOverDamage: scan.earlierDamage,
    passedOverDamages: scan.passedOver,
    lastHeard,
    lossWindowSeconds,
    replaceDatabases: clash,
    steps: [
      { name: 'read-only-on', run: true, detail: 'SET GLOBAL read_only = ON until the promotion completes (again after a physical base\'s start): applications write nothing into a half-restored database; a failed promotion leaves it on' },
      ...(physical === undefined ? logicalBaseSteps(chosen, clash, empty) : physicalBaseSteps(chosen, physical)),
      { name: 'replay-binlog', run: replay.length > 0, detail: replay.length > 0 ? `${replay.length} file(s), ${replayBytes} bytes, up to ${formatBinlogPosition(stopAt)}` : 'the base is already at the target point' },
      {
        name: 'restore-spool-files',
        run: files.sources.length > 0,
        detail: files.sources.length > 0 ? `${files.sources.map((s) => (s.skipped !== undefined ? `${s.name} left as it is (${s.skipped})` : s.lostAfter !== undefined ? `${s.name} to ${s.restoreTo} only as of ${new Date(s.pointMs ?? 0).toISOString()} (${s.lostAfter})` : s.uncertainWhy !== undefined ? `${s.name} to ${s.restoreTo} (SPOOL_POINT_UNCERTAIN: ${s.uncertainWhy})` : `${s.name} to ${s.restoreTo}`)).join(', ')}, as of ${files.asOf}` : 'the archive holds no spool sources',
      },
      { name: 'read-only-off', run: true, detail: 'SET GLOBAL read_only = OFF' },
      {
        name: 'fence-archive',
        run: atEnd && input.fence === true,
        detail: atEnd && input.fence === true
          ? `write ${PROMOTED_PATH} into the archive: its primary's agent (the old primary come back) is refused from then on (ARCHIVE_PROMOTED), so its new writes never join the archive`
          : atEnd ? 'not without --fence (give it for a failover): the archive stays open to its primary\'s agent' : 'not for a point in time: the archive stays open to its primary\'s agent',
      },
      {
        name: 'run-hooks',
        run: hooks > 0 && input.skipHooks !== true,
        detail:
          hooks > 0
            ? `${hooks} post-promotion hook(s) from the spool sources' config${input.skipHooks === true ? ', NOT run (--no-hooks)' : ''}: ${files.sources.flatMap((s) => s.hookCommands.map((c) => `${s.name}: ${JSON.stringify(c)}`)).join('; ')}`
            : 'no hooks configured',
      },
    ],
    files,
  };
}

/** What the restore of the spool files takes from a plan: each source's pin, or why it is left as it is. */
export function plannedSources(files: FilesPlan): Map<string, PlannedSource> {
  return new Map(files.sources.map((s) => [s.name, s.pin !== undefined ? { pin: s.pin } : { skipped: s.skipped ?? 'not restorable', skipCode: s.skipCode ?? 'SPOOL_BEFORE_HISTORY' }]));
}

/** What `promote --files-only` restores: the spool files as of the point a promotion to `target` would take them. */
export interface FilesOnlyPlan {
  archive: string;
  primary: string;
  targetPoint: string;
  /** The last transaction at or before the point (the database's point, which the files follow). */
  lastTransaction: { file: string; position: number; gtid: string | undefined; commitTime: string } | undefined;
  files: FilesPlan;
}

/**
 * The files' half of planPromotion, for restoring the spool files again (or elsewhere) after a
 * promotion whose file step failed, with no database: the same point as a promotion to
 * `target` gives them (the archive's binlog is scanned, as promote scans it, for the last
 * transaction at or before a GTID or position, and for damage that ends a promotion to the end
 * early). Nothing is changed.
 */
export async function planFilesOnly(input: { archiveRoot: string; target: TargetSpec; filesRoot: string | undefined; sources?: readonly string[] | undefined; logger: Logger }): Promise<FilesOnlyPlan> {
  const { archiveRoot, target } = input;
  // The refusals of a promotion to the same target, and its base's choice (whose start dates
  // the files when no transaction is applied), with one difference: the bases' files are not
  // hashed (the files do not depend on them, and a base that rotted after its promotion must
  // not keep that promotion's files from being restored), so a point a promotion refuses only
  // because its bases are damaged is one --files-only restores the files at.
  const { identity, resolver, chosen } = await resolvePoint({ archiveRoot, target, logger: input.logger, checkBase: () => Promise.resolve([]) });
  const last = resolver.last;
  const files = await planFiles(archiveRoot, target, last, Date.parse(chosen.startedAt), input.filesRoot, input.logger, input.sources);
  return {
    archive: archiveRoot,
    primary: describePrimary(identity.primary),
    targetPoint: describeTarget(target),
    lastTransaction: last === undefined ? undefined : { file: last.file, position: last.position, gtid: last.gtid, commitTime: new Date(last.timestampS * 1000).toISOString() },
    files,
  };
}

/**
 * The base a plan for `target` most likely chooses, known before the archive is scanned: the
 * newest one at or before the target by its own coordinates (or, for a time, its finish time).
 * Only a guess, since the scan may find damage or a gap after it: promote stages a physical one
 * while the scan runs, and drops it when the plan chooses another.
 */
export function likelyBase(bases: readonly BaseBackupMetadata[], target: TargetSpec): BaseBackupMetadata | undefined {
  const candidates = bases.filter((b) =>
    target.kind === 'position' ? compareBinlogPositions(b.binlog, target.at) <= 0 : target.kind === 'time' ? Date.parse(b.finishedAt) <= target.atMs : true,
  );
  return candidates[candidates.length - 1];
}

function logicalBaseSteps(base: BaseBackupMetadata, clash: string[], empty: ReadonlySet<string>): PromotionStep[] {
  return [
    {
      name: 'drop-replaced-databases',
      run: clash.length > 0,
      detail: clash.length > 0 ? `DROP DATABASE ${clash.map((d) => (empty.has(d) ? `${d} (empty)` : d)).join(', ')}${clash.some((d) => !empty.has(d)) ? ' (--replace)' : ''}` : 'nothing to replace',
    },
    { name: 'restore-base', run: true, detail: `base ${base.id} (${base.databases.length} databases, binlog ${formatBinlogPosition(base.binlog)})` },
  ];
}

/** The server keeps running until its prepared replacement is ready beside it. */
function physicalBaseSteps(base: BaseBackupMetadata, plan: PhysicalRestorePlan): PromotionStep[] {
  const stream = base.physical?.stream ?? 'the stream';
  return [
    {
      name: 'prepare-physical-base',
      run: true,
      detail: `${base.physical?.compression === 'gzip' ? 'gunzip | mbstream -x' : plan.extractor === 'mbstream' ? 'mbstream -x' : 'extract (hotspare\'s reader)'} ${base.id}/${stream} into ${plan.staging}, then mariabackup --prepare there (binlog ${formatBinlogPosition(base.binlog)})`,
    },
    { name: 'stop-target', run: true, detail: `SHUTDOWN the target (pid ${plan.pid}) and wait until it has exited` },
    {
      name: 'swap-datadir',
      run: true,
      detail: `move ${plan.datadir} aside to ${plan.previous} (kept${plan.userDatabases.length > 0 ? `, with its databases ${plan.userDatabases.join(', ')}` : ''}), the prepared copy into its place, owned as the old one`,
    },
    { name: 'start-target', run: true, detail: `run ${JSON.stringify(plan.startCommand)} and wait until the server answers (with the primary's accounts), then SET GLOBAL read_only = ON unless it started read-only` },
  ];
}

/**
 * The spool files' restore point is the database's: the newest durable state for a promotion
 * to the end; for --until T, the end of T's second (the database gets every commit stamped in
 * it); for a GTID or position, the end of the second in which the last applied transaction
 * committed (binlog times have one-second resolution).
 * Each source's history is read now, so a point the retention already dropped is refused
 * before anything changes.
 */
async function planFiles(
  archiveRoot: string,
  target: TargetSpec,
  last: CommitPoint | undefined,
  /** The point's time when no transaction was applied (the base's start). */
  noCommitMs: number,
  filesRoot: string | undefined,
  logger: Logger,
  /** Only these sources (`promote --files-only --source`): the others are not read. */
  only?: readonly string[],
): Promise<FilesPlan> {
  const lastCommitMs = last !== undefined ? last.timestampS * 1000 : noCommitMs;
  // Binlog times have one-second resolution: --until T applies every commit stamped in T's second
  // (stop-point.ts), so the files are taken to the end of that second too, not to T itself.
  // (A promotion to the end never stops short of it: resolvePoint refuses damage before the end.)
  const untilMs = target.kind === 'end' ? undefined : target.kind === 'time' ? endOfSecond(target.atMs) : lastCommitMs + 999;
  const asOf = untilMs === undefined ? 'their newest durable change' : new Date(untilMs).toISOString();
  const sources: FilesPlan['sources'] = [];
  const all = await readSpoolSources(archiveRoot);
  if (only !== undefined) {
    const known = [...all.sources.map((m) => m.name), ...all.unusable.map((u) => u.name)];
    const unknown = only.filter((name) => !known.includes(name));
    if (unknown.length > 0) {
      throw new HotspareError('SPOOL_SOURCE_UNKNOWN', `the archive holds no spool source ${unknown.join(', ')} (it holds ${known.join(', ') || 'none'})`, {
        hint: 'name a source the archive holds (`hotspare status` lists them)',
      });
    }
  }
  const metas = all.sources.filter((m) => only === undefined || only.includes(m.name));
  const unusable = all.unusable.filter((u) => only === undefined || only.includes(u.name));
  // A source that cannot be restored is left as it is and reported; it never holds back the database.
  for (const { name, error } of unusable) {
    sources.push({ name, restoreTo: filesRoot === undefined ? '(unknown)' : join(filesRoot, name), hooks: 0, hookCommands: [], skipped: error.message, skipCode: error.code });
  }
  const stopBeforeDamage = target.kind === 'end';
  for (const meta of metas) {
    const found = await spoolTreeAt(archiveRoot, meta, untilMs, childLogger(logger, { source: meta.name }), { stopBeforeDamage }).then(
      ({ tree, pointMs, pin, lostAfter, uncertain }) => {
        // Every block is checked against its id while restored: one this host cannot check
        // (BLAKE3 without its module) leaves the source as it is, known before anything changes.
        checkBlockIds(tree, meta.name);
        return { pointMs, pin, ...(lostAfter === undefined ? {} : { lostAfter }), ...(uncertain === undefined || untilMs === undefined ? {} : { uncertainWhy: unwatchedWindowWords(uncertain, untilMs) }) };
      },
    ).catch((err: unknown) => {
      if (isSourceSkip(err)) return { skipped: err.message, skipCode: err.code };
      throw err;
    });
    sources.push({
      name: meta.name,
      restoreTo: filesRoot === undefined ? meta.path : join(filesRoot, meta.name),
      hooks: meta.hooks.length,
      // The commands come from the archive (the primary's config): the plan shows them before they run.
      hookCommands: meta.hooks.map((h) => h.run),
      ...found,
    });
  }
  return { untilMs, asOf, stopBeforeDamage, sources };
}

function replayRanges(files: ReadonlyArray<{ name: string; cleanEnd: number; sizeBytes: number }>, from: BinlogPosition, to: BinlogPosition): ReplayRange[] {
  const ranges: ReplayRange[] = [];
  for (const file of files) {
    if (compareBinlogPositions({ file: file.name, position: 0 }, { file: from.file, position: 0 }) < 0) continue;
    if (compareBinlogPositions({ file: file.name, position: 0 }, { file: to.file, position: 0 }) > 0) break;
    const start = file.name === from.file ? from.position : 4;
    const stop = file.name === to.file ? to.position : file.cleanEnd;
    // Before cleanEnd every event was read whole by the scan; at or after it, the event at
    // `stop` may be torn or damaged.
    if (stop > start) ranges.push({ file: file.name, start, stop, toFileEnd: stop === file.sizeBytes, cutAtStop: stop >= file.cleanEnd && stop < file.sizeBytes });
  }
  return ranges;
}

async function refusePrimaryAsTarget(identity: ArchiveIdentity, server: TargetServer): Promise<void> {
  const target = await server.identity();
  if (samePrimary(identity.primary, target)) {
    throw new HotspareError('TARGET_IS_PRIMARY', `the target ${server.describe} is the archive's own primary, ${describePrimary(identity.primary)}`, {
      hint: 'promote into the standby server, never into the primary the archive was taken from',
    });
  }
}

/**
 * state/last-heard.json when the agent wrote it; otherwise the newest archived event's time.
 * `partialTail`: the archive ends inside a transaction, so whatever the record says, it had not
 * caught up: the primary writes a transaction to its binlog whole, at commit, so the rest was in
 * the primary's binlog when it was heard, though the stream had not brought it yet (a rehearsal's
 * 62 MB transaction was reported as held, with a loss window of 0).
 */
function lastHeardOf(heard: LastHeardRecord | undefined, newestEventS: number, partialTail: boolean): { time: string; source: string; caughtUp: boolean } | undefined {
  if (heard !== undefined) return { time: heard.at, source: 'state/last-heard.json', caughtUp: heard.caughtUp && !partialTail };
  if (newestEventS === 0) return undefined;
  return { time: new Date(newestEventS * 1000).toISOString(), source: 'newest archived event (no state/last-heard.json)', caughtUp: false };
}

/** The last millisecond of the second `ms` falls in. */
const endOfSecond = (ms: number): number => Math.floor(ms / 1000) * 1000 + 999;
