import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveLayout } from '../archive/archive-layout.js';
import { archiveReadError } from '../archive/archive-errors.js';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';
import { DEFAULT_BASE_CHECKSUM_READ_BYTES } from '../config/defaults.js';

/** Reads every file of a base backup and compares its size and sha256 with the metadata. */
export async function checkBaseFiles(archiveRoot: string, base: BaseBackupMetadata): Promise<string[]> {
  const problems: string[] = [];
  const dir = join(new ArchiveLayout(archiveRoot).baseDir, base.id);
  // Two buffers for the whole base: the next piece is read (on the libuv pool) while this one
  // is hashed, and no piece allocates.
  const buffers = [Buffer.allocUnsafeSlow(DEFAULT_BASE_CHECKSUM_READ_BYTES), Buffer.allocUnsafeSlow(DEFAULT_BASE_CHECKSUM_READ_BYTES)] as const;
  for (const file of base.files) {
    const hash = createHash('sha256');
    let bytes: number;
    try {
      bytes = await hashFile(join(dir, file.name), hash, buffers);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Refused, not damaged: passed over as damage, an older base was restored in its place
      // (or, with none, BASE_DAMAGED sent the operator after a new base), for want of a chmod.
      if (code === 'EACCES' || code === 'EPERM') throw archiveReadError(err, archiveRoot);
      problems.push(`${file.name}: cannot read (${code ?? String(err)})`);
      continue;
    }
    if (bytes !== file.bytes) problems.push(`${file.name}: ${bytes} bytes, metadata says ${file.bytes}`);
    else if (hash.digest('hex') !== file.sha256) problems.push(`${file.name}: sha256 mismatch`);
  }
  return problems;
}

/** Feeds the whole file to `hash`; returns its length. At most one read is in flight. */
async function hashFile(path: string, hash: Hash, buffers: readonly [Buffer, Buffer]): Promise<number> {
  const handle = await open(path, 'r');
  try {
    let position = 0;
    let [piece, spare] = buffers;
    let reading = handle.read(piece, 0, piece.length, position);
    for (;;) {
      const { bytesRead } = await reading;
      if (bytesRead === 0) return position;
      position += bytesRead;
      reading = handle.read(spare, 0, spare.length, position);
      hash.update(piece.subarray(0, bytesRead));
      [piece, spare] = [spare, piece];
    }
  } finally {
    await handle.close();
  }
}
