import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { HotspareError } from '../core/errors.js';
import { writeFileDurable } from '../platform/durable-file.js';
import { ArchiveLayout } from './archive-layout.js';
import { promotedArchiveError, readPromotionFence } from './promotion-fence.js';

export const ARCHIVE_FORMAT_VERSION = 1;

/** Who the primary is. MariaDB has no server_uuid, so its host and binlog base name stand in. */
export interface PrimaryIdentity {
  serverId: number;
  serverUuid: string | null;
  flavor: 'mariadb' | 'mysql';
  version: string;
  hostname: string;
  binlogBasename: string;
}

export interface ArchiveIdentity {
  formatVersion: number;
  primary: PrimaryIdentity;
  createdAt: string;
}

export function samePrimary(a: PrimaryIdentity, b: PrimaryIdentity): boolean {
  if (a.serverId !== b.serverId || a.flavor !== b.flavor) return false;
  if (a.serverUuid !== null && b.serverUuid !== null) return a.serverUuid === b.serverUuid;
  return a.hostname === b.hostname && a.binlogBasename === b.binlogBasename;
}

export function describePrimary(p: PrimaryIdentity): string {
  return `server_id ${p.serverId} (${p.serverUuid ?? `${p.hostname}:${p.binlogBasename}`})`;
}

export async function readArchiveIdentity(root: string): Promise<ArchiveIdentity | undefined> {
  const layout = new ArchiveLayout(root);
  let text: string;
  try {
    text = await readFile(layout.identityFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let parsed: ArchiveIdentity;
  try {
    parsed = JSON.parse(text) as ArchiveIdentity;
  } catch (err) {
    throw new HotspareError('ARCHIVE_DAMAGED', `${layout.identityFile} is not valid JSON (torn or damaged)`, {
      cause: err,
      hint: "restore archive.json from a copy of the archive, or write it again from the primary's identity (README, archive layout)",
    });
  }
  if (parsed.formatVersion !== ARCHIVE_FORMAT_VERSION) {
    throw new HotspareError('ARCHIVE_VERSION', `archive ${root} has format version ${parsed.formatVersion}; this hotspare reads ${ARCHIVE_FORMAT_VERSION}`, {
      hint: 'use the hotspare version that wrote this archive, or start a new archive',
    });
  }
  return parsed;
}

/**
 * Claims an archive for a primary: writes archive.json when the archive is new, and refuses
 * an archive that another primary has written, so that two primaries never mix their binlogs,
 * and one promoted from (ARCHIVE_PROMOTED), so that a failed-over primary that comes back never
 * adds its new timeline to it.
 */
export async function claimArchive(root: string, primary: PrimaryIdentity, nowIso: string): Promise<ArchiveIdentity> {
  const existing = await readArchiveIdentity(root);
  if (existing !== undefined) {
    if (!samePrimary(existing.primary, primary)) {
      throw new HotspareError(
        'ARCHIVE_FOREIGN',
        `archive ${root} belongs to primary ${describePrimary(existing.primary)}, not to ${describePrimary(primary)}`,
        { hint: 'point this replica at an empty archive folder, or at the archive of this primary' },
      );
    }
    const fence = await readPromotionFence(root);
    if (fence !== undefined) throw promotedArchiveError(root, fence);
    return existing;
  }
  const identity: ArchiveIdentity = { formatVersion: ARCHIVE_FORMAT_VERSION, primary, createdAt: nowIso };
  await writeFileDurable(new ArchiveLayout(root).identityFile, `${JSON.stringify(identity, null, 2)}\n`);
  return identity;
}

/** ARCHIVE_EMPTY for a folder that holds no archive.json: saying whether the folder is there at all. */
export function notAnArchive(root: string): HotspareError {
  const missing = !existsSync(root);
  return new HotspareError('ARCHIVE_EMPTY', missing ? `${root} does not exist` : `${root} is not a hotspare archive (no archive.json)`, {
    hint: missing ? 'pass the archive folder the agent or receiver writes (on a standby, the receiver\'s --archive; is its volume mounted?)' : 'pass the archive folder the agent or receiver writes',
  });
}
