import { chmod, lstat, lutimes, mkdir, open, readdir, rename, rm, symlink, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalArchiveFiles } from '../archive/archive-files.js';
import { HotspareError } from '../core/errors.js';
import { blockHash } from '../spool/file-shipper.js';
import { fsyncDir } from '../platform/durable-file.js';
import type { Logger } from '../platform/logger.js';
import { blockLength, packPath, sourceMetaPath, type SourceMeta } from '../spool/spool-format.js';
import { readSegments } from '../spool/spool-journal.js';
import { SpoolTree, treeFromCheckpoint } from '../spool/spool-tree.js';
import { excludeMatcher } from '../spool/tree-scanner.js';

export interface SpoolRestoreOptions {
  archiveDir: string;
  /** Restore as of this instant (ms since the epoch); the newest durable state when absent. */
  untilMs?: number | undefined;
  /** Restore each source under DIR/<source name>/ instead of its original path. */
  filesRoot?: string | undefined;
  /** Only these sources (all when absent). */
  sources?: readonly string[] | undefined;
  logger: Logger;
}

export interface SpoolRestoreResult {
  name: string;
  /** Where the source was restored. */
  path: string;
  /** Time of the last change the restored tree includes (ms since the epoch). */
  pointMs: number;
  files: number;
  dirs: number;
  links: number;
  bytes: number;
}

/** The spool sources recorded in an archive, with their descriptions. */
export async function listSpoolSources(archiveDir: string): Promise<SourceMeta[]> {
  const files = new LocalArchiveFiles(archiveDir);
  const out: SourceMeta[] = [];
  for (const name of await files.list('files')) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name)) continue;
    const meta = await files.readFile(sourceMetaPath(name));
    if (meta !== undefined) out.push(JSON.parse(meta.toString('utf8')) as SourceMeta);
  }
  return out;
}

/**
 * A source's tree as of `untilMs`: the newest checkpoint at or before it, plus the operations
 * recorded up to it. Throws SPOOL_HISTORY_TRUNCATED when the retention already dropped that moment.
 */
export async function spoolTreeAt(archiveDir: string, meta: SourceMeta, untilMs: number | undefined, logger: Logger): Promise<{ tree: SpoolTree; pointMs: number }> {
  const files = new LocalArchiveFiles(archiveDir);
  const segments = await readSegments(files, meta.name, logger);
  const until = untilMs ?? Infinity;
  let index = -1;
  segments.forEach((s, i) => {
    if (s.checkpointMs <= until) index = i;
  });
  const first = segments[0];
  if (first === undefined) throw new HotspareError('SPOOL_NO_HISTORY', `spool source ${meta.name} has no journal in the archive`, { hint: 'check that the agent ships this source (`hotspare status`)' });
  if (index < 0) {
    if (first.seq !== 1) {
      throw new HotspareError('SPOOL_HISTORY_TRUNCATED', `spool source ${meta.name} keeps history only from ${new Date(first.checkpointMs).toISOString()}, after the requested point`, {
        hint: 'choose a later point, or raise spool[].retentionSeconds for the future',
      });
    }
    // Before the source's first recorded state: it held nothing in the archive yet.
    logger.warn({ source: meta.name, firstMs: first.checkpointMs }, 'restore point is before the first recorded state of this source; restoring it empty');
    return { tree: new SpoolTree(meta.blockBytes), pointMs: first.checkpointMs };
  }
  const segment = segments[index] as (typeof segments)[number];
  const tree = treeFromCheckpoint(segment, meta.blockBytes);
  let pointMs = segment.checkpointMs;
  for (const op of segment.ops) {
    if (op.t > until) break;
    tree.apply(op);
    pointMs = op.t;
  }
  return { tree, pointMs };
}

/**
 * Restores every spool source in the archive as of `untilMs` (or its newest durable state):
 * under filesRoot/<name>/ when given, else at the source's original path. The target ends up
 * equal to the recorded tree (paths the source excludes are left alone there); each file is
 * written under a temporary name, fsynced and renamed into place, so a crash mid-restore
 * never leaves a half-written file under a real name.
 */
export async function restoreSpool(options: SpoolRestoreOptions): Promise<SpoolRestoreResult[]> {
  const metas = (await listSpoolSources(options.archiveDir))
    .filter((m) => options.sources === undefined || options.sources.includes(m.name))
    // Parents before nested sources, so a nested source is written after its parent.
    .sort((a, b) => a.path.length - b.path.length);
  const results: SpoolRestoreResult[] = [];
  for (const meta of metas) {
    const log = options.logger.child({ component: 'spool-restore', source: meta.name });
    const { tree, pointMs } = await spoolTreeAt(options.archiveDir, meta, options.untilMs, log);
    const dest = options.filesRoot === undefined ? meta.path : join(options.filesRoot, meta.name);
    const counts = await materialize(tree, dest, options.archiveDir, meta, log);
    const result = { name: meta.name, path: dest, pointMs, ...counts };
    log.info({ ...result, point: new Date(pointMs).toISOString() }, 'spool source restored');
    results.push(result);
  }
  return results;
}

const depthOf = (p: string): number => (p === '' ? 0 : p.split('/').length);
/**
 * A stored mtime (nanoseconds) as the seconds utimes takes, to the microsecond. Near today's
 * times a double holds about 0.24 µs and libuv truncates it to nanoseconds, so `µs / 1e6` came
 * back a microsecond short about half the time (a millisecond short when the time lay on one:
 * 992 of 2000 such times, measured); half a microsecond more lands inside the intended one.
 */
export const utimesSeconds = (ns: string): number => (Number(BigInt(ns) / 1000n) + 0.5) / 1e6;

async function materialize(tree: SpoolTree, dest: string, archiveDir: string, meta: SourceMeta, log: Logger): Promise<Omit<SpoolRestoreResult, 'name' | 'path' | 'pointMs'>> {
  const excluded = excludeMatcher(meta.exclude);
  await mkdir(dest, { recursive: true });
  // 1. Remove what the target has and the recorded tree does not (or has as another kind).
  const existing = await walk(dest, excluded);
  for (const [rel, kind] of [...existing].sort((a, b) => depthOf(a[0]) - depthOf(b[0]))) {
    const want = tree.get(rel);
    if (want !== undefined && want.kind === kind) continue;
    if (rel === '') continue;
    await rm(join(dest, rel), { recursive: true, force: true });
    log.debug({ path: rel }, 'removed from the restore target: not in the restored tree');
  }
  const paths = [...tree.entries.keys()].sort((a, b) => depthOf(a) - depthOf(b) || (a < b ? -1 : 1));
  const packs = new Map<number, FileHandle>();
  const counts = { files: 0, dirs: 0, links: 0, bytes: 0 };
  try {
    for (const rel of paths) {
      const e = tree.get(rel);
      const abs = join(dest, rel);
      if (e === undefined) continue;
      if (e.kind === 'dir') {
        await mkdir(abs, { recursive: true });
        counts.dirs++;
      } else if (e.kind === 'link') {
        await unlink(abs).catch(() => undefined);
        await symlink(e.target, abs);
        await lutimes(abs, utimesSeconds(e.mtimeNs), utimesSeconds(e.mtimeNs));
        counts.links++;
      } else {
        const tmp = join(dest, rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '', `.hotspare-restore-${process.pid}`);
        const out = await open(tmp, 'w', 0o600);
        try {
          for (let i = 0; i < e.blocks.length; i++) {
            const [hash, pack, offset] = e.blocks[i] as [string, number, number];
            const length = blockLength(e.size, i, meta.blockBytes);
            let handle = packs.get(pack);
            if (handle === undefined) {
              handle = await open(join(archiveDir, packPath(meta.name, pack)), 'r');
              packs.set(pack, handle);
            }
            const buf = Buffer.allocUnsafe(length);
            const { bytesRead } = await handle.read(buf, 0, length, offset);
            if (bytesRead !== length) {
              throw new HotspareError('SPOOL_DATA_MISSING', `pack ${pack} of spool source ${meta.name} ends before the data of ${rel}`, {
                hint: 'the archive is damaged; run `hotspare verify`, restore an earlier point, or let the agent re-ship the source',
              });
            }
            // A restored file is never silently wrong: each block is checked against its hash.
            if (blockHash(buf) !== hash) {
              throw new HotspareError('SPOOL_DATA_DAMAGED', `block ${i} of ${rel} in spool source ${meta.name} does not match its checksum (pack ${pack}, offset ${offset})`, {
                hint: 'the archive is damaged: run `hotspare verify`; promote to an earlier point, or restore that file from another copy',
              });
            }
            await out.write(buf, 0, length, i * meta.blockBytes);
          }
          await out.truncate(e.size);
          await out.chmod(e.mode);
          await out.sync();
        } finally {
          await out.close();
        }
        await rename(tmp, abs);
        await utimes(abs, utimesSeconds(e.mtimeNs), utimesSeconds(e.mtimeNs));
        counts.files++;
        counts.bytes += e.size;
      }
    }
  } finally {
    for (const h of packs.values()) await h.close();
  }
  // Directories last and deepest first: writing into them changed their times.
  for (const rel of paths.filter((p) => tree.get(p)?.kind === 'dir').reverse()) {
    const e = tree.get(rel);
    if (e?.kind !== 'dir') continue;
    const abs = join(dest, rel);
    await chmod(abs, e.mode);
    await utimes(abs, utimesSeconds(e.mtimeNs), utimesSeconds(e.mtimeNs));
    await fsyncDir(abs);
  }
  return counts;
}

/** Kinds of what is at a target (not following links), skipping excluded paths. */
async function walk(root: string, excluded: (rel: string) => boolean): Promise<Map<string, 'file' | 'dir' | 'link'>> {
  const out = new Map<string, 'file' | 'dir' | 'link'>([['', 'dir']]);
  const stack = [''];
  while (stack.length > 0) {
    const dir = stack.pop() as string;
    for (const name of await readdir(join(root, dir))) {
      const rel = dir === '' ? name : `${dir}/${name}`;
      if (excluded(rel)) continue;
      const st = await lstat(join(root, rel));
      const kind = st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'link' : 'file';
      out.set(rel, kind);
      if (kind === 'dir') stack.push(rel);
    }
  }
  return out;
}
