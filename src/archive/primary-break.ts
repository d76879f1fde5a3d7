import { HotspareError } from '../core/errors.js';
import type { ArchiveFiles } from './archive-files.js';

/** The archive path of the record (a replica's archive, written through its session). */
export const PRIMARY_BREAK_PATH = 'state/primary-break.json';

/**
 * A time the primary was seen running in a way whose writes no binlog this archive can hold
 * records: with log_bin off, or as another server (another server_id or log_bin basename, the
 * binlog written under other names). When it comes back as itself, its binlog names go on where
 * the archive ends, and nothing in them shows what was written meanwhile (a rehearsal's
 * `other-bin` period: the GTIDs of those transactions were used again after it). The archive
 * cannot prove its continuity past this point: its chain restarts at a base taken after it.
 */
export interface PrimaryBreak {
  /** When it was first seen (ISO). */
  at: string;
  /** What was seen, for the log and the recorded gap. */
  reason: string;
}

/**
 * A receiver from before the record refuses its path (ARCHIVE_PATH): it holds none and can
 * keep none. Each function here says so in its result rather than failing.
 */
function refusedByOlderReceiver(err: unknown): boolean {
  return err instanceof HotspareError && err.code === 'ARCHIVE_PATH';
}

/** The recorded break; undefined when there is none (or the archive cannot hold one). */
export async function readPrimaryBreak(files: ArchiveFiles): Promise<PrimaryBreak | undefined> {
  let raw: Buffer | undefined;
  try {
    raw = await files.readFile(PRIMARY_BREAK_PATH);
  } catch (err) {
    if (refusedByOlderReceiver(err)) return undefined;
    throw err;
  }
  if (raw === undefined) return undefined;
  try {
    const parsed = JSON.parse(raw.toString('utf8')) as Partial<PrimaryBreak>;
    if (typeof parsed.at === 'string' && typeof parsed.reason === 'string') return { at: parsed.at, reason: parsed.reason };
  } catch {
    // Written atomically: a torn record is someone else's. Still a break: the safe side.
  }
  return { at: new Date(0).toISOString(), reason: `${PRIMARY_BREAK_PATH} is not readable` };
}

/**
 * Records the break, keeping the first one recorded (the earliest is where continuity ends).
 * False when the archive cannot hold one (an older receiver).
 */
export async function recordPrimaryBreak(files: ArchiveFiles, brk: PrimaryBreak): Promise<boolean> {
  if ((await readPrimaryBreak(files)) !== undefined) return true;
  try {
    await files.putFile(PRIMARY_BREAK_PATH, Buffer.from(`${JSON.stringify(brk, null, 2)}\n`));
    return true;
  } catch (err) {
    if (refusedByOlderReceiver(err)) return false;
    throw err;
  }
}

/** Once the chain has restarted after it (its gap recorded). */
export async function clearPrimaryBreak(files: ArchiveFiles): Promise<void> {
  await files.remove(PRIMARY_BREAK_PATH).catch((err: unknown) => {
    if (!refusedByOlderReceiver(err)) throw err;
  });
}
