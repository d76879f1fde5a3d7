import { Observable, Subject, type Subscription } from 'rxjs';
import { describe, expect, it } from 'vitest';
import type { ArchiveFiles } from '../../../src/archive/archive-files.js';
import type { FramedEvent } from '../../../src/core/binlog-stream-framer.js';
import type { BinlogRecord, DurablePoint } from '../../../src/core/binlog-record.js';
import { replicaPipeline } from '../../../src/pipeline/replica-pipeline.js';
import { HotspareError } from '../../../src/core/errors.js';
import type { ReplicaEvent } from '../../../src/pipeline/replica-status.js';
import { silentLogger } from '../../../src/platform/logger.js';
import type { ReplicaSession, ReplicaTarget } from '../../../src/replica/replica-target.js';
import { waitFor } from '../../support/wait.js';
import { TEST_PRIMARY_IDENTITY } from '../../support/fixtures.js';

const identity = TEST_PRIMARY_IDENTITY;

const A = 'mysql-bin.000001';
const B = 'mysql-bin.000002';

function record(file: string, offset: number, length: number, extra: Partial<BinlogRecord> & { serverId?: number } = {}): FramedEvent {
  const { serverId = identity.serverId, ...fields } = extra;
  const bytes = Buffer.alloc(length);
  // The event header's server_id: the primary's own unless said otherwise (a relayed event).
  if (length >= 9) bytes.writeUInt32LE(serverId, 5);
  const r: BinlogRecord = { file, offset, bytes, timestampS: 1, boundary: false, gtid: undefined, ...fields };
  return { kind: 'record', record: r };
}

/** A session that takes every event and reports durable points only when the test says so. */
function manualSession(): { session: ReplicaSession; durable: Subject<DurablePoint>; appended: BinlogRecord[] } {
  const durable = new Subject<DurablePoint>();
  const appended: BinlogRecord[] = [];
  const session: ReplicaSession = {
    resume: undefined,
    append: (r) => void appended.push(r),
    pendingBytes: 0,
    durable$: durable.asObservable(),
    files: {} as ArchiveFiles,
    close: () => Promise.resolve(),
  };
  return { session, durable, appended };
}

/**
 * A session resuming at `resume` whose first append makes `position` of A durable (with its last
 * transaction boundary at `boundary`, `position` unless said), then fails with `error`.
 */
function failingSession(resume: ReplicaSession['resume'], position: number, error: HotspareError, boundary = position): Promise<ReplicaSession> {
  const durable = new Subject<DurablePoint>();
  return Promise.resolve({
    resume,
    append: () => {
      setTimeout(() => {
        durable.next({ file: A, position, boundaryFile: A, boundaryPosition: boundary, commitTimestampS: 1, gtid: undefined });
        durable.error(error);
      }, 0);
    },
    pendingBytes: 0,
    durable$: durable.asObservable(),
    files: {} as ArchiveFiles,
    close: () => Promise.resolve(),
  });
}

/**
 * The real pipeline over `session` (or the sessions `open` gives, one per attempt), dumping from
 * `source`, its events collected.
 */
function runPipeline(
  session: ReplicaSession | ReplicaTarget['open'],
  source: () => Observable<FramedEvent>,
  backoff: { delayMsMin: number; delayMsMax: number },
  receiverRetryDelayMsMax?: number,
): { subscription: Subscription; events: ReplicaEvent[] } {
  const target: ReplicaTarget = { name: 'r', type: 'test', open: typeof session === 'function' ? session : () => Promise.resolve(session) };
  const events: ReplicaEvent[] = [];
  const subscription = replicaPipeline({
    target,
    identity,
    source,
    locateStart: () => Promise.resolve({ file: A, position: 4 }),
    highWaterBytes: 1 << 30,
    lowWaterBytes: 1 << 29,
    backoff: { ...backoff, jitterRatio: 0 },
    ...(receiverRetryDelayMsMax === undefined ? {} : { receiverRetryDelayMsMax }),
    random01: () => 0.5,
    clockMs: () => 1_000,
    logger: silentLogger(),
    closing: new Set(),
  }).subscribe((e) => events.push(e));
  return { subscription, events };
}

/** The retry delays of the first `count` failures the pipeline reports. */
async function failureDelays(events: ReplicaEvent[], count: number): Promise<number[]> {
  await waitFor(`${count} failures`, () => events.filter((e) => e.kind === 'failed').length >= count, 5_000, 1);
  return events.flatMap((e) => (e.kind === 'failed' ? [e.retryInMs] : [])).slice(0, count);
}

/**
 * Goal: the `received` reports (sent once per turn of the event loop) still say where each file
 * ended, and still come before the `durable` event that covers them. Method: one synchronous run
 * of events across a rotation, as a socket read delivers them, through the real pipeline into a
 * session whose durable points the test emits.
 */
describe('replica pipeline, received reports', () => {
  it('reports where a file ended at a rotation, and what was received before a durable point', async () => {
    const { session, durable, appended } = manualSession();
    const source$ = new Subject<FramedEvent>();
    const { subscription, events } = runPipeline(session, () => new Observable<FramedEvent>((s) => source$.subscribe(s)), { delayMsMin: 10, delayMsMax: 100 });
    try {
      await waitFor('the dump to start', () => source$.observed, 5_000, 1);
      // Not connected until the dump has sent something real (an event or a heartbeat).
      source$.next({ kind: 'skip', reason: 'artificial', file: A, position: 4 });
      expect(events.some((e) => e.kind === 'connected')).toBe(false);

      // One synchronous run: A's last events (the last a rotate), the server's artificial rotate
      // to B, and B's first events.
      source$.next(record(A, 4, 100));
      source$.next(record(A, 104, 50));
      source$.next({ kind: 'skip', reason: 'artificial', file: B, position: 4 });
      source$.next(record(B, 4, 200));
      source$.next(record(B, 204, 30));
      expect(appended.map((r) => `${r.file}:${r.offset}`)).toEqual([`${A}:4`, `${A}:104`, `${B}:4`, `${B}:204`]);
      expect(events.filter((e) => e.kind === 'connected')).toHaveLength(1);
      // A's end went out at once; B's waits for the end of the turn.
      expect(events.filter((e) => e.kind === 'received').map((e) => e.kind === 'received' && `${e.file}:${e.position}`)).toEqual([`${A}:154`]);

      // A durable point arrives in the same turn: what was received goes out first.
      durable.next({ file: B, position: 234, boundaryFile: B, boundaryPosition: 234, commitTimestampS: 1, gtid: undefined });
      const tail = events.filter((e) => e.kind === 'received' || e.kind === 'durable').map((e) => (e.kind === 'received' ? `received ${e.file}:${e.position}` : e.kind === 'durable' ? `durable ${e.point.file}:${e.point.position}` : ''));
      expect(tail).toEqual([`received ${A}:154`, `received ${B}:234`, `durable ${B}:234`]);

      // Nothing new: the end of the turn reports nothing more.
      await new Promise((r) => setImmediate(r));
      expect(events.filter((e) => e.kind === 'received')).toHaveLength(2);

      // A lone event is reported by the end of its turn.
      source$.next(record(B, 234, 10));
      expect(events.filter((e) => e.kind === 'received')).toHaveLength(2);
      await new Promise((r) => setImmediate(r));
      const last = events.at(-1);
      expect(last?.kind === 'received' && `${last.file}:${last.position}`).toBe(`${B}:244`);

      // A report is dated by its first commit, not by a rows event that began long before it
      // (a batch's statement start): the commit's end and time.
      source$.next(record(B, 244, 100, { timestampS: 1_000 }));
      source$.next(record(B, 344, 30, { timestampS: 1_600, boundary: true }));
      source$.next(record(B, 374, 30, { timestampS: 1_700, boundary: true }));
      // A commit relayed from an upstream (another server_id) carries the upstream's time: not the primary's last commit.
      source$.next(record(B, 404, 30, { timestampS: 1_000, boundary: true, serverId: 77 }));
      await new Promise((r) => setImmediate(r));
      const dated = events.at(-1);
      expect(dated?.kind === 'received' && dated.first).toEqual({ file: B, position: 374, timestampS: 1_600 });
      expect(dated?.kind === 'received' && [dated.lastCommitS, dated.idle]).toEqual([1_700, undefined]);
      // A heartbeat (the primary has nothing newer) makes its report idle.
      source$.next({ kind: 'skip', reason: 'heartbeat', file: B, position: 434 });
      await new Promise((r) => setImmediate(r));
      const beat = events.at(-1);
      expect(beat?.kind === 'received' && [beat.position, beat.idle, beat.lastCommitS]).toEqual([434, true, undefined]);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('backs off further and further from a dump the server refuses a moment after its artificial rotate (reported as received)', async () => {
    const { session } = manualSession();
    // As zongji does: the rotate arrives in one socket read, the refusal in a later one.
    const refused = (): Observable<FramedEvent> =>
      new Observable<FramedEvent>((s) => {
        const rotate = setTimeout(() => s.next({ kind: 'skip', reason: 'artificial', file: A, position: 4 }), 0);
        const refusal = setTimeout(() => s.error(new HotspareError('BINLOG_READ', 'refused', { hint: 'see the primary' })), 10);
        return () => {
          clearTimeout(rotate);
          clearTimeout(refusal);
        };
      });
    const { subscription, events } = runPipeline(session, refused, { delayMsMin: 1, delayMsMax: 16 });
    try {
      const delays = await failureDelays(events, 6);
      expect(events.some((e) => e.kind === 'received')).toBe(true);
      expect(delays).toEqual([1, 2, 4, 8, 16, 16]);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('backs off further and further from an archive whose first write fails each time (its resume point is reported first)', async () => {
    const durable = new Subject<DurablePoint>();
    const session: ReplicaSession = {
      resume: { file: A, position: 4, commitTimestampS: 1, gtid: undefined },
      append: () => {
        throw new HotspareError('DISK_FULL', 'the archive volume is full', { hint: 'make room' });
      },
      pendingBytes: 0,
      durable$: durable.asObservable(),
      files: {} as ArchiveFiles,
      close: () => Promise.resolve(),
    };
    const source = (): Observable<FramedEvent> => new Observable<FramedEvent>((s) => s.next(record(A, 4, 100)));
    const { subscription, events } = runPipeline(session, source, { delayMsMin: 1, delayMsMax: 16 });
    try {
      expect(await failureDelays(events, 6)).toEqual([1, 2, 4, 8, 16, 16]);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('backs off from a full volume whose every session writes the same bytes again into the room its cut-back freed', async () => {
    // Each session: the archive ends at 4 (the torn tail cut back), makes 4..104 durable again, then fails.
    const open = (): Promise<ReplicaSession> =>
      failingSession({ file: A, position: 4, commitTimestampS: 1, gtid: undefined }, 104, new HotspareError('DISK_FULL', 'the archive volume is full', { hint: 'make room' }));
    const { subscription, events } = runPipeline(open, () => new Observable<FramedEvent>((s) => s.next(record(A, 4, 100))), { delayMsMin: 1, delayMsMax: 16 });
    try {
      // The first session's 4..104 was news; the same bytes again are not.
      expect(await failureDelays(events, 6)).toEqual([1, 2, 4, 8, 16, 16]);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('a standby rebuilt with an empty archive: its catch-up counts as progress again, though behind the old furthest point', async () => {
    // First an archive at 5000 that fails at once; then empty ones whose sessions make 4..104 durable before failing.
    let opened = 0;
    const open = (): Promise<ReplicaSession> => {
      opened += 1;
      const io = new HotspareError('ARCHIVE_IO', 'an I/O error', { hint: 'check the disk' });
      return opened === 1 ? failingSession({ file: A, position: 5_000, commitTimestampS: 1, gtid: undefined }, 5_100, io) : failingSession(undefined, 104 + opened, io);
    };
    const { subscription, events } = runPipeline(open, () => new Observable<FramedEvent>((s) => s.next(record(A, 4, 100))), { delayMsMin: 1, delayMsMax: 16 });
    try {
      // Each empty archive's first durable point is news for it: the backoff stays at its start.
      expect(await failureDelays(events, 4)).toEqual([1, 1, 1, 1]);
    } finally {
      subscription.unsubscribe();
    }
  });

  it('reconnects to a receiver that is away at most every receiverRetryDelayMsMax; an archive that fails otherwise backs off to the full cap', async () => {
    const delaysFor = async (code: string): Promise<number[]> => {
      const { subscription, events } = runPipeline(() => Promise.reject(new HotspareError(code, 'no', { hint: 'later' })), () => new Observable<FramedEvent>(), { delayMsMin: 1, delayMsMax: 64 }, 8);
      try {
        return await failureDelays(events, 8);
      } finally {
        subscription.unsubscribe();
      }
    };
    for (const code of ['RECEIVER_UNREACHABLE', 'RECEIVER_LOST', 'RECEIVER_UNAVAILABLE']) expect(await delaysFor(code)).toEqual([1, 2, 4, 8, 8, 8, 8, 8]);
    expect(await delaysFor('DISK_FULL')).toEqual([1, 2, 4, 8, 16, 32, 64, 64]);
  });

  it('backs off further and further from a dump refused before it sends anything, and never counts it as connected', async () => {
    const { session } = manualSession();
    // The server's artificial rotate, then a refusal (no REPLICATION SLAVE, a start past the file's end).
    const refused = (): Observable<FramedEvent> =>
      new Observable<FramedEvent>((s) => {
        s.next({ kind: 'skip', reason: 'artificial', file: A, position: 4 });
        s.error(new HotspareError('PRIVILEGES', 'refused', { hint: 'grant it' }));
      });
    const { subscription, events } = runPipeline(session, refused, { delayMsMin: 1, delayMsMax: 16 });
    try {
      expect(await failureDelays(events, 6)).toEqual([1, 2, 4, 8, 16, 16]);
      expect(events.some((e) => e.kind === 'connected')).toBe(false);
    } finally {
      subscription.unsubscribe();
    }
  });

  describe('after a failure of the archive (state error), a retry counts as connected only once it proves the failure gone', () => {
    const full = (): HotspareError => new HotspareError('DISK_FULL', 'the archive volume is full', { hint: 'make room' });
    const resumeAt = (position: number): ReplicaSession['resume'] => ({ file: A, position, commitTimestampS: 1, gtid: undefined });
    /** The events after the first failure (none before it). */
    const afterFirstFailure = (events: ReplicaEvent[]): ReplicaEvent[] => {
      const failed = events.findIndex((e) => e.kind === 'failed');
      return failed < 0 ? [] : events.slice(failed + 1);
    };

    it('a volume still full: each retry dumps and writes the same bytes again, and none reads as connected', async () => {
      // Every session resumes at 4, makes 4..104 durable again (the first one's 4..104 was news), then fails.
      const { subscription, events } = runPipeline(
        () => failingSession(resumeAt(4), 104, full()),
        () => new Observable<FramedEvent>((s) => s.next(record(A, 4, 100))),
        { delayMsMin: 1, delayMsMax: 4 },
      );
      try {
        await failureDelays(events, 5);
        expect(events.filter((e) => e.kind === 'connected')).toHaveLength(1);
        expect(afterFirstFailure(events).some((e) => e.kind === 'connected')).toBe(false);
      } finally {
        subscription.unsubscribe();
      }
    });

    it('a retry that writes again the torn transaction its predecessor wrote, or resumes where an acknowledgement it never heard left it, proves nothing', async () => {
      // The first session takes 4..150, a transaction ending at 100; its successor resumes at 120
      // (a commit the receiver made durable whose acknowledgement never came) and takes 120..160;
      // every later one does the same again. Durable bytes beyond the furthest point, but no commit.
      let opened = 0;
      const open = (): Promise<ReplicaSession> => {
        opened += 1;
        return opened === 1 ? failingSession(resumeAt(4), 150, full(), 100) : failingSession(resumeAt(120), 160, full(), 120);
      };
      const { subscription, events } = runPipeline(open, () => new Observable<FramedEvent>((s) => s.next(record(A, 4, 100))), { delayMsMin: 1, delayMsMax: 4 });
      try {
        await failureDelays(events, 5);
        expect(afterFirstFailure(events).some((e) => e.kind === 'connected')).toBe(false);
      } finally {
        subscription.unsubscribe();
      }
    });

    it('room again: the retry writes beyond the furthest durable point and is connected, also when that write lands before its dump sends anything', async () => {
      let opened = 0;
      const open = (): Promise<ReplicaSession> => {
        opened += 1;
        if (opened === 1) return failingSession(resumeAt(4), 104, full());
        // The second session's archive reports 204 durable at once, before the dump's first event.
        const durable = new Subject<DurablePoint>();
        setTimeout(() => durable.next({ file: A, position: 204, boundaryFile: A, boundaryPosition: 204, commitTimestampS: 1, gtid: undefined }), 0);
        return Promise.resolve({ resume: resumeAt(104), append: () => undefined, pendingBytes: 0, durable$: durable.asObservable(), files: {} as ArchiveFiles, close: () => Promise.resolve() });
      };
      // The dump's first event comes well after the session's write.
      const source = (): Observable<FramedEvent> =>
        new Observable<FramedEvent>((s) => {
          const t = setTimeout(() => s.next(record(A, 104, 100)), 20);
          return () => clearTimeout(t);
        });
      const { subscription, events } = runPipeline(open, source, { delayMsMin: 1, delayMsMax: 4 });
      try {
        await waitFor('the retry connected', () => afterFirstFailure(events).some((e) => e.kind === 'connected'), 5_000, 1);
        const after = afterFirstFailure(events);
        expect(after.findIndex((e) => e.kind === 'durable' && e.point.position === 204)).toBeLessThan(after.findIndex((e) => e.kind === 'connected'));
      } finally {
        subscription.unsubscribe();
      }
    });

    it('a held connected goes with its dump: a commit of that dump landing after the dump failed does not show the replica up', async () => {
      const durable = new Subject<DurablePoint>();
      let opened = 0;
      const open = (): Promise<ReplicaSession> => {
        opened += 1;
        if (opened === 1) return failingSession(resumeAt(4), 104, full());
        return Promise.resolve({ resume: resumeAt(104), append: () => undefined, pendingBytes: 0, durable$: durable.asObservable(), files: {} as ArchiveFiles, close: () => Promise.resolve() });
      };
      // The second session's first dump sends a commit, then the primary goes away; later dumps
      // send nothing. (As a socket does, a moment after the subscription.)
      let dumps = 0;
      const source = (): Observable<FramedEvent> =>
        new Observable<FramedEvent>((s) => {
          const first = opened >= 2 && ++dumps === 1;
          const timers = [
            setTimeout(() => {
              if (opened < 2) s.next(record(A, 4, 100));
              else if (first) s.next(record(A, 104, 100, { boundary: true }));
            }, 0),
            setTimeout(() => first && s.error(new HotspareError('PRIMARY_LOST', 'the primary went away', { hint: 'it reconnects' })), 5),
          ];
          return () => timers.forEach(clearTimeout);
        });
      const { subscription, events } = runPipeline(open, source, { delayMsMin: 1, delayMsMax: 4 });
      try {
        await waitFor('the dump to fail', () => events.some((e) => e.kind === 'failed' && e.code === 'PRIMARY_LOST'), 5_000, 1);
        // The writer's fsync of that commit completes now: a commit beyond any before.
        durable.next({ file: A, position: 204, boundaryFile: A, boundaryPosition: 204, commitTimestampS: 1, gtid: undefined });
        await new Promise((resolve) => setTimeout(resolve, 20));
        expect(afterFirstFailure(events).some((e) => e.kind === 'connected')).toBe(false);
        expect(events.at(-1)).toMatchObject({ kind: 'durable', point: { position: 204 } });
      } finally {
        subscription.unsubscribe();
      }
    });

    it('nothing to write: an idle heartbeat at the archive end proves the retry', async () => {
      let opened = 0;
      const open = (): Promise<ReplicaSession> => {
        opened += 1;
        if (opened === 1) return failingSession(resumeAt(4), 104, full());
        const { session } = manualSession();
        return Promise.resolve({ ...session, resume: resumeAt(104) });
      };
      // The first session's dump brings 4..104; the next one finds nothing new (a heartbeat at 104).
      const source = (): Observable<FramedEvent> =>
        new Observable<FramedEvent>((s) => s.next(opened === 1 ? record(A, 4, 100) : { kind: 'skip', reason: 'heartbeat', file: A, position: 104 }));
      const { subscription, events } = runPipeline(open, source, { delayMsMin: 1, delayMsMax: 4 });
      try {
        await waitFor('the retry connected', () => afterFirstFailure(events).some((e) => e.kind === 'connected'), 5_000, 1);
        const after = afterFirstFailure(events);
        expect(after.find((e) => e.kind === 'received')).toMatchObject({ position: 104, idle: true });
        expect(after.some((e) => e.kind === 'failed')).toBe(false);
      } finally {
        subscription.unsubscribe();
      }
    });

    it('a link failure (state disconnected) owes no proof: the next dump is connected at its first event', async () => {
      let opened = 0;
      const open = (): Promise<ReplicaSession> => {
        opened += 1;
        if (opened === 1) return failingSession(resumeAt(4), 104, new HotspareError('RECEIVER_LOST', 'the receiver went away', { hint: 'it reconnects' }));
        const { session } = manualSession();
        return Promise.resolve({ ...session, resume: resumeAt(104) });
      };
      const { subscription, events } = runPipeline(open, () => new Observable<FramedEvent>((s) => s.next(record(A, 104, 100))), { delayMsMin: 1, delayMsMax: 4 });
      try {
        await waitFor('the retry connected', () => afterFirstFailure(events).some((e) => e.kind === 'connected'), 5_000, 1);
      } finally {
        subscription.unsubscribe();
      }
    });
  });
});
