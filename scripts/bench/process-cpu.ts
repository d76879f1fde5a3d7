import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** utime and stime, in seconds, of a /proc/.../stat line (fields 14 and 15; the name before them may hold spaces). */
function statTimes(stat: string): { user: number; system: number } {
  const fields = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
  return { user: Number(fields[11]) / 100, system: Number(fields[12]) / 100 };
}

/** utime + stime of a process (or of one thread, with `tid`) so far, in seconds. */
export function cpuSeconds(pid: number, tid?: number): number {
  const path = tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`;
  const { user, system } = statTimes(readFileSync(path, 'utf8'));
  return user + system;
}

/** CPU seconds of a thread (or of all a name's threads), and the kernel's part of them. */
export interface ThreadCpu {
  total: number;
  kernel: number;
}

/** CPU seconds so far by thread name (main thread, libuv workers, V8's helpers), with the kernel's part. */
export function cpuByThreadName(pid: number): Map<string, ThreadCpu> {
  const byName = new Map<string, ThreadCpu>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = tid === String(pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const { user, system } = statTimes(stat);
      const sum = byName.get(name) ?? { total: 0, kernel: 0 };
      byName.set(name, { total: sum.total + user + system, kernel: sum.kernel + system });
    } catch {
      // the thread ended
    }
  }
  return byName;
}

/**
 * What cpuByThreadName printed: `main 0.43 (kernel 0.12), node 0.19`, largest first; with
 * `since`, only what was used after it. The kernel's part shows what a socket's or a file's
 * system calls cost, which a CPU profile of the process does not separate.
 */
export function formatCpuByThread(now: Map<string, ThreadCpu>, since?: Map<string, ThreadCpu>): string {
  return [...now]
    .map(([name, cpu]): [string, ThreadCpu] => [name, { total: cpu.total - (since?.get(name)?.total ?? 0), kernel: cpu.kernel - (since?.get(name)?.kernel ?? 0) }])
    .filter(([, cpu]) => cpu.total > 0)
    .sort((a, b) => b[1].total - a[1].total)
    .map(([n, cpu]) => `${n} ${cpu.total.toFixed(2)}${cpu.kernel >= 0.01 ? ` (kernel ${cpu.kernel.toFixed(2)})` : ''}`)
    .join(', ');
}

/** The machine's CPU time so far (/proc/stat's first line), busy and in all, in seconds of all cores together. */
export interface MachineCpu {
  busy: number;
  total: number;
}

export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
  // user nice system idle iowait irq softirq steal (guest time is counted in user already).
  const ticks = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = ticks.reduce((a, b) => a + b, 0);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  return { busy: (total - idle) / 100, total: total / 100 };
}

/**
 * How many of the machine's cores were busy, on average, between two readings (every process,
 * the kernel's network and block work included): a figure near all of them means the run was
 * bound by CPU, whatever any one process's share.
 */
export function busyCores(from: MachineCpu, to: MachineCpu): { busy: number; cores: number } {
  const cores = availableParallelism();
  const elapsed = to.total - from.total;
  return { busy: elapsed > 0 ? ((to.busy - from.busy) / elapsed) * cores : 0, cores };
}
