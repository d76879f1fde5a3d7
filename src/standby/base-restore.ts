import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { ArchiveLayout } from '../archive/archive-layout.js';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';
import { ProgressLine } from '../platform/progress-line.js';
import { MariadbClient } from './mariadb-client.js';

/**
 * Loads a base backup into the target with the `mariadb` client: schema, rows, then triggers
 * (created last so that they do not fire on the restore's INSERTs). The same as an operator's
 * `zcat schema.sql.gz data.sql.gz triggers.sql.gz | mariadb`.
 */
export async function restoreBase(archiveRoot: string, base: BaseBackupMetadata, defaultsFile: string): Promise<void> {
  const dir = join(new ArchiveLayout(archiveRoot).baseDir, base.id);
  const progress = new ProgressLine(`restoring base ${base.id}`, base.files.reduce((n, f) => n + f.bytes, 0));
  const client = new MariadbClient(defaultsFile, `restoring base ${base.id}`);
  let done = 0;
  try {
    for (const file of base.files) {
      const raw = createReadStream(join(dir, file.name));
      raw.on('data', (chunk) => {
        done += chunk.length;
        progress.update(done);
      });
      await client.feed(raw.pipe(createGunzip()));
    }
  } catch (err) {
    client.kill();
    throw err;
  }
  await client.finish();
  progress.done();
}
