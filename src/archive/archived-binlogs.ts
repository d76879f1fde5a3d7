import { readdir } from 'node:fs/promises';
import { BINLOG_FILE_NAME, compareBinlogNames, type ArchiveLayout } from './archive-layout.js';

// Apart from the writer (and its rxjs), so that promote, status and verify load without them.

/** Lists the archive's binlog files in server order. */
export async function listArchivedBinlogs(layout: ArchiveLayout): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(layout.binlogDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => BINLOG_FILE_NAME.test(n)).sort(compareBinlogNames);
}
