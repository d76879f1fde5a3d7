import type { StatsFs } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A volume's size and what this user may still write on it (statfs: blocks and bavail). */
export interface VolumeSpace {
  totalBytes: number;
  freeBytes: number;
}

/**
 * The space of the volume `path` is on. While `path` does not exist yet (an archive folder the
 * agent makes when a replica's session first opens) its nearest existing ancestor is read: the
 * same volume, unless the folder would itself be a mount point, which cannot be mounted before
 * it exists.
 */
export async function volumeSpace(path: string): Promise<VolumeSpace> {
  const fs = await statfsNearest(path);
  return { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize };
}

async function statfsNearest(path: string): Promise<StatsFs> {
  for (let at = path; ; at = dirname(at)) {
    try {
      return await statfs(at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(at) === at) throw err;
    }
  }
}
