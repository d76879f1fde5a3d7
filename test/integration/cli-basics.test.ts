import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const execFileAsync = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/hotspare.js', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return execFileAsync('node', [BIN, ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );
}

/**
 * Goal: the built command (bin/hotspare.js, which loads the bundle) answers the questions an
 * operator asks first. Method: run it; no server needed.
 */
describe('hotspare command line', () => {
  it('prints its version (the package.json version, set into the bundle at build time)', async () => {
    const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };
    for (const form of ['version', '--version', '-V']) {
      const result = await run([form]);
      expect(result).toEqual({ code: 0, stdout: `hotspare ${version}\n`, stderr: '' });
    }
  });

  it('help exits 0 with the commands; an unknown command exits 2 and says how to get help', async () => {
    const help = await run(['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('hotspare promote --archive DIR --target MYSQL_URL');
    const unknown = await run(['promot']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "promot"');
    expect(unknown.stderr).toContain('hotspare help');
  });

  it('status, verify and promote on a folder that is no archive say whether it exists at all', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'hotspare-not-archive-'));
    try {
      for (const verb of [['status'], ['verify'], ['promote', '--files-only', '--files-root', join(empty, 'files')]]) {
        const gone = await run([...verb, '--archive', join(empty, 'gone')]);
        expect(gone.code, verb[0]).toBe(1);
        expect(gone.stderr).toContain(`error ARCHIVE_EMPTY: ${join(empty, 'gone')} does not exist`);
        const blank = await run([...verb, '--archive', empty]);
        expect(blank.code, verb[0]).toBe(1);
        expect(blank.stderr).toContain(`error ARCHIVE_EMPTY: ${empty} is not a hotspare archive (no archive.json)`);
      }
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('promote --until with an impossible date is a usage error naming the option and the value (Date.parse rolled it into March)', async () => {
    for (const until of ['2026-02-30T10:00:00Z', '2026-04-31T10:00:00Z', '2026-11-22T25:00:00Z']) {
      for (const mode of [['--target', 'mysql://root@127.0.0.1:1', '--dry-run'], ['--files-only', '--files-root', '/nonexistent/files']]) {
        const result = await run(['promote', '--archive', '/nonexistent', ...mode, '--until', until]);
        expect(result.code, `${until} ${mode[0]}`).toBe(2);
        expect(result.stderr).toContain(`usage error: --until: ${JSON.stringify(until)} is not a real date and time`);
        expect(result.stdout).toBe('');
      }
    }
  });

  it('every verb takes --help (and -h): its own usage, exit 0, and every option it accepts is in it', async () => {
    const options: Record<string, string[]> = {
      agent: ['--config'],
      receive: ['--archive', '--listen', '--token-file', '--tls-cert', '--tls-key', '--http', '--allow-plaintext'],
      base: ['--config', '--replica', '--method', '--json'],
      promote: ['--archive', '--target', '--until', '--until-gtid', '--until-position', '--files-root', '--no-hooks', '--fence', '--dry-run', '--json', '--replace', '--target-datadir', '--target-start', '--extractor', '--files-only', '--source'],
      status: ['--archive', '--json'],
      verify: ['--archive', '--json'],
      check: ['--url', '--max-lag-seconds', '--max-lag-bytes'],
      demo: ['--seconds', '--keep'],
    };
    for (const [verb, accepted] of Object.entries(options)) {
      for (const flag of ['--help', '-h']) {
        const result = await run([verb, flag]);
        // check: the monitoring-plugin codes, where help is no check (3 UNKNOWN), never OK.
        expect(result.code, `${verb} ${flag}: ${result.stderr}`).toBe(verb === 'check' ? 3 : 0);
        expect(result.stdout).toContain(`hotspare ${verb}`);
        for (const option of accepted) expect(result.stdout, `${verb} ${flag}`).toMatch(new RegExp(`${option}\\b`));
      }
    }
    // --listen is optional (the code's default): the usage says so, with the default.
    const receive = await run(['receive', '--help']);
    expect(receive.stdout).toContain('[--listen HOST:PORT]');
    expect(receive.stdout).toContain('default 127.0.0.1:7654');
    // After other arguments, -h may be an option's value: not help (a usage error here, not a 0 that did nothing).
    const mixed = await run(['promote', '--archive', '/nonexistent', '-h']);
    expect(mixed.code).toBe(2);
    expect(mixed.stdout).toBe('');
  });
});
