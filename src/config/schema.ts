import { z } from 'zod';
import {
  DEFAULT_BASE_STAGING_BYTES_MAX,
  DEFAULT_BINLOG_HIGH_WATER_BYTES,
  DEFAULT_BINLOG_LOW_WATER_BYTES,
  DEFAULT_DUMP_IDLE_TIMEOUT_MS,
  DEFAULT_HEAD_POLL_INTERVAL_MS,
  DEFAULT_HEARTBEAT_PERIOD_MS,
  DEFAULT_HOOK_TIMEOUT_SECONDS,
  HOOK_TIMEOUT_SECONDS_MAX,
  DEFAULT_MAX_LAG_BYTES,
  DEFAULT_MAX_LAG_SECONDS,
  DEFAULT_NET_WRITE_TIMEOUT_S,
  DEFAULT_RETRY_DELAY_MS_MAX,
  DEFAULT_RETRY_DELAY_MS_MIN,
  DEFAULT_SPOOL_RETENTION_SECONDS,
  SPOOL_BLOCK_BYTES_MIN,
  SPOOL_BLOCK_BYTES_MAX,
  DEFAULT_SYNC_BATCH_BYTES_MAX,
} from './defaults.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, { message: 'expected HOST:PORT' });

const positiveInt = z.number().int().positive();

/** Thresholds that decide a replica's health on /healthz and `hotspare check`. */
export const thresholdsSchema = z.strictObject({
  maxLagSeconds: z.number().positive().default(DEFAULT_MAX_LAG_SECONDS),
  maxLagBytes: positiveInt.default(DEFAULT_MAX_LAG_BYTES),
});

const replicaCommon = {
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: 'expected a name of letters, digits, ".", "_" or "-"',
  }),
  /** Replication client id of this replica's dump connection; defaults to primary.serverId + index. */
  serverId: positiveInt.max(4294967295).optional(),
  thresholds: thresholdsSchema.prefault({}),
};

export const fileReplicaSchema = z.strictObject({
  ...replicaCommon,
  type: z.literal('file'),
  path: z.string().min(1),
});

export const remoteReplicaSchema = z.strictObject({
  ...replicaCommon,
  type: z.literal('remote'),
  address: hostPort,
  tokenFile: z.string().min(1),
  tls: z
    .strictObject({
      ca: z.string().min(1).optional(),
      servername: z.string().min(1).optional(),
    })
    .optional(),
});

/** A replica definition: one file in replicas/, or inline in the agent config. */
export const replicaDefinitionSchema = z.discriminatedUnion('type', [fileReplicaSchema, remoteReplicaSchema]);
export type ReplicaDefinition = z.output<typeof replicaDefinitionSchema>;

export const primarySchema = z
  .strictObject({
    host: z.string().min(1).optional(),
    port: positiveInt.max(65535).optional(),
    socketPath: z.string().min(1).optional(),
    user: z.string().min(1),
    password: z.string().optional(),
    passwordFile: z.string().min(1).optional(),
    serverId: positiveInt.max(4294967295),
  })
  .superRefine((value, ctx) => {
    if (value.socketPath === undefined && value.host === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected host and port, or socketPath', path: ['host'] });
    }
    if (value.password !== undefined && value.passwordFile !== undefined) {
      ctx.addIssue({ code: 'custom', message: 'give password or passwordFile, not both', path: ['passwordFile'] });
    }
  });

export const spoolSourceSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, {
    message: 'expected a name of letters, digits, ".", "_" or "-"',
  }),
  path: z.string().refine((p) => p.startsWith('/'), { message: 'expected an absolute path' }),
  exclude: z.array(z.string().min(1)).default([]),
  /**
   * Files only ever appended to (logs, feed data), as globs read as `exclude`'s: one that grows
   * while it is read is taken as the bytes it held when the read began, once a second read finds
   * them unchanged, instead of being read again until it is quiet (which a file appended every
   * few milliseconds never is). Named by the operator, since nothing outside the writer can tell
   * an append from a rewrite that makes a file larger.
   */
  appendOnly: z.array(z.string().min(1)).default([]),
  /** How long the archive keeps this source's history for point-in-time restore. */
  retentionSeconds: positiveInt.default(DEFAULT_SPOOL_RETENTION_SECONDS),
  /**
   * The size of the blocks files are compared and stored in, for a new archive (one keeps the
   * size it was made with); DEFAULT_SPOOL_BLOCK_BYTES when not given. An in-place rewrite ships whole blocks (an append
   * only its bytes: see BlockRef), so files rewritten a few bytes at a time want small ones.
   */
  blockBytes: z
    .number()
    .int()
    .refine((n) => n >= SPOOL_BLOCK_BYTES_MIN && n <= SPOOL_BLOCK_BYTES_MAX && (n & (n - 1)) === 0, {
      message: `expected a power of two from ${SPOOL_BLOCK_BYTES_MIN} to ${SPOOL_BLOCK_BYTES_MAX}`,
    })
    .optional(),
  /** Shell commands run on the standby after promotion restored this source (in order). */
  hooks: z
    .array(
      z.strictObject({
        run: z.string().min(1),
        timeoutSeconds: positiveInt.max(HOOK_TIMEOUT_SECONDS_MAX).default(DEFAULT_HOOK_TIMEOUT_SECONDS),
      }),
    )
    .default([]),
});

export const binlogTuningSchema = z.strictObject({
  highWaterBytes: positiveInt.default(DEFAULT_BINLOG_HIGH_WATER_BYTES),
  lowWaterBytes: positiveInt.default(DEFAULT_BINLOG_LOW_WATER_BYTES),
  syncBatchBytesMax: positiveInt.default(DEFAULT_SYNC_BATCH_BYTES_MAX),
  heartbeatPeriodMs: positiveInt.default(DEFAULT_HEARTBEAT_PERIOD_MS),
  idleTimeoutMs: positiveInt.default(DEFAULT_DUMP_IDLE_TIMEOUT_MS),
  netWriteTimeoutS: positiveInt.default(DEFAULT_NET_WRITE_TIMEOUT_S),
  retryDelayMsMin: positiveInt.default(DEFAULT_RETRY_DELAY_MS_MIN),
  retryDelayMsMax: positiveInt.default(DEFAULT_RETRY_DELAY_MS_MAX),
  headPollIntervalMs: positiveInt.default(DEFAULT_HEAD_POLL_INTERVAL_MS),
  /**
   * When the primary has purged binlog an archive needs: `new-base` takes a new base backup
   * and restarts the archive's chain there, recording the gap; `stop` keeps the replica in
   * state `gap` until an operator acts.
   */
  onPurged: z.enum(['new-base', 'stop']).default('new-base'),
});

/**
 * How base backups are taken: `logical` (exact rows through the mariadb client; works from any
 * host) or `physical` (mariabackup on the primary's own host, reading its datadir: far faster
 * for large databases, and exact by construction).
 */
export const baseSettingsSchema = z.strictObject({
  method: z.enum(['logical', 'physical']).default('logical'),
  /**
   * A `remote` replica's base backup is taken into the agent's stateDir first and uploaded from
   * there (it survives a link that drops): at most this many bytes of one base (a larger one
   * fails with BASE_STAGING_FULL).
   */
  stagingBytesMax: positiveInt.default(DEFAULT_BASE_STAGING_BYTES_MAX),
});

export const agentConfigSchema = z.strictObject({
  primary: primarySchema,
  stateDir: z.string().min(1),
  replicas: z.array(z.union([z.string().min(1), replicaDefinitionSchema])).min(1),
  spool: z.array(spoolSourceSchema).default([]),
  http: z.strictObject({ listen: hostPort }).optional(),
  binlog: binlogTuningSchema.prefault({}),
  base: baseSettingsSchema.prefault({}),
});

export type AgentConfigInput = z.input<typeof agentConfigSchema>;
export type BinlogTuning = z.output<typeof binlogTuningSchema>;
export type BaseSettings = z.output<typeof baseSettingsSchema>;
export type BaseMethod = BaseSettings['method'];
export type SpoolSource = z.output<typeof spoolSourceSchema>;
