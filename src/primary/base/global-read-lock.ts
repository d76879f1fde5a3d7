import { setTimeout as pause } from 'node:timers/promises';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import {
  DEFAULT_BASE_LOCK_ATTEMPT_TIMEOUT_S,
  DEFAULT_BASE_LOCK_LONG_QUERY_S,
  DEFAULT_BASE_LOCK_POLL_INTERVAL_MS,
  DEFAULT_BASE_LOCK_QUIET_WAIT_MAX_S,
  DEFAULT_BASE_LOCK_RETRY_PAUSE_MS_MAX,
  DEFAULT_BASE_LOCK_WAIT_MAX_S,
} from '../../config/defaults.js';
import { HotspareError } from '../../core/errors.js';
import type { Clock } from '../../platform/clock.js';
import type { Logger } from '../../platform/logger.js';
import { isLockWaitTimeout } from '../mysql-error.js';
import { baseAbortedError, isAborted, queryRows as query } from './base-session.js';

/** A statement on the primary that has run long enough to hold up FLUSH TABLES WITH READ LOCK. */
interface LongStatement {
  id: number;
  user: string;
  seconds: number;
  info: string;
}

export interface GlobalReadLockOptions {
  endpoint: string;
  clock: Clock;
  logger: Logger;
  signal?: AbortSignal | undefined;
  /** DEFAULT_BASE_LOCK_WAIT_MAX_S unless a test needs the end sooner. */
  waitMaxS?: number;
}

/**
 * FLUSH TABLES WITH READ LOCK without stalling the primary's writers for long. FTWRL waits for
 * every writing statement to finish, and while it waits every new writer waits behind it: behind
 * an UPDATE that runs for minutes, the whole primary stops writing (the classic stall of a
 * backup; measured on 10.11: an unrelated INSERT waited the 2.4 s a long UPDATE had left, while
 * a long SELECT held nothing up). So, like xtrabackup's --ftwrl-wait-*, the lock is asked for
 * once no writing statement has run for DEFAULT_BASE_LOCK_LONG_QUERY_S (or, writers never being
 * quiet, after DEFAULT_BASE_LOCK_QUIET_WAIT_MAX_S), and each attempt may wait at most
 * DEFAULT_BASE_LOCK_ATTEMPT_TIMEOUT_S (lock_wait_timeout) before it gives up and tries again; after
 * DEFAULT_BASE_LOCK_WAIT_MAX_S the base fails with BASE_LOCK_TIMEOUT, naming what held it up.
 * Leaves the session's lock_wait_timeout at the attempt's value.
 */
export async function acquireGlobalReadLock(conn: Connection, options: GlobalReadLockOptions): Promise<void> {
  const { endpoint, clock, logger, signal } = options;
  // The pauses end at an abort too: a stop never waits out a 30 s pause.
  const sleep = (ms: number): Promise<void> => pause(ms, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
  const waitMaxS = options.waitMaxS ?? DEFAULT_BASE_LOCK_WAIT_MAX_S;
  const [server] = await query(conn, 'SELECT @@version AS v', endpoint);
  const readsHoldItUp = !/mariadb/i.test(String(server?.['v'] ?? ''));
  const startedMs = clock.nowMs();
  const deadline = startedMs + waitMaxS * 1000;
  await query(conn, `SET SESSION lock_wait_timeout = ${DEFAULT_BASE_LOCK_ATTEMPT_TIMEOUT_S}`, endpoint);
  let waitingOn: LongStatement[] = [];
  let told = false;
  let failedAttempts = 0;
  for (;;) {
    if (isAborted(signal)) throw baseAbortedError();
    waitingOn = await longStatements(conn, endpoint, readsHoldItUp);
    // Writers never quiet for long (statements of seconds, back to back on many sessions) must
    // not hold the base off forever: after DEFAULT_BASE_LOCK_QUIET_WAIT_MAX_S it tries anyway.
    const patient = waitingOn.length > 0 && clock.nowMs() - startedMs < DEFAULT_BASE_LOCK_QUIET_WAIT_MAX_S * 1000;
    let pauseMs = DEFAULT_BASE_LOCK_POLL_INTERVAL_MS;
    if (patient) {
      if (!told) {
        told = true;
        logger.warn({ statements: waitingOn.map((s) => ({ id: s.id, user: s.user, seconds: s.seconds, info: s.info.slice(0, 200) })) }, 'base backup: waiting for long statements on the primary to finish before taking the global read lock (writers are not held meanwhile)');
      }
    } else {
      try {
        await query(conn, 'FLUSH TABLES WITH READ LOCK', endpoint);
        return;
      } catch (err) {
        if (!isLockWaitTimeout(err)) throw err;
        // A long statement (or a LOCK TABLES) held the lock up: writers waited one attempt's
        // timeout. The next attempt comes later each time, so a statement that runs for
        // minutes stalls the writers for a small share of that time.
        failedAttempts += 1;
        pauseMs = Math.min(DEFAULT_BASE_LOCK_RETRY_PAUSE_MS_MAX, DEFAULT_BASE_LOCK_POLL_INTERVAL_MS * 2 ** failedAttempts);
        logger.warn({ lockWaitTimeoutS: DEFAULT_BASE_LOCK_ATTEMPT_TIMEOUT_S, failedAttempts, retryInMs: pauseMs }, 'base backup: the global read lock was not granted in time; trying again');
      }
    }
    if (clock.nowMs() >= deadline) {
      throw new HotspareError('BASE_LOCK_TIMEOUT', `the global read lock a base backup needs was not granted within ${waitMaxS} s on ${endpoint}${waitingOn.length > 0 ? `: held up by ${waitingOn.map((s) => `statement ${s.id} of ${s.user}, running ${s.seconds} s`).join('; ')}` : ''}`, {
        hint: 'a statement that runs for minutes (or a session holding LOCK TABLES) keeps FLUSH TABLES WITH READ LOCK from being granted; let it finish, or KILL it, and run `hotspare base` again; `--method physical` takes its lock only at the end',
      });
    }
    await sleep(pauseMs);
  }
}

/**
 * What only reads, on MariaDB: FTWRL is granted beside it (MariaDB does not wait for SELECTs),
 * so it holds nothing up. Leading comments and parentheses aside. Not reads: SELECT ... FOR
 * UPDATE or LOCK IN SHARE MODE (row locks FTWRL waits for), ANALYZE and DO (they may write).
 * A SELECT calling a function that writes is taken for a read: the attempts' timeout bounds it.
 */
// A comment is matched without a lazy quantifier: one that may stretch over the next comment
// backtracks exponentially on a statement led by a few dozen comments (another session's SQL).
const READ_ONLY_STATEMENT = /^(?:\s|\(|\/\*(?:[^*]|\*(?!\/))*\*\/|--[^\n]*\n|#[^\n]*\n)*(?:SELECT|SHOW|DESC|DESCRIBE|EXPLAIN|WITH|HELP)\b/i;
const LOCKING_READ = /\bFOR\s+UPDATE\b|\bLOCK\s+IN\s+SHARE\s+MODE\b/i;

/**
 * Statements of other sessions (text and prepared) that have run for
 * DEFAULT_BASE_LOCK_LONG_QUERY_S or more and would hold FTWRL up: on MariaDB those that write,
 * on MySQL all (its FTWRL waits for reads too); replication dumps and server threads aside.
 * Without the PROCESS privilege only the user's own sessions are listed: the attempts' short
 * lock_wait_timeout still bounds how long writers wait.
 */
async function longStatements(conn: Connection, endpoint: string, readsHoldItUp: boolean): Promise<LongStatement[]> {
  const rows: RowDataPacket[] = await query(
    conn,
    `SELECT ID AS id, USER AS user, TIME AS seconds, INFO AS info FROM information_schema.PROCESSLIST
      WHERE COMMAND IN ('Query', 'Execute') AND ID <> CONNECTION_ID() AND INFO IS NOT NULL AND TIME >= ${DEFAULT_BASE_LOCK_LONG_QUERY_S}
        AND USER NOT IN ('system user', 'event_scheduler')`,
    endpoint,
  );
  return rows
    .map((r) => ({ id: Number(r['id']), user: String(r['user']), seconds: Number(r['seconds']), info: String(r['info']) }))
    .filter((s) => holdsUpGlobalReadLock(s.info, readsHoldItUp));
}

/** Whether a running statement's text makes FLUSH TABLES WITH READ LOCK wait (see READ_ONLY_STATEMENT). */
export function holdsUpGlobalReadLock(info: string, readsHoldItUp: boolean): boolean {
  return readsHoldItUp || !READ_ONLY_STATEMENT.test(info) || LOCKING_READ.test(info);
}
