import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/**
 * Goal: once a long-running command has stopped, a handle something left open (here a timer)
 * does not keep the process alive: it exits with the command's code after the grace, saying
 * what held it (EXIT_HELD); a process with nothing left exits at once. Method: real node
 * processes running the built module (npm test builds first).
 */
const MODULE = new URL('../../../dist/src/cmd/exit-once-settled.js', import.meta.url).href;
const run = (held: boolean): Promise<{ stdout: string; stderr: string }> =>
  promisify(execFile)(process.execPath, ['--input-type=module', '-e', `
    const { exitOnceSettled } = await import(${JSON.stringify(MODULE)});
    ${held ? 'setInterval(() => {}, 1000);' : ''}
    process.exitCode = 0;
    exitOnceSettled({ warn: (fields, msg) => process.stderr.write(JSON.stringify({ ...fields, msg }) + '\\n') }, 300);
  `], { timeout: 10_000 });

describe('exitOnceSettled', () => {
  it('ends a process something still holds, after the grace, naming what held it', async () => {
    const started = Date.now();
    const { stderr } = await run(true);
    expect(Date.now() - started).toBeLessThan(5_000);
    const line = JSON.parse(stderr.trim()) as { code: string; resources: string[] };
    expect(line.code).toBe('EXIT_HELD');
    expect(line.resources).toContain('Timeout');
  });

  it('says nothing when nothing holds the process', async () => {
    expect((await run(false)).stderr).toBe('');
  });
});
