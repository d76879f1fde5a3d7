import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/platform/logger.js';
import { freePort } from '../../src/sandbox/free-port.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { restoreSpool } from '../../src/standby/spool-restore.js';
import { verifySpoolArchive } from '../../src/standby/spool-verify.js';
import { HotspareProcess, waitFor, writeAgentConfig } from '../support/agent-process.js';
import { CuttingProxy } from '../support/cutting-proxy.js';
import { ReceiverProcess } from '../support/receiver-process.js';
import { Churn, prng } from '../support/spool-churn.js';
import { describeTree, treeDiff } from '../support/spool-tree-compare.js';

const TOKEN = 'spool-remote-token-0123456789';
/** Longest wait for one step; a few seconds on a quiet machine. */
const WAIT_MS = 60_000;
/** Longest wait for the agent to exit on SIGTERM. */
const EXIT_MS = 30_000;
/** The slow link of the stop test, and a random (incompressible) file that needs about two minutes over it. */
const SLOW_LINK_BYTES_PER_SECOND = 64 * 1024;
const SLOW_SPOOL_FILE_BYTES = 8 * 1024 * 1024;
/**
 * How long the agent may take to stop over that link: about 19 s (5 s for the spool operations
 * under way, 2 s to settle, 2 s for the last-heard record, 10 s for the receiver's goodbye
 * behind what was already sent), with room.
 */
const SLOW_LINK_STOP_MS = 30_000;

/**
 * Goal: spool files reach a `remote` replica's archive as they are on the primary's host.
 * Method: the real `hotspare agent` with a remote replica through a real `hotspare receive`,
 * random churn over the spool tree, the agent and the receiver each SIGKILLed and restarted
 * once mid-churn; then the tree restored from the receiver's archive equals the source (bytes,
 * modes, mtimes, links) and the archive's spool history verifies.
 */
describe('spool over a remote replica', () => {
  let primary: MariadbServer;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-spool-remote-'));
    primary = await MariadbServer.start({ serverId: 31, binlog: true, baseDir: join(dir, 'primary') });
  });

  afterAll(async () => {
    await primary?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('churn through `hotspare agent` and `hotspare receive`, both SIGKILLed once: the receiver archive restores the source tree', async () => {
    const src = join(dir, 'src');
    const archive = join(dir, 'archive');
    await mkdir(join(src, 'queue'), { recursive: true });
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const port = await freePort();
    const receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    await receiver.start();
    const config = writeAgentConfig(join(dir, 'agent'), primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${port}`, tokenFile }], {
      spool: [{ name: 'spool', path: src, exclude: ['tmp/**'] }],
    });
    const skip = (p: string): boolean => p === 'tmp' || p.startsWith('tmp/');
    const churn = new Churn(src, prng(7));
    await churn.run(150);
    let agent = new HotspareProcess(['agent', '--config', config]);
    const agents = [agent];
    // A failure says what the processes were doing, not only which wait ran out.
    const withLogs = (err: unknown): Error =>
      new Error(`${String(err)}\n${[...agents.map((a, i) => `agent ${i + 1} log (tail): ${a.stderr.slice(-4000)}`), `receiver log (tail): ${receiver.stderr.slice(-4000)}`].join('\n')}`);
    const restoredEqualsSource = async (): Promise<string[]> => {
      const to = mkdtempSync(join(dir, 'restored-'));
      try {
        await restoreSpool({ archiveDir: archive, filesRoot: to, logger: silentLogger() });
        return treeDiff(await describeTree(src, skip), await describeTree(join(to, 'spool')));
      } catch (err) {
        return [String(err)];
      } finally {
        rmSync(to, { recursive: true, force: true });
      }
    };
    // Spool history the receiver has written so far (journal segments grow with every pass).
    const journalBytes = (): number => {
      const journal = join(archive, 'files', 'spool', 'journal');
      return existsSync(journal) ? readdirSync(journal).reduce((n, f) => n + statSync(join(journal, f)).size, 0) : 0;
    };
    const churnWhileShipping = async (ops: number): Promise<void> => {
      const before = journalBytes();
      await churn.run(ops);
      await waitFor('spool changes to reach the receiver', () => journalBytes() > before, WAIT_MS, 50);
    };
    try {
      await churnWhileShipping(300);
      await agent.kill('SIGKILL'); // mid-stream: a pass may be half-sent
      await churn.run(100); // while no agent runs
      agent = new HotspareProcess(['agent', '--config', config]);
      agents.push(agent);
      await churnWhileShipping(200);
      await receiver.stop('SIGKILL');
      await churn.run(100); // while the standby is away
      await receiver.start();
      await churnWhileShipping(200);
      // Excluded paths stay on the primary's host.
      await mkdir(join(src, 'tmp'), { recursive: true });
      await writeFile(join(src, 'tmp', 'scratch'), 'x');

      let diff: string[] = [];
      await waitFor(
        'the receiver archive to hold the source tree',
        async () => {
          diff = await restoredEqualsSource();
          return diff.length === 0;
        },
        WAIT_MS,
        500,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; last differences: ${diff.join('\n')}`);
      });
    } catch (err) {
      await agent.kill('SIGKILL');
      await receiver.stop('SIGKILL');
      throw withLogs(err);
    }
    // An agent that does not end on SIGTERM is a failure of its own, not a test timeout.
    const exit = await agent.kill('SIGTERM', EXIT_MS).catch(async (err: unknown) => {
      await receiver.stop('SIGKILL');
      throw withLogs(err);
    });
    expect(exit).toBe(0);
    await receiver.stop();
    // Every connection, before and after the agent's SIGKILL, came from one agent id: the one
    // its stateDir keeps (a restarted agent replaces its own lingering connection).
    const ids = receiver.stderr.split('\n').filter((l) => l.includes('"agent connected"')).map((l) => (JSON.parse(l) as { agentId: string }).agentId);
    expect(ids.length).toBeGreaterThan(2);
    expect(new Set(ids)).toEqual(new Set([readFileSync(join(dir, 'agent', 'state', 'agent-id'), 'utf8').trim()]));
    // After a clean stop, from the archive alone: equal, file for file, and intact.
    expect(await restoredEqualsSource()).toEqual([]);
    const described = await describeTree(src, skip);
    expect([...described.values()].filter((v) => v.startsWith('file')).length).toBeGreaterThan(30);
    expect([...described.values()].some((v) => v.startsWith('link'))).toBe(true);
    expect((await verifySpoolArchive(archive, silentLogger())).map((r) => [r.source, r.problems])).toEqual([['spool', []]]);
    // Its waits (a few seconds in all on a quiet machine) can add up past the default 120 s on a
    // loaded one: it timed out once at load 3. Their limits sum to less than this one, so a
    // stall fails with the logs.
  }, 4 * WAIT_MS + EXIT_MS + 40_000);

  it('SIGTERM while a spool pass crosses a slow link: the agent stops within seconds, and its next start ships the rest', async () => {
    const here = join(dir, 'slow-spool');
    const src = join(here, 'src');
    const archive = join(here, 'archive');
    await mkdir(src, { recursive: true });
    const tokenFile = join(here, 'token');
    writeFileSync(tokenFile, `${TOKEN}\n`);
    const port = await freePort();
    const receiver = new ReceiverProcess(['--archive', archive, '--listen', `127.0.0.1:${port}`, '--token-file', tokenFile]);
    await receiver.start();
    const proxy = await CuttingProxy.start({ host: '127.0.0.1', port });
    const config = writeAgentConfig(join(here, 'agent'), primary, [{ name: 'standby', type: 'remote', address: `127.0.0.1:${proxy.port}`, tokenFile }], {
      spool: [{ name: 'spool', path: src }],
    });
    const agents: HotspareProcess[] = [];
    const packBytes = (): number => {
      const packs = join(archive, 'files', 'spool', 'packs');
      return existsSync(packs) ? readdirSync(packs).reduce((n, f) => n + statSync(join(packs, f)).size, 0) : 0;
    };
    try {
      const agent = new HotspareProcess(['agent', '--config', config]);
      agents.push(agent);
      await waitFor('the agent to stream', () => agent.stderr.includes('streaming binlog to replica'), WAIT_MS);
      // Over SLOW_LINK_BYTES_PER_SECOND the file's pass needs about two minutes.
      proxy.throttle(SLOW_LINK_BYTES_PER_SECOND);
      writeFileSync(join(src, 'feed.dat'), randomBytes(SLOW_SPOOL_FILE_BYTES));
      await waitFor('the pass to reach the standby', () => packBytes() > 0, WAIT_MS, 50);
      // kill() fails the test when the agent takes longer (old code: until the pass is through, minutes).
      expect(await agent.kill('SIGTERM', SLOW_LINK_STOP_MS)).toBe(0);
      proxy.throttle(undefined);
      const again = new HotspareProcess(['agent', '--config', config]);
      agents.push(again);
      const to = join(here, 'restored');
      let diff: string[] = ['not restored yet'];
      await waitFor(
        'the file on the standby',
        async () => {
          rmSync(to, { recursive: true, force: true });
          diff = await restoreSpool({ archiveDir: archive, filesRoot: to, logger: silentLogger() }).then(
            async () => treeDiff(await describeTree(src), await describeTree(join(to, 'spool'))),
            (err: unknown) => [String(err)],
          );
          return diff.length === 0;
        },
        WAIT_MS,
        500,
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}; last differences: ${diff.join('\n')}`);
      });
      expect(await again.kill('SIGTERM', EXIT_MS)).toBe(0);
      expect((await verifySpoolArchive(archive, silentLogger())).map((r) => [r.source, r.problems])).toEqual([['spool', []]]);
    } catch (err) {
      throw new Error(`${String(err)}\n${agents.map((a, i) => `agent ${i + 1} log (tail): ${a.stderr.slice(-4000)}`).join('\n')}`);
    } finally {
      await Promise.all(agents.map((a) => a.kill('SIGKILL')));
      await proxy.close();
      await receiver.stop();
    }
  }, 3 * WAIT_MS + SLOW_LINK_STOP_MS + EXIT_MS);
});
