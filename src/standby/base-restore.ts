import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { ArchiveLayout } from '../archive/archive-layout.js';
import type { BaseBackupMetadata, BaseFileEntry } from '../archive/base-catalog.js';
import { DEFAULT_BASE_STREAMS } from '../config/defaults.js';
import type { Logger } from '../platform/logger.js';
import { ProgressLine } from '../platform/progress-line.js';
import { MariadbClient } from './mariadb-client.js';

/**
 * The restore sessions write nothing to the standby's own binlog: the restored rows are the
 * base, not new transactions (a standby with log_bin on would otherwise log the whole base).
 */
const RESTORE_INIT_COMMAND = 'SET SESSION sql_log_bin = 0';

/**
 * Loads a base backup into the target with the `mariadb` client: the schema, then the data
 * files, up to DEFAULT_BASE_STREAMS of them at once (each file holds whole tables), then the
 * triggers (created last so that they do not fire on the restore's INSERTs). The same as an
 * operator's `zcat schema.sql.gz data-*.sql.gz triggers.sql.gz | mariadb`, in parallel.
 */
export async function restoreBase(archiveRoot: string, base: BaseBackupMetadata, defaultsFile: string, log?: Logger): Promise<{ accountsNotRestored: string | undefined }> {
  const dir = join(new ArchiveLayout(archiveRoot).baseDir, base.id);
  const progress = new ProgressLine(`restoring base ${base.id}`, base.files.reduce((n, f) => n + f.bytes, 0));
  let done = 0;
  /**
   * Feeds `files` to one client. `tolerant`: each statement on its own (--force), and what the
   * client printed is returned instead of failing the restore.
   */
  const load = async (files: BaseFileEntry[], what: string, tolerant = false): Promise<string> => {
    const client = new MariadbClient(defaultsFile, `restoring base ${base.id} (${what})`, { initCommand: RESTORE_INIT_COMMAND, force: tolerant });
    try {
      for (const file of files) {
        const raw = createReadStream(join(dir, file.name));
        raw.on('data', (chunk) => {
          done += chunk.length;
          progress.update(done);
        });
        const gunzip = createGunzip();
        // pipe() does not pass a read error on: unhandled, a base file that could not be read
        // (its permissions, the volume) ended promote with a stack trace and the target's
        // settings left changed. Passed to what the client is fed from, it fails the restore.
        raw.on('error', (err) => gunzip.destroy(err));
        await client.feed(raw.pipe(gunzip));
      }
    } catch (err) {
      client.kill();
      throw err;
    }
    if (tolerant) return client.finishTolerant();
    await client.finish();
    return '';
  };
  const data = base.files.filter((f) => f.role === 'data');
  await load(base.files.filter((f) => f.role === 'schema'), 'schema');
  // The accounts: one the standby cannot take (a plugin it lacks, a grant on something it has
  // not) must not stop a promotion; what failed is logged for the operator.
  const accounts = base.files.filter((f) => f.role === 'accounts');
  const complaints = accounts.length === 0 ? '' : await load(accounts, 'accounts', true);
  if (complaints !== '') log?.warn({ code: 'BASE_ACCOUNTS_PARTLY', output: complaints.slice(0, 4000) }, 'some of the primary\'s accounts or grants could not be restored; see output');
  // What the client said, for the promotion's report (applications may log in with those accounts).
  const accountsNotRestored = complaints === '' ? undefined : complaints.trim().slice(0, 4000);
  const queue = [...data];
  const workers = Array.from({ length: Math.min(DEFAULT_BASE_STREAMS, data.length) }, async () => {
    for (let file = queue.shift(); file !== undefined; file = queue.shift()) await load([file], file.name);
  });
  const failed = (await Promise.allSettled(workers)).find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) throw failed.reason;
  await load(base.files.filter((f) => f.role === 'triggers'), 'triggers');
  progress.done();
  return { accountsNotRestored };
}
