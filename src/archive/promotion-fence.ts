import { readFile } from 'node:fs/promises';
import { HotspareError } from '../core/errors.js';
import { writeFileDurable } from '../platform/durable-file.js';
import { ArchiveLayout } from './archive-layout.js';

/**
 * state/promoted.json: a promotion to the end made a server the primary from this archive. The
 * archive's own primary is then the old one, failed over: should it come back (a host restarted
 * with its old datadir and its agent's old config), what it writes is a timeline the new primary
 * never had, and streaming it into this archive would make it the archive's end, which `status`
 * would show as restorable and a later promotion would restore. So the agent (a `file` replica)
 * and the receiver refuse to stream into a fenced archive: ARCHIVE_PROMOTED, at the session's
 * claim and, for a session open when the fence is written, at its next fsync round (the writer).
 */
/** The fence's path relative to the archive root (ArchiveLayout.promotedFile), for messages and plans. */
export const PROMOTED_PATH = 'state/promoted.json';

export interface PromotionFence {
  /** When the promotion completed (the server made writable). */
  promotedAt: string;
  /** The promoted server, as promote names it (never its password). */
  target: string;
  /** Where the replay stopped: the old primary's binlog position the new primary starts from. */
  stopAt: { file: string; position: number };
  /** The last applied transaction's GTID, when it has one. */
  gtid?: string | undefined;
}

/** The archive's fence, or undefined when it was never promoted from to the end (or the record cannot be read). */
export async function readPromotionFence(archiveRoot: string): Promise<PromotionFence | undefined> {
  let text: string;
  try {
    text = await readFile(new ArchiveLayout(archiveRoot).promotedFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const record = JSON.parse(text) as Partial<PromotionFence>;
    if (typeof record.promotedAt !== 'string' || record.stopAt === undefined) return fenceUnreadable();
    return { promotedAt: record.promotedAt, target: String(record.target ?? '?'), stopAt: record.stopAt, ...(record.gtid ? { gtid: record.gtid } : {}) };
  } catch {
    // Written atomically: a torn or foreign file still says someone promoted from here.
    return fenceUnreadable();
  }
}

function fenceUnreadable(): PromotionFence {
  return { promotedAt: `unknown (${PROMOTED_PATH} unreadable)`, target: '?', stopAt: { file: '?', position: 0 } };
}

export async function writePromotionFence(archiveRoot: string, fence: PromotionFence): Promise<void> {
  await writeFileDurable(new ArchiveLayout(archiveRoot).promotedFile, `${JSON.stringify(fence, null, 2)}\n`);
}

/** ARCHIVE_PROMOTED for an agent or receiver about to stream into a fenced archive. */
export function promotedArchiveError(archiveRoot: string, fence: PromotionFence): HotspareError {
  return new HotspareError(
    'ARCHIVE_PROMOTED',
    `archive ${archiveRoot} was promoted from at ${fence.promotedAt} (into ${fence.target}, at ${fence.stopAt.file}:${fence.stopAt.position}${fence.gtid ? ` GTID ${fence.gtid}` : ''}): its primary was failed over, and what it writes now is not the new primary's`,
    {
      hint: `keep applications off this server (split brain) and rebuild it as a standby of the new primary, whose agent streams to a new, empty archive; only if that promotion was a rehearsal, remove ${new ArchiveLayout(archiveRoot).promotedFile} to stream into it again`,
    },
  );
}
