import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processAlive } from './process-alive.js';

/**
 * A private folder (mode 0700) in the system's temporary folder, named `<prefix><pid>-XXXXXX`.
 * Its owner removes it when done; a process killed before that (SIGKILL during a base backup,
 * say) cannot, so each new one first removes the folders of `prefix` whose process is gone:
 * what they hold (a password in a client option file, a backup's scratch files) does not
 * outlive the next run. Another user's folders cannot be removed (the temporary folder is
 * sticky) and are left alone.
 */
export async function makePrivateTempDir(prefix: string): Promise<string> {
  await removeOrphans(prefix);
  return mkdtemp(join(tmpdir(), `${prefix}${process.pid}-`));
}

async function removeOrphans(prefix: string): Promise<void> {
  let names: string[];
  try {
    names = await readdir(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) continue;
    await rm(join(tmpdir(), name), { recursive: true, force: true }).catch(() => undefined);
  }
}
