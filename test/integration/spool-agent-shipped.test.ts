import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { appendFile, mkdir, open, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { parsePrometheusText, sampleValue } from '../support/prometheus-text.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** Longest wait for one step: seconds on a quiet machine (the first pass ships 1 GiB). */
const WAIT_MS = 120_000;
const REPLICA = 'standby';

/**
 * Goal: issue 5's measure, through the real agent and its /metrics: a 1 GiB append-only file,
 * then 1 MiB appended, ships about 1 MiB (hotspare_files_bytes_shipped_total), and an agent
 * restarted over an unchanged tree of many files ships almost nothing. Method: `hotspare agent`
 * with a `file` replica and one spool source (the 1 GiB file of random bytes and 2,000 small
 * files); the counter read from /metrics once the agent's log says a full pass is done and
 * nothing is pending.
 */
describe('spool bytes shipped, as /metrics counts them', () => {
  let primary: MariadbServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-spool-shipped-'));
    primary = await MariadbServer.start({ serverId: 41, binlog: true, baseDir: join(dir, 'primary') });
  });

  afterAll(async () => {
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a 1 GiB file with 1 MiB appended ships about 1 MiB; a restart over the unchanged tree ships almost nothing', async () => {
    const src = join(dir, 'src');
    await mkdir(join(src, 'many'), { recursive: true });
    const feed = join(src, 'feed.dat');
    const h = await open(feed, 'w');
    for (let i = 0; i < 64; i++) await h.write(randomBytes(16 * MiB));
    await h.close();
    for (let i = 0; i < 2000; i++) await writeFile(join(src, 'many', `f${i}`), `file ${i}\n`);
    const httpPort = await freePort();
    const config = writeAgentConfig(join(dir, 'agent'), primary, [{ name: REPLICA, type: 'file', path: join(dir, 'archive') }], {
      spool: [{ name: 'feeds', path: src }],
      http: { listen: `127.0.0.1:${httpPort}` },
    });
    /** The replica's files figures from /metrics. */
    const figures = async (): Promise<{ shipped: number; pending: number }> => {
      const { samples } = parsePrometheusText(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
      return {
        shipped: sampleValue(samples, 'hotspare_files_bytes_shipped_total', { replica: REPLICA }) ?? Number.NaN,
        pending: sampleValue(samples, 'hotspare_files_pending_changes', { replica: REPLICA }) ?? Number.NaN,
      };
    };
    const fullPasses = (agent: HotspareProcess): number => agent.logs().filter((l) => l.msg === 'full spool pass done').length;
    /**
     * The counter once the agent has done a full pass, nothing is pending, at least `min` is
     * shipped, and the counter has not moved for a second (a file read within the racy window
     * is looked at again a second later).
     */
    const settled = async (agent: HotspareProcess, min: number): Promise<number> => {
      let last: { shipped: number; atMs: number } | undefined;
      return waitFor('the files counter to settle with nothing pending', async () => {
        const f = await figures().catch(() => undefined);
        if (f === undefined || fullPasses(agent) === 0 || f.pending !== 0 || !(f.shipped >= min)) return undefined;
        if (last?.shipped !== f.shipped) last = { shipped: f.shipped, atMs: Date.now() };
        return Date.now() - last.atMs >= 1_000 ? f.shipped : undefined;
      }, WAIT_MS, 100);
    };
    let agent = new HotspareProcess(['agent', '--config', config]);
    try {
      const initial = await settled(agent, GiB);
      await appendFile(feed, randomBytes(MiB));
      // Found by the watcher, not the next rescan (a minute away).
      const appended = (await settled(agent, initial + MiB)) - initial;
      expect(appended).toBeGreaterThanOrEqual(MiB);
      // 16 new blocks and one journal line naming them.
      expect(appended).toBeLessThan(MiB + 16 * 1024);
      expect(await agent.kill('SIGTERM', 30_000)).toBe(0);

      agent = new HotspareProcess(['agent', '--config', config]);
      expect(await settled(agent, 0)).toBeLessThan(4 * 1024);
      expect(await agent.kill('SIGTERM', 30_000)).toBe(0);
    } catch (err) {
      await agent.kill('SIGKILL');
      throw new Error(`${String(err)}\nagent log (tail): ${agent.stderr.slice(-4000)}`);
    }
  });
});
