import {
  BehaviorSubject,
  Observable,
  asyncScheduler,
  defer,
  from,
  map,
  merge,
  retry,
  startWith,
  switchMap,
  tap,
  timer,
  type SchedulerLike,
} from 'rxjs';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import { backoffDelayMs, type BackoffPolicy } from '../core/backoff.js';
import { BinlogStreamFramer, type FramedEvent } from '../core/binlog-stream-framer.js';
import { HotspareError, errorMessage } from '../core/errors.js';
import type { DurablePoint, ResumePoint } from '../core/binlog-record.js';
import { compareBinlogPositions, type BinlogPosition } from '../core/binlog-position.js';
import type { Logger } from '../platform/logger.js';
import type { ReplicaSession, ReplicaTarget } from '../replica/replica-target.js';
import { CAPPED_RETRY_CODES, RECEIVER_LINK_CODES, stateForCode, type ReplicaEvent } from './replica-status.js';
import { DEFAULT_RECEIVER_RETRY_DELAY_MS_MAX } from '../config/defaults.js';

export interface ReplicaPipelineOptions {
  target: ReplicaTarget;
  identity: PrimaryIdentity;
  /** Opens the primary's binlog where the framer stands; paused$ is the flow-control valve. */
  source: (framer: BinlogStreamFramer, paused$: Observable<boolean>) => Observable<FramedEvent>;
  /**
   * Where an archive with no binlog yet begins, and a check that a resume file still exists.
   * It gets the session for work that must come first (a base backup into an archive without one).
   */
  locateStart: (resume: { file: string; position: number } | undefined, session: ReplicaSession) => Promise<{ file: string; position: number }>;
  highWaterBytes: number;
  lowWaterBytes: number;
  backoff: BackoffPolicy;
  /** The cap for reconnecting to a receiver that went away (DEFAULT_RECEIVER_RETRY_DELAY_MS_MAX). */
  receiverRetryDelayMsMax?: number;
  random01: () => number;
  clockMs: () => number;
  logger: Logger;
  /** Sessions still closing; the agent waits for them before it exits. */
  closing: Set<Promise<void>>;
  /**
   * The first session opens only once this settles: the start's check of this archive that
   * outlived its deadline (a hung volume) and still holds, or will take, its lock. Opened side
   * by side, one would take the other's lock as its own process's stale one and remove it.
   */
  openAfter?: Promise<unknown>;
  /**
   * A reason to refuse a session that opened (checked before anything uses it): an archive
   * that holds nothing where this replica's archive was known to hold binlog. The session is
   * closed and the error reported and retried like any archive failure.
   */
  refuseSession?: (session: ReplicaSession) => HotspareError | undefined;
  /** The open session (undefined while there is none), for work that shares it (base, spool). */
  session$?: BehaviorSubject<ReplicaSession | undefined>;
  scheduler?: SchedulerLike;
}

/**
 * One replica's stream, supervised at two levels. The outer level holds the archive session:
 * open it, and if the archive side breaks, close it (flushing what was appended) and open it
 * again after a backoff. The inner level holds the binlog dump: start where the archive ends,
 * append every event, pause the dump above the high-water mark of bytes not yet durable and
 * resume below the low one; if the primary side breaks, dump again from exactly after the
 * last appended event. Every failure is reported, then retried with capped, jittered backoff.
 * A replica never shares a connection, a buffer or a failure with another.
 */
export function replicaPipeline(options: ReplicaPipelineOptions): Observable<ReplicaEvent> {
  const scheduler = options.scheduler ?? asyncScheduler;
  const log = options.logger;
  let lastClose: Promise<void> = (options.openAfter ?? Promise.resolve()).then(
    () => undefined,
    () => undefined,
  );

  return new Observable<ReplicaEvent>((subscriber) => {
    /**
     * Retries with backoff that grows with each failure in a row. The count starts again on
     * proof of health (`healthy`: the dump sent an event or a heartbeat; the archive made
     * something durable beyond where the session began), or after a run that lasted longer
     * than the backoff's cap. Any emission was taken for success before: a dump refused after
     * its artificial rotate (reported as received), or an archive whose first write fails
     * (its resume point comes first), was retried at the shortest delay for ever.
     */
    const retryReporting =
      (level: 'archive' | 'primary', healthy: () => (event: ReplicaEvent) => boolean) =>
      (source$: Observable<ReplicaEvent>): Observable<ReplicaEvent> => {
        let failures = 0;
        let startedAtMs = 0;
        return defer(() => {
          startedAtMs = options.clockMs();
          const isHealthy = healthy();
          return source$.pipe(
            tap((event) => {
              if (isHealthy(event)) failures = 0;
            }),
          );
        }).pipe(
          retry({
            delay: (err: unknown) => {
              if (options.clockMs() - startedAtMs > options.backoff.delayMsMax) failures = 0;
              failures += 1;
              const capped = err instanceof HotspareError && CAPPED_RETRY_CODES.has(err.code);
              const link = level === 'archive' && err instanceof HotspareError && RECEIVER_LINK_CODES.has(err.code);
              const policy = link ? { ...options.backoff, delayMsMax: Math.min(options.backoff.delayMsMax, options.receiverRetryDelayMsMax ?? DEFAULT_RECEIVER_RETRY_DELAY_MS_MAX) } : options.backoff;
              const delayMs = backoffDelayMs(capped ? Number.MAX_SAFE_INTEGER : failures, policy, options.random01);
              const failure = describeFailure(err, delayMs);
              log.error({ code: failure.code, hint: failure.hint, side: level, retryInMs: delayMs, ...(err instanceof HotspareError ? {} : { err }) }, failure.message);
              if (failure.state === 'error') proofOwed = true;
              heldConnected = undefined;
              subscriber.next(failure);
              return timer(delayMs, scheduler);
            },
          }),
        );
      };
    const dumpProven = () => (event: ReplicaEvent): boolean => event.kind === 'connected';
    /**
     * Durable beyond the furthest point any session of this replica reported (the first one's
     * resume point, to begin with). Beyond the session's own first point was not enough: on a full
     * volume each session cut a torn tail back, wrote the same bytes again into the room that
     * freed, counted that as health, and retried at the shortest delay for ever (a new dump of the
     * primary and log lines several times a second).
     */
    let furthestDurable: BinlogPosition | undefined;
    const archiveProgressed = () => (event: ReplicaEvent): boolean => {
      if (event.kind !== 'durable') return false;
      if (furthestDurable === undefined) {
        furthestDurable = event.point;
        return false;
      }
      if (compareBinlogPositions(event.point, furthestDurable) <= 0) return false;
      furthestDurable = event.point;
      return true;
    };

    /**
     * The last failure was of the archive or the setup (state `error`: DISK_FULL, ARCHIVE_IO, ...)
     * and no session since has shown it gone. A retry's dump proves itself with its first event,
     * before anything is written: on a volume still full, each retry read as a healthy replica
     * (`connected`, so `/lag` state `streaming` and `/healthz` 200) until its first write failed
     * again, which reset an alert's `for:` clock at every retry that a scrape happened to see.
     */
    let proofOwed = false;
    /**
     * The `connected` a session's gate holds back while a proof is owed. A failure of its dump
     * (retried within the session, reported straight to the subscriber) drops it: released by a
     * commit of that dump landing afterwards, it showed the replica up with no dump at all.
     */
    let heldConnected: ReplicaEvent | undefined;
    /**
     * The furthest transaction boundary any session of this replica made durable (resume points
     * included). Bytes beyond a boundary are no proof: a session on a full volume cuts the torn
     * transaction back to its last boundary and writes those bytes again, and a remote one's last
     * acknowledgement may never have come, so its successor resumes beyond what the agent heard.
     */
    let furthestBoundary: BinlogPosition | undefined;
    /**
     * Holds a session's `connected` back while a proof is owed, until the session itself makes a
     * transaction boundary durable beyond furthestBoundary (its resume point is the last
     * session's work, not its own), or an idle heartbeat meets its durable end (the primary has
     * nothing for it to write). The proof may come first: the session's writes and its dump's
     * first event race, and a commit that lands before `connected` still proves it.
     */
    const connectedOnceProven =
      (session: ReplicaSession) =>
      (events$: Observable<ReplicaEvent>): Observable<ReplicaEvent> =>
        new Observable<ReplicaEvent>((out) => {
          // An archive that holds no binlog (a standby rebuilt empty): its first commit is news.
          if (session.resume === undefined) furthestBoundary = undefined;
          heldConnected = undefined;
          let sessionDurable: BinlogPosition | undefined;
          const proven = (): void => {
            proofOwed = false;
            const connected = heldConnected;
            heldConnected = undefined;
            if (connected !== undefined) out.next(connected);
          };
          return events$.subscribe({
            next: (event) => {
              if (event.kind === 'durable') {
                const boundary = { file: event.point.boundaryFile, position: event.point.boundaryPosition };
                const resumePoint = sessionDurable === undefined && session.resume !== undefined;
                const beyond = furthestBoundary === undefined || compareBinlogPositions(boundary, furthestBoundary) > 0;
                if (beyond) furthestBoundary = boundary;
                if (proofOwed && beyond && !resumePoint) proven();
                sessionDurable = event.point;
              } else if (proofOwed && event.kind === 'connected') {
                heldConnected = event;
                return;
              } else if (proofOwed && event.kind === 'received' && event.idle === true && sessionDurable !== undefined && compareBinlogPositions(event, sessionDurable) <= 0) {
                proven();
              }
              out.next(event);
            },
            error: (err: unknown) => out.error(err),
            complete: () => out.complete(),
          });
        });

    const streamSession = (session: ReplicaSession): Observable<ReplicaEvent> =>
      new Observable<ReplicaEvent>((inner) => {
        options.session$?.next(session);
        // An archive that holds no binlog (a standby rebuilt empty): its progress starts again, and
        // its first durable point is news (no resume point comes first).
        // (Sequence 0 lies before any binlog file: the server numbers them from 1.)
        if (session.resume === undefined) furthestDurable = { file: 'binlog.000000', position: 0 };
        const paused$ = new BehaviorSubject(false);
        paused$.subscribe((paused) => log.debug({ paused, pendingBytes: session.pendingBytes }, paused ? 'flow control: dump paused' : 'flow control: dump resumed'));
        let shipped = 0;
        let framer: BinlogStreamFramer | undefined;
        // The archive's own durable end comes first, so that the lag endpoint knows where an
        // idle replica stands before any new event is written.
        const opened$ = session.resume === undefined ? session.durable$ : session.durable$.pipe(startWith(durableAtResume(session.resume)));
        /** Sends the `received` report still waiting for the end of this turn (see received()). */
        let reportReceived: (() => void) | undefined;
        const durable$ = opened$.pipe(
          tap({
            next: () => {
              // What was received goes out before what it made durable.
              reportReceived?.();
              if (paused$.value && session.pendingBytes <= options.lowWaterBytes) paused$.next(false);
            },
            // The session ends: what was heard still counts (last heard, lag).
            error: () => reportReceived?.(),
          }),
          map((point): ReplicaEvent => ({ kind: 'durable', point, shippedBytes: shipped })),
        );
        const dump$ = defer(() => {
          // The first dump of a session starts where the archive ends; a restarted one
          // continues exactly after the last event this session appended.
          const start$ = framer === undefined ? from(options.locateStart(session.resume, session)) : from(options.locateStart(framer.next, session));
          return start$.pipe(
            switchMap((start) => {
              // A start elsewhere than where the framer stands is a new chain (after a purge,
              // at a new base): it begins at a file's first event, with no transaction open.
              if (framer === undefined || framer.next.file !== start.file || framer.next.position !== start.position) framer = new BinlogStreamFramer(start);
              const current = framer;
              log.info({ start }, 'streaming binlog to replica');
              paused$.next(session.pendingBytes >= options.highWaterBytes);
              // `connected` once the dump has proved itself with an event or a heartbeat (a server
              // sends its artificial rotate and format event before refusing a start, too). It
              // also resets the retry count: reset at the dump's start, a dump refused at once was
              // retried at the first backoff step for ever, and the replica never counted as down.
              // received() sends it, ahead of that event's own report: every event of a catch-up
              // passes through here, and a shared source with a second subscriber for this one
              // event cost each of them a Subject's fan-out (about 5% of the agent's main thread).
              return received(options.source(current, paused$), { kind: 'connected', start });
            }),
          );
        }).pipe(retryReporting('primary', dumpProven));

        /** Appends each framed event; returns how far the stream has reached, if it says. */
        const onFramed = (framed: FramedEvent): BinlogPosition | undefined => {
          if (framed.kind === 'record') {
            const { record } = framed;
            try {
              session.append(record);
            } catch (err) {
              // The archive refused the event: that is the session's failure, not the dump's,
              // so the session is reopened from what the archive durably holds. The events
              // before it were taken: they are reported first.
              reportReceived?.();
              inner.error(err);
              return undefined;
            }
            shipped += record.bytes.length;
            if (!paused$.value && session.pendingBytes >= options.highWaterBytes) paused$.next(true);
            return { file: record.file, position: record.offset + record.bytes.length };
          }
          if (framed.file === undefined) return undefined;
          return { file: framed.file, position: framed.position };
        };

        /**
         * The dump appended event by event, reported as `received` once per turn of the event
         * loop: a turn handles one slice of the dump (DEFAULT_DUMP_SLICE_BYTES, several socket
         * reads), and only where its last event ends is news (they share the millisecond). The
         * report goes out at the end of the turn (setImmediate), or before a `durable` event
         * if one comes first. Once per socket read (a microtask each), the reports and what
         * listens to them (lag, last heard) cost a catch-up 4x as many calls for nothing.
         */
        const received = (source$: Observable<FramedEvent>, connected: ReplicaEvent): Observable<ReplicaEvent> =>
          new Observable<ReplicaEvent>((out) => {
            /** The dump has not proved itself yet: its first event or heartbeat sends `connected` first. */
            let unproven = true;
            let latest: BinlogPosition | undefined;
            let first: { file: string; position: number; timestampS: number } | undefined;
            let lastCommitS: number | undefined;
            /** The last event of the report is a heartbeat. */
            let idle = false;
            let scheduled: NodeJS.Immediate | undefined;
            const report = (): void => {
              if (scheduled !== undefined) clearImmediate(scheduled);
              scheduled = undefined;
              const at = latest;
              const firstEvent = first;
              const commitS = lastCommitS;
              latest = undefined;
              first = undefined;
              lastCommitS = undefined;
              if (at !== undefined && !out.closed) {
                out.next({
                  kind: 'received',
                  file: at.file,
                  position: at.position,
                  atMs: options.clockMs(),
                  ...(firstEvent === undefined ? {} : { first: firstEvent }),
                  ...(commitS === undefined ? {} : { lastCommitS: commitS }),
                  ...(idle ? { idle: true as const } : {}),
                });
              }
            };
            reportReceived = report;
            const subscription = source$.subscribe({
              next: (framed) => {
                if (unproven && (framed.kind === 'record' || framed.reason === 'heartbeat')) {
                  unproven = false;
                  out.next(connected);
                }
                const at = onFramed(framed);
                if (at === undefined) return;
                // Where a file ended is reported as such: the tracker counts the bytes shipped
                // across a rotation from it.
                if (latest !== undefined && latest.file !== at.file) report();
                scheduled ??= setImmediate(report);
                latest = at;
                idle = framed.kind === 'skip' && framed.reason === 'heartbeat';
                // Only the primary's own commits: one it relays from an upstream (log_slave_updates)
                // carries the upstream's time, which would read as lag.
                if (framed.kind === 'record' && framed.record.boundary && framed.record.timestampS > 0 && framed.record.bytes.readUInt32LE(5) === options.identity.serverId) lastCommitS = framed.record.timestampS;
                // The first commit of the report dates it: an event that ends a transaction
                // carries its commit's time, where a rows event carries its statement's start (a
                // long batch's would date the backlog minutes early). The artificial events a
                // dump starts with carry no time (0).
                if (first === undefined && framed.kind === 'record' && framed.record.boundary && framed.record.timestampS > 0) first = { file: at.file, position: at.position, timestampS: framed.record.timestampS };
              },
              error: (err: unknown) => {
                report();
                out.error(err);
              },
              complete: () => {
                report();
                out.complete();
              },
            });
            return () => {
              subscription.unsubscribe();
              if (scheduled !== undefined) clearImmediate(scheduled);
              if (reportReceived === report) reportReceived = undefined;
            };
          });

        const subscription = merge(durable$, dump$).pipe(connectedOnceProven(session)).subscribe(inner);
        return () => {
          subscription.unsubscribe();
          paused$.complete();
          options.session$?.next(undefined);
          const closing = session.close().catch((err: unknown) => log.warn({ err }, 'closing the replica session failed'));
          lastClose = closing;
          options.closing.add(closing);
          void closing.finally(() => options.closing.delete(closing));
        };
      });

    // A session that finishes opening after the unsubscription (the agent stopping during a
    // reconnect) is closed here: nothing else holds it, and its socket or archive lock would
    // otherwise outlive the agent (a process that never exits, an archive left locked).
    const openSession$ = new Observable<ReplicaSession>((opened) => {
      let cancelled = false;
      lastClose
        .then(() => {
          // Stopped while waiting for the last session to close (or a late start check): no open.
          if (cancelled) return new Promise<never>(() => undefined);
          return options.target.open(options.identity);
        })
        .then(
          (session) => {
            const refusal = cancelled ? undefined : options.refuseSession?.(session);
            if (refusal !== undefined) {
              // Closed (its lock released) before the next open, which waits for lastClose.
              const closing = session.close().catch((err: unknown) => log.warn({ err }, 'closing a refused replica session failed'));
              lastClose = closing;
              options.closing.add(closing);
              void closing.finally(() => options.closing.delete(closing));
              opened.error(refusal);
              return;
            }
            if (!cancelled) {
              opened.next(session);
              opened.complete();
              return;
            }
            const closing = session.close().catch((err: unknown) => log.warn({ err }, 'closing a replica session opened after the stop failed'));
            options.closing.add(closing);
            void closing.finally(() => options.closing.delete(closing));
          },
          (err: unknown) => opened.error(err),
        );
      return () => {
        cancelled = true;
      };
    });
    return openSession$
      .pipe(
        switchMap((session) => streamSession(session)),
        retryReporting('archive', archiveProgressed),
      )
      .subscribe(subscriber);
  });
}

function describeFailure(err: unknown, retryInMs: number): Extract<ReplicaEvent, { kind: 'failed' }> {
  const code = err instanceof HotspareError ? err.code : 'INTERNAL';
  return {
    kind: 'failed',
    state: stateForCode(code),
    code,
    message: errorMessage(err),
    hint: err instanceof HotspareError ? err.hint : 'see the log; the agent retries',
    retryInMs,
  };
}

/** A resume point is a durable transaction boundary. */
function durableAtResume(resume: ResumePoint): DurablePoint {
  return {
    file: resume.file,
    position: resume.position,
    boundaryFile: resume.file,
    boundaryPosition: resume.position,
    commitTimestampS: resume.commitTimestampS,
    gtid: resume.gtid,
  };
}
