import type { ChildProcess } from 'node:child_process';

/** hotspare commands the tests started that have not exited yet. */
const live = new Set<ChildProcess>();

/**
 * Keeps track of a child process until it exits, so that one a failed or timed-out test left
 * running is killed when its test file ends (reap-children.ts) or the test process exits,
 * instead of retrying against servers that are gone while the next file runs.
 */
export function trackChild(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** Kills every tracked child still running; returns their command lines. */
export function killLiveChildren(): string[] {
  const killed: string[] = [];
  for (const child of live) {
    killed.push(child.spawnargs.slice(1).join(' '));
    child.kill('SIGKILL');
  }
  live.clear();
  return killed;
}

process.once('exit', () => {
  killLiveChildren();
});
