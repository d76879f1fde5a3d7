import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { processAlive } from '../../../src/platform/process-alive.js';
import { waitFor } from '../../support/wait.js';

/** The state letter of /proc/PID/stat ('Z' for a zombie), or undefined once the pid is gone. */
function state(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

describe('processAlive', () => {
  it('is true for a running process', () => {
    expect(processAlive(process.pid)).toBe(true);
  });

  it('is false for a zombie: exited, not reaped by its parent, holding nothing', async () => {
    // The shell starts `sleep 0`, prints its pid and becomes `sleep 5`, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (chunk: Buffer) => resolve(Number(chunk.toString().trim()))));
      await waitFor('sleep 0 to exit', () => state(pid) === 'Z', 5_000, 5);
      expect(processAlive(pid)).toBe(false);
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('is false for a pid no process has', () => {
    // Linux hands out pids up to 4194304 at most; far above that none is ever in use.
    expect(processAlive(2 ** 30)).toBe(false);
  });
});
