import { readFile } from 'node:fs/promises';
import { ArchiveLayout } from './archive-layout.js';
import { HotspareError } from '../core/errors.js';

/** The archive path of the record; `ArchiveLayout.heardFile` names the same file. */
export const LAST_HEARD_PATH = 'state/last-heard.json';

/** state/last-heard.json: when the agent last heard from the primary, for this archive. */
export interface LastHeardRecord {
  /** When the agent last heard from the primary (an event or a heartbeat on the dump). */
  at: string;
  atMs: number;
  /** How far the primary's stream had reached then. */
  primary: { file: string; position: number };
  /** What the archive durably held then (undefined: nothing acknowledged yet this session). */
  durable: { file: string; position: number } | undefined;
  /**
   * The end of the last complete transaction among those bytes: an archive found ending
   * before it lost transactions it once held (`scanArchive`'s `heldDurably`). Absent in
   * records of agents before it was kept, and with `durable`.
   */
  boundary?: { file: string; position: number } | undefined;
  /** The archive held everything the primary had written at that moment. */
  caughtUp: boolean;
}

/**
 * The archive's record, or undefined when none was written (or it is torn). A record that is
 * there but cannot be read (its permissions, the volume) is ARCHIVE_READ: taken for absent, a
 * promotion reported the loss window as unknown and skipped the check of an archive cut short
 * that the record drives.
 */
export async function readLastHeard(archiveRoot: string): Promise<LastHeardRecord | undefined> {
  const path = new ArchiveLayout(archiveRoot).heardFile;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new HotspareError('ARCHIVE_READ', `cannot read ${path}: ${(err as Error).message}`, { cause: err, hint: "check the archive volume (mount, permissions): the file says when the archive last heard from its primary, which the loss window and the check of an archive cut short need" });
  }
  try {
    const record = JSON.parse(text) as Partial<LastHeardRecord>;
    if (typeof record.atMs !== 'number' || !Number.isFinite(record.atMs) || record.primary === undefined) return undefined;
    const boundary = isPosition(record.boundary) ? { boundary: record.boundary } : {};
    return { at: new Date(record.atMs).toISOString(), atMs: record.atMs, primary: record.primary, durable: record.durable, ...boundary, caughtUp: record.caughtUp === true };
  } catch {
    // Written atomically, so a torn file means someone else wrote it: treat it as absent.
    return undefined;
  }
}

function isPosition(value: unknown): value is { file: string; position: number } {
  if (typeof value !== 'object' || value === null) return false;
  const { file, position } = value as { file?: unknown; position?: unknown };
  return typeof file === 'string' && typeof position === 'number' && Number.isSafeInteger(position) && position >= 0;
}
