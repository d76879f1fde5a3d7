import { HotspareError } from '../core/errors.js';

/** MySQL/MariaDB error numbers the agent reacts to. */
const ER_ACCESS_DENIED = 1045;
/** MariaDB's answer to a login refused by its unix_socket plugin (root over the socket, as another OS user). */
const ER_ACCESS_DENIED_NO_PASSWORD = 1698;
const ER_SPECIFIC_ACCESS_DENIED = 1227;
const ER_MASTER_FATAL_ERROR_READING_BINLOG = 1236;
const ER_LOCK_WAIT_TIMEOUT = 1205;
/** SHOW BINARY LOGS on a server running without a binlog (log_bin off, --skip-log-bin). */
const ER_NO_BINARY_LOGGING = 1381;

/**
 * BINLOG_DISABLED's hint, wherever it is found: the preflight, a head check or a dump's start
 * (a primary restarted without its binlog while the agent runs) tell the operator the same fix.
 */
export const BINLOG_DISABLED_HINT = "add log_bin=mysql-bin and binlog_format=ROW to the server's config and restart it";

/**
 * ER_LOCK_WAIT_TIMEOUT: the statement waited lock_wait_timeout for a metadata lock and did
 * nothing. Seen as mysql2 raised it or wrapped as the cause of a HotspareError (queryRows,
 * TargetServer).
 */
export function isLockWaitTimeout(err: unknown): boolean {
  const cause: unknown = err instanceof HotspareError ? err.cause : err;
  return (cause as { errno?: number } | undefined)?.errno === ER_LOCK_WAIT_TIMEOUT;
}

/** Failures a running agent retries, whose hints say so ("the agent retries"). */
const RETRIED_WHILE_RUNNING: ReadonlySet<string> = new Set(['PRIMARY_UNREACHABLE', 'PRIMARY_ERROR']);

/**
 * `err` from a question to the primary that nothing retries (the agent's start, `hotspare
 * base`), with a hint true there: the fix, then `then` (what to do once it is fixed) instead of
 * "the agent retries". Other errors are returned as they are.
 */
export function notRetried(err: unknown, then: string): unknown {
  if (!(err instanceof HotspareError) || !RETRIED_WHILE_RUNNING.has(err.code)) return err;
  const fix = err.code === 'PRIMARY_UNREACHABLE' ? 'check that the server runs and that primary.host/port/socketPath are right' : 'see the cause';
  return new HotspareError(err.code, err.message, { cause: err, hint: `${fix}${then}` });
}

/**
 * The server refused the login itself (user, password, or the host it came from), as opposed to
 * a server that could not be reached: the first needs the credentials changed, not the network.
 */
export function isAccessDenied(err: unknown): boolean {
  const errno = (err as { errno?: number } | undefined)?.errno;
  return errno === ER_ACCESS_DENIED || errno === ER_ACCESS_DENIED_NO_PASSWORD;
}

/**
 * Translates a mysql2 error into a HotspareError with an operator hint. A dump request for a
 * purged file is its own code (BINLOG_PURGED): it is never retried into a silent skip.
 */
export function fromMysqlError(err: unknown, what: string, endpoint: string): HotspareError {
  if (err instanceof HotspareError) return err;
  const e = err as { errno?: number; code?: string; message?: string };
  const message = e.message ?? String(err);
  if (/same server_uuid\/server_id|same server_id/i.test(message)) {
    // The primary keeps one dump per server_id: another replica with this id pushed this
    // dump off, and this dump pushes it off in turn, for as long as both retry.
    return new HotspareError('SERVER_ID_IN_USE', `${what}: another replica of the primary uses the same server_id (${message})`, {
      cause: err,
      hint: 'choose primary.serverId (and any replica serverId) unused by every server in the topology, then restart the agent',
    });
  }
  if (e.errno === ER_MASTER_FATAL_ERROR_READING_BINLOG) {
    if (/could not find first log file|purged|no longer available/i.test(message)) {
      return new HotspareError('BINLOG_PURGED', `${what}: the primary no longer has the binlog the archive needs (${message})`, {
        cause: err,
        hint: 'with binlog.onPurged "new-base" (the default) the agent takes a new base and restarts the archive\'s chain there, recording the gap; with "stop", set it to "new-base" and restart the agent; keep binlog longer (binlog_expire_logs_seconds)',
      });
    }
    return new HotspareError('BINLOG_READ', `${what}: the primary cannot send its binlog (${message})`, {
      cause: err,
      hint: 'check the primary\'s error log; the agent retries',
    });
  }
  if (e.errno === ER_NO_BINARY_LOGGING) {
    // The server answered: it runs without a binlog, which no retry mends (not PRIMARY_ERROR,
    // whose hint, "see the cause", left the operator to read MariaDB's message).
    return new HotspareError('BINLOG_DISABLED', `${what}: the primary does not write a binlog (${message})`, { cause: err, hint: BINLOG_DISABLED_HINT });
  }
  if (e.errno === ER_ACCESS_DENIED) {
    return new HotspareError('PRIMARY_AUTH', `${what}: access denied for ${endpoint}`, {
      cause: err,
      hint: 'check primary.user and the password (file) in the config',
    });
  }
  if (e.errno === ER_SPECIFIC_ACCESS_DENIED) {
    return new HotspareError('PRIVILEGES', `${what}: ${message}`, {
      cause: err,
      hint: 'GRANT REPLICATION SLAVE, BINLOG MONITOR, RELOAD, SELECT, LOCK TABLES, SHOW VIEW, EVENT, TRIGGER ON *.* TO the hotspare user',
    });
  }
  const network = ['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ENOENT', 'PROTOCOL_CONNECTION_LOST', 'EPIPE'];
  // mysql2 refuses a query on a connection that has already died with an error of no code:
  // the server went away between two head checks, as much as a refused connect.
  const closed = e.code === undefined && /connection is in closed state/i.test(message);
  if ((e.code !== undefined && network.includes(e.code)) || closed) {
    return new HotspareError('PRIMARY_UNREACHABLE', `${what}: cannot reach the primary at ${endpoint} (${e.code ?? 'connection closed'})`, {
      cause: err,
      hint: 'the agent retries; check that the server runs and that primary.host/port/socketPath are right',
    });
  }
  return new HotspareError('PRIMARY_ERROR', `${what}: ${message}`, { cause: err, hint: 'see the cause; the agent retries' });
}
