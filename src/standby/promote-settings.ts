import { createHash } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ArchiveLayout } from '../archive/archive-layout.js';
import { writeFileDurable } from '../platform/durable-file.js';

/** The target's settings a promotion changes for the restore and replay (TargetServer.readSettings). */
export interface TargetSettings {
  eventScheduler: string;
  maxAllowedPacket: number;
  flushLogAtTrxCommit: number;
  /** When the server started (seconds since the epoch, to about a second). */
  startedS: number;
}

/** Two readings of a server's start time this far apart are two starts (a restart between). */
export const SERVER_START_JITTER_S = 3;

/** What a promotion recorded before it changed a target's settings. */
export interface SettingsRecord {
  /** The server, as TargetServer.settingsKey names it (host name, port, datadir). */
  server: string;
  /** The target as promote describes it (never its password). */
  target: string;
  savedAt: string;
  settings: TargetSettings;
}

/**
 * state/promote-settings/<server>.json in the archive: the target's settings as they were before
 * a promotion changed them, kept until it has put them back. A promotion killed (SIGKILL, a host
 * lost) cannot put them back; the next one into the same server finds the record and puts them
 * back first. Without it, the next took the changed values for the operator's own: the promoted
 * server kept its event scheduler off, max_allowed_packet at 1 GiB and its commits flushed once a
 * second, silently. One file per server: two promotions from one archive into two servers each
 * write their own (one file for all, read, changed and written, could lose one); two into one
 * server cannot run at once (the target's promotion lock).
 */
export const SETTINGS_PATH = 'state/promote-settings/';

/** The record's file for `server` (TargetServer.settingsKey), named by a hash of it. */
export function settingsRecordPath(archiveRoot: string, server: string): string {
  return join(new ArchiveLayout(archiveRoot).stateDir, 'promote-settings', `${createHash('sha256').update(server).digest('hex').slice(0, 16)}.json`);
}

/** The record an interrupted promotion left for this server, if any. */
export async function leftSettings(archiveRoot: string, server: string): Promise<SettingsRecord | undefined> {
  let text: string;
  try {
    text = await readFile(settingsRecordPath(archiveRoot, server), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const record = JSON.parse(text) as Partial<SettingsRecord>;
  // Another server's whose key hashed alike, or a file that is not one: nothing to put back.
  return record.server === server && record.settings !== undefined ? (record as SettingsRecord) : undefined;
}

/** Records the settings before the promotion changes them (replacing this server's record). */
export async function recordSettings(archiveRoot: string, record: SettingsRecord): Promise<void> {
  const path = settingsRecordPath(archiveRoot, record.server);
  await mkdir(dirname(path), { recursive: true });
  await writeFileDurable(path, `${JSON.stringify(record, null, 2)}\n`);
}

/** The settings are back: the record goes. */
export async function clearSettings(archiveRoot: string, server: string): Promise<void> {
  await rm(settingsRecordPath(archiveRoot, server), { force: true });
}
