import { createHash, type Hash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveLayout } from '../archive/archive-layout.js';
import { O_DIRECT, alignedMemory, alignedMemoryAvailable } from '../archive/direct-writes.js';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';
import { DEFAULT_BASE_CHECKSUM_READ_BYTES } from '../config/defaults.js';

/** Reads every file of a base backup and compares its size and sha256 with the metadata. */
export async function checkBaseFiles(archiveRoot: string, base: BaseBackupMetadata): Promise<string[]> {
  const problems: string[] = [];
  const dir = join(new ArchiveLayout(archiveRoot).baseDir, base.id);
  // Two buffers for the whole base: the next piece is read (on the libuv pool) while this one
  // is hashed, and no piece allocates. Aligned, so the reads can go past the page cache.
  const memory = alignedMemory(2 * DEFAULT_BASE_CHECKSUM_READ_BYTES);
  const buffers = [Buffer.from(memory, 0, DEFAULT_BASE_CHECKSUM_READ_BYTES), Buffer.from(memory, DEFAULT_BASE_CHECKSUM_READ_BYTES, DEFAULT_BASE_CHECKSUM_READ_BYTES)] as const;
  for (const file of base.files) {
    const hash = createHash('sha256');
    let bytes: number;
    try {
      bytes = await hashFile(join(dir, file.name), hash, buffers);
    } catch (err) {
      problems.push(`${file.name}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      continue;
    }
    if (bytes !== file.bytes) problems.push(`${file.name}: ${bytes} bytes, metadata says ${file.bytes}`);
    else if (hash.digest('hex') !== file.sha256) problems.push(`${file.name}: sha256 mismatch`);
  }
  return problems;
}

/**
 * Feeds the whole file to `hash`; returns its length. At most one read is in flight. The file is
 * read past the page cache (O_DIRECT) where that is possible: a base is read once, cold, and
 * through the page cache that costs more than the hashing (the same stream is extracted beside
 * this check; see xbstream-extract.ts). Every read but the last is whole pieces, so aligned.
 */
async function hashFile(path: string, hash: Hash, buffers: readonly [Buffer, Buffer]): Promise<number> {
  const handle = await openForReading(path);
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

async function openForReading(path: string): Promise<FileHandle> {
  if (O_DIRECT !== 0 && alignedMemoryAvailable) {
    try {
      return await open(path, constants.O_RDONLY | O_DIRECT);
    } catch (err) {
      // A file system without O_DIRECT (tmpfs) refuses the flag: read through the page cache.
      if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
    }
  }
  return open(path, 'r');
}
