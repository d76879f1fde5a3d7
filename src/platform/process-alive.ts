import { readFileSync, readlinkSync } from 'node:fs';

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

/**
 * When a process started, as /proc gives it (clock ticks since boot, field 22 of
 * /proc/<pid>/stat): with the boot id, what tells a process from a later one that was given the
 * same pid. Undefined where there is no /proc or the process is gone.
 */
export function processStartTicks(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

/** This boot of the machine (Linux's random boot id); undefined where there is none. */
export function bootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** This process's pid namespace (`pid:[inode]`): pids of another namespace (a container's) mean nothing here. */
export function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}
