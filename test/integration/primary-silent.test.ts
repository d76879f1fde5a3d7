import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PrimaryConnection } from '../../src/config/load.js';
import { systemClock } from '../../src/platform/clock.js';
import { silentLogger } from '../../src/platform/logger.js';
import { HeadPoller } from '../../src/primary/head-poller.js';
import { MysqlProbe } from '../../src/primary/mysql-probe.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { waitFor } from '../support/wait.js';

const QUERY_TIMEOUT_MS = 1_000;

/** Every thread of the process is stopped ('T', or 't' under a tracer), per /proc. */
function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((tid) => {
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return /^[Tt]$/.test(stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3));
  });
}

/** How long a promise takes to settle, and how it settled. */
async function settle<T>(p: Promise<T>): Promise<{ ms: number; value?: T; err?: unknown }> {
  const t0 = Date.now();
  try {
    // Awaited before the clock is read: in `{ ms: Date.now() - t0, value: await p }` the time
    // would be taken before the promise settled.
    const value = await p;
    return { ms: Date.now() - t0, value };
  } catch (err) {
    return { ms: Date.now() - t0, err };
  }
}

/**
 * Goal: a primary that stops answering without closing anything (its host lost: no reply, no
 * reset) fails the agent's checks within their deadline and never holds up a stop. Method: a
 * real sandbox server frozen with SIGSTOP while connections to it are open.
 */
describe('a primary gone silent', () => {
  let primary: MariadbServer;
  let dir: string;
  let pid: number;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-silent-'));
    primary = await MariadbServer.start({ serverId: 61, binlog: true, baseDir: join(dir, 'primary') });
    pid = primary.pid as number;
  });

  afterAll(async () => {
    if (pid !== undefined) process.kill(pid, 'SIGCONT');
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a head check fails with PRIMARY_UNREACHABLE at its deadline, the connection is dropped at once, and the poller stops', async () => {
    const endpoint: PrimaryConnection = { host: '127.0.0.1', port: primary.port, user: 'root', password: '', serverId: 4242 };
    const probe = await MysqlProbe.connect(endpoint, { queryTimeoutMs: QUERY_TIMEOUT_MS });
    expect((await probe.head()).position).toBeGreaterThan(0);
    const failures: string[] = [];
    let observed = 0;
    const poller = new HeadPoller({
      primary: endpoint,
      intervalMs: 100,
      clock: systemClock,
      logger: silentLogger(),
      onObservation: () => {
        observed += 1;
      },
      onFailure: (f) => failures.push(f.code),
      queryTimeoutMs: QUERY_TIMEOUT_MS,
    });
    poller.start();
    await waitFor('a first head check', () => observed > 0, 5_000);
    process.kill(pid, 'SIGSTOP');
    // The signal is sent at once, but each of the server's threads stops on its own way back
    // from the kernel: the question is asked only once every one of them has stopped.
    await waitFor('the primary to be stopped', () => allThreadsStopped(pid), 5_000, 10);
    try {
      const head = await settle(probe.head());
      expect(head.err).toMatchObject({ code: 'PRIMARY_UNREACHABLE' });
      expect(head.ms).toBeGreaterThanOrEqual(QUERY_TIMEOUT_MS - 50);
      expect(head.ms).toBeLessThan(QUERY_TIMEOUT_MS + 2_000);
      expect((await settle(probe.close())).ms).toBeLessThan(500);
      await waitFor('the poller to report the silent primary', () => failures.includes('PRIMARY_UNREACHABLE'), 10_000);
      // The next check begins 100 ms later with a new connection, which the stopped server
      // takes but never greets: stop while that connect waits.
      await new Promise((r) => setTimeout(r, 300));
      // Stopping waits for the check under way, which is bounded by its deadline (the connect too).
      expect((await settle(poller.stop())).ms).toBeLessThan(QUERY_TIMEOUT_MS + 3_000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
  });
});
