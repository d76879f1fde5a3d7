import { notAnArchive, readArchiveIdentity } from '../archive/archive-identity.js';
import { readPromotionFence, type PromotionFence } from '../archive/promotion-fence.js';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { listPartialBaseBackups, readBaseFolders, type BaseBackupMetadata } from '../archive/base-catalog.js';
import type { RecordedGap } from '../archive/binlog-gaps.js';
import { compareBinlogPositions, type BinlogPosition } from '../core/binlog-position.js';
import { baseStartsOf, heldDurably, scanArchive, type ArchiveDamage, type ArchiveScan, type CommitPoint } from './archive-scan.js';
import { checkBaseFiles } from './base-checksums.js';
import { readLastHeard, type LastHeardRecord } from '../archive/last-heard.js';
import { silentLogger } from '../platform/logger.js';
import { listSpoolSources, spoolTreeAt } from './spool-restore.js';
import { verifySpoolArchive } from './spool-verify.js';

export interface BaseSummary {
  id: string;
  /** logical-exact or physical-mariabackup (metadata.json `method`). */
  method: string;
  binlog: BinlogPosition;
  gtid: string;
  finishedAt: string;
  bytes: number;
  /** The archive holds binlog from this base's file on (it can start a restore). */
  restorable: boolean;
  /** The base lies before a recorded gap: promotion no longer starts from it. */
  beforeGap: boolean;
  problems: string[];
}

export interface ArchiveReport {
  archive: string;
  primary: unknown;
  bases: BaseSummary[];
  /** Left by interrupted backups; never used. */
  partialBases: string[];
  /** Gaps recorded when the archive restarted its chain at a new base (never replayed across). */
  recordedGaps: RecordedGap[];
  /** Binlog files kept from before the last recorded gap (checked, not restorable by promote). */
  earlierBinlog: { files: number; bytes: number; first: string | undefined; last: string | undefined };
  binlog: {
    /** The current chain (after the last recorded gap). */
    files: number;
    first: BinlogPosition | undefined;
    /** End of the last complete transaction that can be restored. */
    last: BinlogPosition | undefined;
    bytes: number;
  };
  latestRestorable: { file: string; position: number; commitTime: string; gtid: string | undefined } | undefined;
  newestEventTime: string | undefined;
  partialTail: ArchiveScan['partialTail'];
  /** The first bad point (damage or gap); undefined when intact. */
  firstBad: ArchiveDamage | undefined;
  /** The damage that ends the archive's current chain (its end cannot be restored past it); undefined when none does. */
  endDamage: ArchiveDamage | undefined;
  /** Damage passed over (an intact base after each restores what follows), in the archive's order. */
  passedOverDamages: ArchiveDamage[];
  spoolSources: string[];
  /** Each spool source: where it came from and the time of the newest change the archive holds. */
  spool: Array<{ name: string; path: string; lastChange: string | undefined }>;
  /** verify only: each spool source's history and block checksums; problems make the archive damaged. */
  spoolChecks: Array<{ source: string; blocks: number; unchecked: number; problems: string[] }> | undefined;
  /**
   * verify only: spool blocks this host could not check (named by BLAKE3, whose native module
   * does not load here). Not damage, but not verified either: the archive is not reported intact.
   */
  spoolUnchecked: number | undefined;
  /** state/last-heard.json: when the agent last heard from the primary (undefined: never written). */
  lastHeard: LastHeardRecord | undefined;
  /** state/promoted.json: a promotion to the end made another server the primary from here (undefined: none). */
  promoted: PromotionFence | undefined;
  intact: boolean;
}

/**
 * What `status` and `verify` report: the archive's identity, base backups, binlog coverage,
 * the latest restorable point, and the first damage or gap. `checksums` (verify) also checks
 * every event's CRC32, every base file's sha256, and every spool source's journal and blocks.
 */
export async function inspectArchive(root: string, options: { checksums: boolean }): Promise<ArchiveReport> {
  const identity = await readArchiveIdentity(root);
  if (identity === undefined) throw notAnArchive(root);
  const files = new LocalArchiveFiles(root);
  const folders = await readBaseFolders(files);
  const problemsOf = new Map<string, string[]>();
  for (const base of folders.bases) problemsOf.set(base.id, options.checksums ? await checkBaseFiles(root, base) : []);
  // Damage with an intact base after it is passed over as promote passes it for the archive's
  // end, so the latest restorable point is the one a promotion reaches (the damage is still firstBad).
  const intactBases = folders.bases.filter((b) => problemsOf.get(b.id)?.length === 0);
  // Read before the scan: a running agent's archive only grows, so the record never lies past what a healthy archive holds.
  const lastHeard = await readLastHeard(root);
  const scan = await scanArchive(root, { verifyChecksums: options.checksums, ...heldDurably(lastHeard), restartAfterDamage: { bases: baseStartsOf(intactBases), wanted: () => true } });
  const first = scan.files[0];
  /** Where the current chain begins (a base's position inside a file, after damage there). */
  const chainStart = first === undefined ? undefined : { file: first.name, position: first.startOffset };
  const bases: BaseSummary[] = [];
  /** Bases promote can start from: restorable, files intact. */
  const usable: BaseBackupMetadata[] = [];
  for (const base of folders.bases) {
    const problems = problemsOf.get(base.id) ?? [];
    const restorable =
      first !== undefined &&
      chainStart !== undefined &&
      compareBinlogPositions(base.binlog, chainStart) >= 0 &&
      scan.files.some((f) => f.name === base.binlog.file) &&
      (scan.damage === undefined || compareBinlogPositions(base.binlog, { file: scan.damage.file, position: scan.damage.offset }) <= 0);
    const beforeGap = chainStart !== undefined && scan.earlierFiles.length > 0 && compareBinlogPositions(base.binlog, chainStart) < 0;
    bases.push({ id: base.id, method: base.method, binlog: base.binlog, gtid: base.gtidBinlogPos, finishedAt: base.finishedAt, bytes: base.files.reduce((n, f) => n + f.bytes, 0), restorable, beforeGap, problems });
    if (restorable && problems.length === 0) usable.push(base);
  }
  const lastFile = scan.files[scan.files.length - 1];
  const lastCommit = scan.lastCommit;
  // A base folder without a readable metadata.json is a base gone (verify names it).
  for (const lost of folders.unreadable) {
    bases.push({ id: lost.id, method: 'unreadable', binlog: { file: '', position: 0 }, gtid: '', finishedAt: '', bytes: 0, restorable: false, beforeGap: false, problems: [lost.reason] });
  }
  const damagedBase = bases.find((b) => b.problems.length > 0);
  // The first in the archive's order: damage passed over lies before the current chain's.
  const firstBad = scan.earlierDamage ?? scan.damage ?? (damagedBase !== undefined ? { kind: 'corrupt' as const, file: `base/${damagedBase.id}`, offset: 0, reason: damagedBase.problems.join('; ') } : undefined);
  const spoolChecks = options.checksums
    ? (await verifySpoolArchive(root, silentLogger())).map((r) => ({ source: r.source, blocks: r.blocks, unchecked: r.unchecked, problems: r.problems }))
    : undefined;
  const spoolIntact = spoolChecks === undefined || spoolChecks.every((c) => c.problems.length === 0);
  const spoolUnchecked = spoolChecks?.reduce((n, c) => n + c.unchecked, 0);
  return {
    archive: root,
    primary: identity.primary,
    bases,
    partialBases: await listPartialBaseBackups(files),
    recordedGaps: scan.recordedGaps,
    earlierBinlog: {
      files: scan.earlierFiles.length,
      bytes: scan.earlierFiles.reduce((n, f) => n + f.sizeBytes, 0),
      first: scan.earlierFiles[0]?.name,
      last: scan.earlierFiles[scan.earlierFiles.length - 1]?.name,
    },
    binlog: {
      files: scan.files.length,
      first: chainStart,
      last: lastFile === undefined ? undefined : { file: lastFile.name, position: lastFile.cleanEnd },
      bytes: scan.files.reduce((n, f) => n + f.sizeBytes, 0),
    },
    latestRestorable: latestRestorable(usable.at(-1), lastCommit),
    newestEventTime: scan.newestEventS === undefined ? undefined : new Date(scan.newestEventS * 1000).toISOString(),
    partialTail: scan.partialTail,
    firstBad,
    endDamage: scan.damage,
    passedOverDamages: scan.passedOver,
    spoolSources: await files.list('files'),
    spool: await spoolSummaries(root),
    spoolChecks,
    spoolUnchecked,
    lastHeard,
    promoted: await readPromotionFence(root),
    intact: firstBad === undefined && spoolIntact && (spoolUnchecked ?? 0) === 0,
  };
}

async function spoolSummaries(root: string): Promise<ArchiveReport['spool']> {
  const out: ArchiveReport['spool'] = [];
  for (const meta of await listSpoolSources(root)) {
    // The newest state's point is the time of the last recorded change (or checkpoint).
    const newest = await spoolTreeAt(root, meta, undefined, silentLogger()).catch(() => undefined);
    out.push({ name: meta.name, path: meta.path, lastChange: newest === undefined ? undefined : new Date(newest.pointMs).toISOString() });
  }
  return out;
}

/**
 * The newest point promote reaches: the last commit after the newest usable base, or that base's
 * own point when nothing committed after it (a chain just restarted at a new base, an idle primary).
 */
function latestRestorable(base: BaseBackupMetadata | undefined, lastCommit: CommitPoint | undefined): ArchiveReport['latestRestorable'] {
  if (base === undefined) return undefined;
  if (lastCommit !== undefined && compareBinlogPositions(lastCommit, base.binlog) >= 0) {
    return { file: lastCommit.file, position: lastCommit.position, commitTime: new Date(lastCommit.timestampS * 1000).toISOString(), gtid: lastCommit.gtid };
  }
  return { file: base.binlog.file, position: base.binlog.position, commitTime: base.startedAt, gtid: base.gtidBinlogPos === '' ? undefined : base.gtidBinlogPos };
}
