import { join } from 'node:path';
import { z } from 'zod';
import type { BaseBackupMetadata } from '../archive/base-catalog.js';
import type { BinlogPosition } from '../core/binlog-position.js';

/**
 * The agent's control channel: a Unix socket at `<stateDir>/agent.sock` (mode 0600), one
 * request per connection, each a line of JSON, answered with one line of JSON. Through it
 * `hotspare base` asks a running agent (which holds the archives' write locks) to take a base
 * backup through its own open sessions.
 */
export const CONTROL_SOCKET_NAME = 'agent.sock';
/** Unix socket paths longer than this do not fit in sockaddr_un on Linux. */
export const UNIX_SOCKET_PATH_BYTES_MAX = 107;

export function controlSocketPath(stateDir: string): string {
  return join(stateDir, CONTROL_SOCKET_NAME);
}

export const controlRequestSchema = z.strictObject({
  op: z.literal('base'),
  /** One replica by name; absent: every replica. */
  replica: z.string().min(1).optional(),
  /** `hotspare base --method`: overrides the agent's `base.method` for this request. */
  method: z.enum(['logical', 'physical']).optional(),
});
export type ControlRequest = z.infer<typeof controlRequestSchema>;

/** What one replica's base backup gave (the same fields `hotspare base --json` prints). */
export interface BaseResult {
  replica: string;
  id: string;
  binlog: BinlogPosition;
  gtid: string;
  lockHeldMs: number;
  /** Logical bases: how long the non-transactional tables stayed read-locked on their own after the global lock (absent: they were copied under it). */
  tableLockHeldMs?: number;
  bytes: number;
  /** The base's method (metadata.json `method`). */
  method: BaseBackupMetadata['method'];
}

export function baseResult(replica: string, base: BaseBackupMetadata): BaseResult {
  return { replica, id: base.id, binlog: base.binlog, gtid: base.gtidBinlogPos, lockHeldMs: base.lockHeldMs, ...(base.tableLockHeldMs === undefined ? {} : { tableLockHeldMs: base.tableLockHeldMs }), bytes: base.files.reduce((n, f) => n + f.bytes, 0), method: base.method };
}

export type ControlResponse =
  | { ok: true; agentPid: number; results: BaseResult[] }
  | { ok: false; error: { code: string; message: string; hint: string } };

export const controlResponseSchema = z.union([
  z.object({
    ok: z.literal(true),
    agentPid: z.number(),
    results: z.array(
      z.object({
        replica: z.string(),
        id: z.string(),
        binlog: z.object({ file: z.string(), position: z.number() }),
        gtid: z.string(),
        lockHeldMs: z.number(),
        tableLockHeldMs: z.number().optional(),
        bytes: z.number(),
        method: z.enum(['logical-exact', 'physical-mariabackup']),
      }),
    ),
  }),
  z.object({ ok: z.literal(false), error: z.object({ code: z.string(), message: z.string(), hint: z.string() }) }),
]);
