import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { waitFor } from './wait.js';

/** The FDE's flags byte in a binlog file: magic (4) + header offset 17. */
const FDE_FLAGS_BYTE = 4 + 17;
const FLAG_BINLOG_IN_USE = 0x01;

/** The primary's binlog files and sizes, oldest first. */
export async function primaryBinlogs(server: MariadbServer): Promise<{ name: string; size: number }[]> {
  const conn = await server.connect();
  try {
    const [rows] = await conn.query('SHOW BINARY LOGS');
    return (rows as { Log_name: string; File_size: string | number }[]).map((r) => ({ name: r.Log_name, size: Number(r.File_size) }));
  } finally {
    await conn.end();
  }
}

/**
 * The primary's files from the archive's first file on: an archive starts at the file that
 * holds its base backup's coordinates, not at the primary's oldest file.
 */
async function primaryBinlogsFromArchiveStart(server: MariadbServer, archive: string): Promise<{ name: string; size: number }[]> {
  const archived = (await readdir(join(archive, 'binlog')).catch(() => [] as string[])).filter((n) => /\.\d{6,}$/.test(n)).sort();
  const first = archived[0];
  if (first === undefined) return [];
  return (await primaryBinlogs(server)).filter((f) => f.name >= first);
}

/**
 * Waits until the archive equals the primary's binlog byte for byte, and fails with the last
 * differences if it does not within `timeoutMs`. Polled, because the server can append to
 * its newest file after the workload stopped (a binlog checkpoint event after a rotation), so
 * one comparison can catch the two sides a moment apart.
 */
export async function expectArchiveEqual(server: MariadbServer, archive: string, timeoutMs = 60_000): Promise<void> {
  let problems: string[] = [];
  try {
    await waitFor('the archive to equal the primary\'s binlog', async () => (problems = await compareArchive(server, archive)).length === 0, timeoutMs);
  } catch {
    throw new Error(`the archive ${archive} does not equal the primary's binlog: ${problems.join('; ')}`);
  }
}

/**
 * Differences between the archive and the primary's binlog, byte for byte: every file the
 * primary has must be in the archive, identical, except the newest one's in-use flag. Returns
 * a list of problems (empty when equal).
 */
export async function compareArchive(server: MariadbServer, archive: string): Promise<string[]> {
  const files = await primaryBinlogsFromArchiveStart(server, archive);
  const archived = (await readdir(join(archive, 'binlog')).catch(() => [] as string[])).filter((n) => /\.\d{6,}$/.test(n)).sort();
  if (archived.length === 0) return ['the archive holds no binlog file'];
  const problems: string[] = [];
  const names = files.map((f) => f.name);
  if (JSON.stringify(archived) !== JSON.stringify(names)) problems.push(`files differ: archive ${archived.join(',')} primary ${names.join(',')}`);
  for (const [i, f] of files.entries()) {
    const ours = await readFile(join(archive, 'binlog', f.name)).catch(() => undefined);
    const theirs = (await readFile(join(server.datadir, f.name))).subarray(0, f.size);
    if (ours === undefined) continue;
    if (ours.length !== theirs.length) {
      problems.push(`${f.name}: ${ours.length} bytes archived, ${theirs.length} on the primary`);
      continue;
    }
    const newest = i === files.length - 1;
    const a = Buffer.from(ours);
    const b = Buffer.from(theirs);
    if (newest && a.length > FDE_FLAGS_BYTE) {
      a[FDE_FLAGS_BYTE] = (a[FDE_FLAGS_BYTE] as number) & ~FLAG_BINLOG_IN_USE;
      b[FDE_FLAGS_BYTE] = (b[FDE_FLAGS_BYTE] as number) & ~FLAG_BINLOG_IN_USE;
    }
    if (!a.equals(b)) {
      let at = 0;
      while (at < a.length && a[at] === b[at]) at += 1;
      problems.push(`${f.name}: first difference at byte ${at}`);
    }
  }
  return problems;
}
