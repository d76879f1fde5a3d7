import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

// Goal: `npm run demo`, the README's first command, runs the whole product end to end and
// says so only when the promoted standby really equals the primary.

const BIN = new URL('../../bin/hotspare.js', import.meta.url).pathname;

describe('hotspare demo', () => {
  it('streams, shows live lag, promotes the standby, and finds it equal to the primary', async () => {
    const { stdout } = await promisify(execFile)('node', [BIN, 'demo', '--seconds', '3'], { timeout: 110_000 });
    expect(stdout).toMatch(/ticks +standby: (streaming|catching-up|disconnected), \d+ bytes \/ [\d.]+ s behind/);
    expect(stdout).toMatch(/caught up: standby: streaming, 0 bytes \/ 0\.000 s behind, files pending 0/);
    expect(stdout).toMatch(/archive vs primary binlog: \d+ files, identical byte for byte/);
    expect(stdout).toMatch(/gateway\.messages +\d+ +\d+ +equal/);
    expect(stdout).toMatch(/emoncms\.feed_1 +\d+ +\d+ +equal/);
    expect(stdout).toMatch(/spool tree \(log\/ excluded\) vs restored: identical/);
    expect(stdout).toMatch(/demo OK/);
  });
});
