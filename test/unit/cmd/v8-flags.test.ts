import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const V8_FLAGS = fileURLToPath(new URL('../../../bin/v8-flags.js', import.meta.url));
const { v8FlagsFor } = createRequire(import.meta.url)(V8_FLAGS) as { v8FlagsFor: (verb: unknown) => readonly string[] };

/**
 * Churns the old generation (a live set of ~20 MB replaced piece by piece) after applying the
 * verb's flags the way bin/hotspare.js does, and prints V8's GC trace.
 */
const CHURN = `
  require(process.argv[1]).applyV8Flags(process.argv[2]);
  const keep = new Array(200).fill(null);
  for (let i = 0; i < 20000; i++) { const o = new Array(1000); for (let j = 0; j < 1000; j++) o[j] = { j }; keep[i % 200] = o; }
`;

async function gcTrace(verb: string): Promise<string> {
  const { stdout } = await execFileAsync(process.execPath, ['--trace-gc', '-e', CHURN, V8_FLAGS, verb]);
  return stdout;
}

/**
 * Goal: `hotspare receive` runs without V8's incremental marking (bin/v8-flags.js says why), and
 * no other verb is changed. Method: the table, and a process that sets the flags after start as
 * the command does, since V8 could ignore a flag set that late: its GC trace must show no
 * incremental marking where the same churn under `agent` shows some.
 */
describe('V8 flags per verb', () => {
  it('receive turns incremental marking off; other verbs, and names that are not verbs, set nothing', () => {
    expect(v8FlagsFor('receive')).toEqual(['--no-incremental-marking']);
    for (const verb of ['agent', 'promote', 'demo', 'constructor', '__proto__', undefined]) expect(v8FlagsFor(verb)).toEqual([]);
  });

  it('set after start, the flag takes effect: no incremental marking under receive, some under agent', async () => {
    const [receive, agent] = await Promise.all([gcTrace('receive'), gcTrace('agent')]);
    expect(agent).toMatch(/incremental marking/);
    expect(receive).toMatch(/Scavenge/);
    expect(receive).not.toMatch(/incremental marking/);
  });
});
