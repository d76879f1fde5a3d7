import { readFile } from 'node:fs/promises';
import { ArchiveLayout } from './archive-layout.js';

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

/** The archive's record, or undefined when none was written or it cannot be read. */
export async function readLastHeard(archiveRoot: string): Promise<LastHeardRecord | undefined> {
  let text: string;
  try {
    text = await readFile(new ArchiveLayout(archiveRoot).heardFile, 'utf8');
  } catch {
    return undefined;
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
