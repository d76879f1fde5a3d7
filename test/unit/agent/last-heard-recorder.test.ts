import { pino } from 'pino';
import { BehaviorSubject, VirtualTimeScheduler } from 'rxjs';
import { describe, expect, it } from 'vitest';
import { LastHeardRecorder } from '../../../src/agent/last-heard-recorder.js';
import type { LastHeardRecord } from '../../../src/archive/last-heard.js';
import { DEFAULT_STOP_SETTLE_MS } from '../../../src/config/defaults.js';
import type { ReplicaSession } from '../../../src/replica/replica-target.js';

// Goal: state/last-heard.json follows what the agent hears from the primary, at most once per
// interval, always ending with the newest observation, and says when the archive had caught up.

/** A recorder whose writes are collected; with `gate`, each write waits for it (a slow archive). */
function recorderWithWrites(gate?: Promise<void>): { recorder: LastHeardRecorder; writes: LastHeardRecord[]; scheduler: VirtualTimeScheduler; warnings: string[] } {
  const writes: LastHeardRecord[] = [];
  const session = {
    files: {
      putFile: async (path: string, data: Buffer) => {
        expect(path).toBe('state/last-heard.json');
        await gate;
        writes.push(JSON.parse(data.toString('utf8')) as LastHeardRecord);
      },
    },
  } as unknown as ReplicaSession;
  const scheduler = new VirtualTimeScheduler();
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push((JSON.parse(line) as { msg: string }).msg) });
  const recorder = new LastHeardRecorder({ session$: new BehaviorSubject<ReplicaSession | undefined>(session), intervalMs: 1000, logger, scheduler });
  return { recorder, writes, scheduler, warnings };
}

const received = (position: number, atMs: number) => ({ kind: 'received' as const, file: 'bin.000001', position, atMs });
const durable = (position: number) => ({
  kind: 'durable' as const,
  shippedBytes: 0,
  point: { file: 'bin.000001', position, boundaryFile: 'bin.000001', boundaryPosition: position, commitTimestampS: 1, gtid: undefined },
});

describe('LastHeardRecorder', () => {
  it('writes the first observation at once and the newest one at the end of the interval', async () => {
    const { recorder, writes, scheduler } = recorderWithWrites();
    recorder.observe(received(100, 1_000));
    recorder.observe(received(200, 1_200));
    recorder.observe(received(300, 1_400));
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.primary.position)).toEqual([100, 300]);
    expect(writes[1]).toMatchObject({ atMs: 1_400, at: new Date(1_400).toISOString(), caughtUp: false });
    await recorder.stop();
  });

  it('a write that fails is tried again an interval later, with no new observation (the primary just died)', async () => {
    const writes: LastHeardRecord[] = [];
    let failNext = true;
    const session = {
      files: {
        putFile: async (_path: string, data: Buffer) => {
          if (failNext) {
            failNext = false;
            throw new Error('EIO');
          }
          writes.push(JSON.parse(data.toString('utf8')) as LastHeardRecord);
        },
      },
    } as unknown as ReplicaSession;
    const scheduler = new VirtualTimeScheduler();
    const recorder = new LastHeardRecorder({ session$: new BehaviorSubject<ReplicaSession | undefined>(session), intervalMs: 1000, logger: pino({ level: 'silent' }), scheduler });
    // The last observation before the primary went silent; its write fails.
    recorder.observe(received(500, 9_000));
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]);
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.atMs)).toEqual([9_000]);
    await recorder.stop();
  });

  it('what was heard while no session was open is written as soon as one opens again', async () => {
    const writes: LastHeardRecord[] = [];
    const session = { files: { putFile: async (_path: string, data: Buffer) => void writes.push(JSON.parse(data.toString('utf8')) as LastHeardRecord) } } as unknown as ReplicaSession;
    const session$ = new BehaviorSubject<ReplicaSession | undefined>(undefined);
    const scheduler = new VirtualTimeScheduler();
    const recorder = new LastHeardRecorder({ session$, intervalMs: 1000, logger: pino({ level: 'silent' }), scheduler });
    recorder.observe(received(700, 5_000));
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(writes).toEqual([]);
    session$.next(session);
    await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.atMs)).toEqual([5_000]);
    await recorder.stop();
  });

  it('after a reconnect to an idle primary, a heartbeat at the archive\'s durable end is caught up', async () => {
    const { recorder, writes, scheduler } = recorderWithWrites();
    // A session opens (its durable end first), its dump connects, then heartbeats only.
    recorder.observe(durable(300));
    recorder.observe({ kind: 'connected', start: { file: 'bin.000001', position: 300 } });
    recorder.observe(received(300, 2_000));
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(writes.at(-1)).toMatchObject({ atMs: 2_000, durable: { position: 300 }, caughtUp: true });
    await recorder.stop();
  });

  it('marks the record caught up once what was heard last is durable', async () => {
    const { recorder, writes, scheduler } = recorderWithWrites();
    recorder.observe(durable(100));
    recorder.observe(received(300, 5_000));
    recorder.observe(durable(300));
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(writes.at(-1)).toMatchObject({ atMs: 5_000, primary: { position: 300 }, durable: { position: 300 }, caughtUp: true });
    // A heartbeat at the durable end is caught up by itself.
    recorder.observe(received(300, 9_000));
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(writes.at(-1)).toMatchObject({ atMs: 9_000, caughtUp: true });
    await recorder.stop();
  });

  it('stop waits DEFAULT_STOP_SETTLE_MS, no longer, for a write that does not finish (a slow link), and says so', async () => {
    const { recorder, writes, scheduler, warnings } = recorderWithWrites(new Promise(() => undefined));
    recorder.observe(received(300, 5_000));
    let stopped = false;
    const stopping = recorder.stop().then(() => (stopped = true));
    const start = scheduler.frame;
    scheduler.maxFrames = start + DEFAULT_STOP_SETTLE_MS - 1;
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    scheduler.maxFrames = Number.POSITIVE_INFINITY;
    scheduler.flush();
    await stopping;
    expect(scheduler.frame - start).toBe(DEFAULT_STOP_SETTLE_MS);
    expect(writes).toEqual([]);
    expect(warnings).toEqual(['the newest record of when the primary was last heard is still on its way to the archive; stopping without waiting for it']);
  });

  it('stop writes the newest observation the throttle still held', async () => {
    const { recorder, writes } = recorderWithWrites();
    recorder.observe(durable(100));
    recorder.observe(received(300, 5_000));
    recorder.observe(durable(300));
    // No time passes: the caught-up record is still held back by the interval.
    await new Promise((r) => setImmediate(r));
    expect(writes.at(-1)).toMatchObject({ caughtUp: false });
    await recorder.stop();
    expect(writes.at(-1)).toMatchObject({ atMs: 5_000, caughtUp: true });
  });

  it('holds back only the newest record while a write is slow, not one per interval', async () => {
    let release!: () => void;
    const { recorder, writes, scheduler } = recorderWithWrites(new Promise<void>((r) => (release = r)));
    // The first write hangs (a remote archive's request); ten intervals' observations come meanwhile.
    for (let i = 0; i < 10; i++) {
      recorder.observe(received(100 * (i + 1), 1_000 * (i + 1)));
      scheduler.flush();
      await new Promise((r) => setImmediate(r));
    }
    release();
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.primary.position)).toEqual([100, 1_000]);
    await recorder.stop();
    expect(writes).toHaveLength(2);
  });

  it('writes nothing after stop(): the newest record once, by stop itself, even with one waiting behind a slow write', async () => {
    let release!: () => void;
    const { recorder, writes, scheduler } = recorderWithWrites(new Promise<void>((r) => (release = r)));
    recorder.observe(received(100, 1_000));
    scheduler.flush();
    recorder.observe(received(200, 2_000));
    scheduler.flush();
    await new Promise((r) => setImmediate(r));
    const stopped = recorder.stop();
    release();
    await stopped;
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(writes.map((w) => w.primary.position)).toEqual([100, 200]);
  });
});
