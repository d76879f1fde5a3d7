import { readFileSync } from 'node:fs';

/**
 * Whether a process with this pid runs (EPERM: it does, as another user's). A zombie, an
 * exited process its parent has not reaped yet, does not: it has let go of its files, its
 * locks and its sockets, which is what every caller asks about (an archive lock's holder, a
 * temporary folder's owner, a server being stopped).
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    return stat.slice(close + 2, close + 3) !== 'Z';
  } catch {
    // No /proc (not Linux), or it just went: the signal said it was there.
    return true;
  }
}
