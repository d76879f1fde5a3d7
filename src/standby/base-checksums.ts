import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { ArchiveLayout } from '../archive/archive-layout.js';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';

/** Reads every file of a base backup and compares its size and sha256 with the metadata. */
export async function checkBaseFiles(archiveRoot: string, base: BaseBackupMetadata): Promise<string[]> {
  const problems: string[] = [];
  const dir = join(new ArchiveLayout(archiveRoot).baseDir, base.id);
  for (const file of base.files) {
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      for await (const chunk of createReadStream(join(dir, file.name)) as AsyncIterable<Buffer>) {
        hash.update(chunk);
        bytes += chunk.length;
      }
    } catch (err) {
      problems.push(`${file.name}: cannot read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
      continue;
    }
    if (bytes !== file.bytes) problems.push(`${file.name}: ${bytes} bytes, metadata says ${file.bytes}`);
    else if (hash.digest('hex') !== file.sha256) problems.push(`${file.name}: sha256 mismatch`);
  }
  return problems;
}
