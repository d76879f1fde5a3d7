import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NEVER } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { replicaPipeline } from '../../../src/pipeline/replica-pipeline.js';
import { systemClock } from '../../../src/platform/clock.js';
import { silentLogger } from '../../../src/platform/logger.js';
import type { ReplicaTarget } from '../../../src/replica/replica-target.js';
import { FileTarget } from '../../../src/replica/targets/file-target.js';
import { waitFor } from '../../support/wait.js';
import { TEST_PRIMARY_IDENTITY } from '../../support/fixtures.js';

const identity = TEST_PRIMARY_IDENTITY;

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hotspare-pipeline-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Goal: a replica session that finishes opening after the pipeline was unsubscribed (the agent
 * stopping during a reconnect) does not outlive it. Method: a real file target (its session
 * holds the archive's writer lock), unsubscribed before its open() resolves.
 */
describe('replica pipeline, stopped while its session opens', () => {
  it('closes the late session: its archive lock is released', async () => {
    const archive = join(dir, 'archive');
    const closing = new Set<Promise<void>>();
    const fileTarget = new FileTarget({ name: 'a', path: archive, logger: silentLogger(), clock: systemClock, syncBatchBytesMax: 1 << 20 });
    let opened = false;
    let openCalled = false;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const target: ReplicaTarget = {
      type: fileTarget.type,
      name: fileTarget.name,
      open: async (id) => {
        openCalled = true;
        await gate;
        const session = await fileTarget.open(id);
        opened = true;
        return session;
      },
    };
    const pipeline = replicaPipeline({
      target,
      identity,
      source: () => NEVER,
      locateStart: () => Promise.resolve({ file: 'mysql-bin.000001', position: 4 }),
      highWaterBytes: 1 << 20,
      lowWaterBytes: 1 << 19,
      backoff: { delayMsMin: 10, delayMsMax: 100, jitterRatio: 0 },
      random01: () => 0.5,
      clockMs: () => Date.now(),
      logger: silentLogger(),
      closing,
    });
    const subscription = pipeline.subscribe();
    // Unsubscribed while its open() is under way (an open not yet begun is not begun at all).
    await waitFor('the open to begin', () => openCalled, 10_000, 5);
    subscription.unsubscribe();
    release();
    const lock = join(archive, 'state', 'writer.lock');
    // The open went on after the unsubscription: it takes the lock, then its session is closed.
    await waitFor('the session to open', () => opened, 10_000, 5);
    await waitFor('the late session to be closed', () => !existsSync(lock) && closing.size === 0, 10_000, 10);
    expect(existsSync(lock)).toBe(false);
  });
});
