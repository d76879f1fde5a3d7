import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { BinlogPosition } from '../../src/core/binlog-position.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';

const execFileAsync = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('./dump-only.js', import.meta.url));

/** What dump-only.ts printed. */
export interface DumpOnlyRun {
  /** First event to the one ending at the head. */
  seconds: number;
  bytes: number;
  /** CPU of the whole process (start and connect included). */
  cpuSeconds: number;
}

/** Runs dump-only.ts (its own process, as the agent is) from the primary's first file to `head`. */
export async function dumpOnly(mode: 'library' | 'capture', primary: MariadbServer, head: BinlogPosition): Promise<DumpOnlyRun> {
  const { stdout } = await execFileAsync(process.execPath, [SCRIPT, mode, String(primary.port), head.file, String(head.position)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as DumpOnlyRun;
}
