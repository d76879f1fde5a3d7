import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
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
 * state/promote-settings.json in the archive: the target's settings as they were before a
 * promotion changed them, kept until it has put them back. A promotion killed (SIGKILL, a host
 * lost) cannot put them back; the next one into the same server finds the record and puts them
 * back first. Without it, the next took the changed values for the operator's own: the promoted
 * server kept its event scheduler off, max_allowed_packet at 1 GiB and its commits flushed once a
 * second, silently.
 */
export const SETTINGS_PATH = 'state/promote-settings.json';

function path(archiveRoot: string): string {
  return join(new ArchiveLayout(archiveRoot).stateDir, 'promote-settings.json');
}

async function readAll(archiveRoot: string): Promise<SettingsRecord[]> {
  let text: string;
  try {
    text = await readFile(path(archiveRoot), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const parsed = JSON.parse(text) as { records?: SettingsRecord[] };
  return Array.isArray(parsed.records) ? parsed.records : [];
}

async function writeAll(archiveRoot: string, records: SettingsRecord[]): Promise<void> {
  if (records.length === 0) await rm(path(archiveRoot), { force: true });
  else await writeFileDurable(path(archiveRoot), `${JSON.stringify({ records }, null, 2)}\n`);
}

/** The record an interrupted promotion left for this server, if any. */
export async function leftSettings(archiveRoot: string, server: string): Promise<SettingsRecord | undefined> {
  return (await readAll(archiveRoot)).find((r) => r.server === server);
}

/** Records the settings before the promotion changes them (replacing this server's record). */
export async function recordSettings(archiveRoot: string, record: SettingsRecord): Promise<void> {
  const others = (await readAll(archiveRoot).catch(() => [])).filter((r) => r.server !== record.server);
  await writeAll(archiveRoot, [...others, record]);
}

/** The settings are back: the record goes. */
export async function clearSettings(archiveRoot: string, server: string): Promise<void> {
  const records = await readAll(archiveRoot);
  if (!records.some((r) => r.server === server)) return;
  await writeAll(archiveRoot, records.filter((r) => r.server !== server));
}

