import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/sandbox/free-port.js';
import { runHotspare, writeAgentConfig } from '../support/agent-process.js';

/**
 * Goal: an agent started while its primary is down exits 1 at once with PRIMARY_UNREACHABLE,
 * and its hint says what is true at a start: it does not retry, a service manager must start it
 * again (a running agent's head checks and dumps do retry, and say so). Method: the real
 * `hotspare agent` against a port where nothing listens; no server needed.
 */
describe('agent started with the primary down', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-start-down-'));

  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('exits 1 with PRIMARY_UNREACHABLE, and a hint that it does not retry at start and should be restarted by a service manager', async () => {
    // Free a moment ago and never listened on: a connect is refused.
    const port = await freePort();
    const config = writeAgentConfig(dir, { port }, [{ name: 'a', type: 'file', path: join(dir, 'archive') }]);
    const result = await runHotspare(['agent', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`error PRIMARY_UNREACHABLE: connect: cannot reach the primary at root@127.0.0.1:${port} (ECONNREFUSED)`);
    const hint = result.stderr.split('\n').find((l) => l.startsWith('hint: '));
    expect(hint).toContain('check that the server runs');
    expect(hint).toContain('the agent does not start without the primary');
    expect(hint).toContain('Restart=on-failure');
    expect(hint).not.toContain('the agent retries;');
  });

  it('hotspare base the same: PRIMARY_UNREACHABLE, and a hint to run it again rather than "the agent retries"', async () => {
    const port = await freePort();
    const config = writeAgentConfig(join(dir, 'base'), { port }, [{ name: 'a', type: 'file', path: join(dir, 'base-archive') }]);
    const result = await runHotspare(['base', '--config', config]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('error PRIMARY_UNREACHABLE');
    const hint = result.stderr.split('\n').find((l) => l.startsWith('hint: '));
    expect(hint).toContain('then run `hotspare base` again');
    expect(hint).not.toContain('the agent retries');
  });
});
