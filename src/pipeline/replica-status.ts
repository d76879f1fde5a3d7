import type { DurablePoint } from '../core/binlog-record.js';

/** The contract's replica states (../shared/contract.md, lag endpoint). */
export type ReplicaState = 'streaming' | 'catching-up' | 'disconnected' | 'gap' | 'error';

/** What a replica pipeline reports as it runs. */
export type ReplicaEvent =
  /** The stream to this replica is (re)established from `start`. */
  | { kind: 'connected'; start: { file: string; position: number } }
  /** Everything up to `point` is durable on the replica. */
  | { kind: 'durable'; point: DurablePoint; shippedBytes: number }
  /**
   * The primary's stream reached `file:position` (an event or a heartbeat arrived). `first`:
   * where the report's first commit (an event that ends a transaction) ends and the time in its
   * header (whole seconds), which dates a backlog the agent was not there to see being written.
   * `lastCommitS`: the header time of its last commit. `idle`: it ends with a heartbeat, which
   * the primary sends only when it has nothing newer (its binlog ended at `file:position`).
   */
  | { kind: 'received'; file: string; position: number; atMs: number; first?: { file: string; position: number; timestampS: number }; lastCommitS?: number; idle?: true }
  /** The stream broke; the pipeline retries after `retryInMs`. */
  | { kind: 'failed'; state: ReplicaState; code: string; message: string; hint: string; retryInMs: number };

/** Error codes that mean the archive cannot continue without an operator (a new base backup). */
export const GAP_CODES: ReadonlySet<string> = new Set(['BINLOG_PURGED', 'BINLOG_GAP']);
/** Error codes that mean the replica's archive or setup is wrong, not the link. */
export const ERROR_CODES: ReadonlySet<string> = new Set([
  'ARCHIVE_FOREIGN',
  'ARCHIVE_VERSION',
  // Promoted from: its primary was failed over (promotion-fence.ts).
  'ARCHIVE_PROMOTED',
  'ARCHIVE_LOCKED',
  'ARCHIVE_READ',
  // An empty archive where the replica's archive held binlog (moved, or its volume not mounted).
  'ARCHIVE_MISSING',
  // archive.json unreadable (a receiver refuses with it, a file replica fails to open on it).
  'ARCHIVE_DAMAGED',
  'DISK_FULL',
  'ARCHIVE_READ_ONLY',
  'ARCHIVE_PERMISSION',
  'ARCHIVE_IO',
  'RECEIVER_REFUSED',
  // The receiver's certificate is not one the replica trusts: a setting to fix, not an outage.
  'RECEIVER_TLS',
  'SERVER_ID_IN_USE',
  // A privilege revoked while the agent runs (the dump's, a base's): nothing heals it but a GRANT.
  'PRIVILEGES',
  // The primary's setup, found at a dump's start (a primary restarted with another config).
  'BINLOG_ENCRYPTED',
  // Likewise: a primary restarted without its binlog (--skip-log-bin) answers, but has nothing to dump.
  'BINLOG_DISABLED',
]);
/**
 * Error codes whose every retry does harm elsewhere (a dump with a replica's server_id pushes
 * that replica off the primary) or cannot succeed until an operator acts (an encrypted binlog).
 * They are retried at the backoff's cap, not from its start.
 */
export const CAPPED_RETRY_CODES: ReadonlySet<string> = new Set(['SERVER_ID_IN_USE', 'BINLOG_ENCRYPTED']);
/**
 * A receiver that could not be reached, went away or is restarting: reconnecting costs nothing,
 * so its retries wait at most DEFAULT_RECEIVER_RETRY_DELAY_MS_MAX.
 */
export const RECEIVER_LINK_CODES: ReadonlySet<string> = new Set(['RECEIVER_UNREACHABLE', 'RECEIVER_LOST', 'RECEIVER_UNAVAILABLE']);

export function stateForCode(code: string): ReplicaState {
  if (GAP_CODES.has(code)) return 'gap';
  if (ERROR_CODES.has(code)) return 'error';
  return 'disconnected';
}
