import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const SCRIPT = fileURLToPath(new URL('../../dist/scripts/check-replicas.js', import.meta.url));

async function run(args: string[], cwd: string): Promise<{ code: number; stdout: string }> {
  // As `npm run check:replicas -- ARGS` runs it: in the package's folder, with INIT_CWD where npm was run.
  const env = { ...process.env, INIT_CWD: cwd };
  return execFileAsync('node', [SCRIPT, ...args], { cwd: fileURLToPath(new URL('../..', import.meta.url)), env }).then(
    ({ stdout }) => ({ code: 0, stdout }),
    (err: { code: number; stdout: string }) => ({ code: err.code, stdout: err.stdout }),
  );
}

/**
 * Goal: `npm run check:replicas` checks the definitions an operator names (files or folders,
 * relative to where npm was run), the repository's replicas/ without arguments, and fails on an
 * invalid one, a missing path or a folder without definitions. Method: the built script.
 */
describe('check:replicas', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-check-replicas-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('checks named files and folders, and the repository replicas/ by default', async () => {
    mkdirSync(join(dir, 'defs'));
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(dir, 'defs', 'a.json'), JSON.stringify({ name: 'a', type: 'file', path: '/mnt/a' }));
    writeFileSync(join(dir, 'defs', 'b.yaml'), 'name: b\ntype: remote\naddress: standby-b:7654\ntokenFile: /etc/hotspare/token\n');
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ name: 'c', type: 'file', path: '/mnt/c', colour: 'blue' }));

    expect(await run([], dir)).toEqual({ code: 0, stdout: 'ok   replicas/standby-a.json\n' });
    expect(await run(['defs'], dir)).toEqual({ code: 0, stdout: `ok   ${join('defs', 'a.json')}\nok   ${join('defs', 'b.yaml')}\n` });
    expect(await run([join(dir, 'defs', 'a.json')], '/')).toEqual({ code: 0, stdout: `ok   ${join(dir, 'defs', 'a.json')}\n` });

    const bad = await run(['defs/a.json', 'bad.json'], dir);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toMatch(/^ok {3}defs\/a\.json\nFAIL bad\.json: unknown key "colour"/);

    // A nested field after the file's name, not joined to it; an agent config said to be one.
    writeFileSync(join(dir, 'slow.json'), JSON.stringify({ name: 'd', type: 'file', path: '/mnt/d', thresholds: { maxLagSeconds: 'soon' } }));
    expect(await run(['slow.json'], dir)).toEqual({ code: 2, stdout: 'FAIL slow.json: thresholds.maxLagSeconds: expected a number, received "soon"\n' });
    writeFileSync(join(dir, 'agent.yaml'), 'primary:\n  host: 127.0.0.1\nreplicas: []\n');
    expect(await run(['agent.yaml'], dir)).toEqual({ code: 2, stdout: 'FAIL agent.yaml: an agent config, not a replica definition (hotspare agent --config checks those)\n' });

    const missing = await run(['nowhere'], dir);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(/^FAIL nowhere: ENOENT/);
    const empty = await run(['empty'], dir);
    expect(empty.code).toBe(2);
    expect(empty.stdout).toBe('FAIL empty: no replica definition files (*.json, *.yaml, *.yml) in this folder\n');
  });
});
