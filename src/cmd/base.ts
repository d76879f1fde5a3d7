import { parseArgs } from 'node:util';
import { loadAgentConfig } from '../config/load.js';
import { HotspareError } from '../core/errors.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { MysqlProbe } from '../primary/mysql-probe.js';
import { takeBaseBackup } from '../primary/base/take-base-backup.js';
import { createReplicaTarget } from '../replica/create-replica-target.js';
import { UsageError } from './cli-failure.js';

/**
 * `hotspare base --config FILE [--replica NAME]`: takes a base backup now into each replica's
 * archive (one consistent backup per archive, each with its own coordinates). It opens the
 * archive like the agent does, so it refuses (ARCHIVE_LOCKED) while an agent writes there.
 */
export async function baseCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, replica: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  if (values.config === undefined) throw new UsageError('base needs --config FILE');
  const config = loadAgentConfig(values.config);
  const replicas = config.replicas.filter((r) => values.replica === undefined || r.name === values.replica);
  if (replicas.length === 0) throw new UsageError(`no replica named ${JSON.stringify(values.replica)} in ${values.config}`);
  const probe = await MysqlProbe.connect(config.primary);
  const identity = await probe.preflight([]).finally(() => probe.close());
  const results = [];
  for (const definition of replicas) {
    const log = logger.child({ replica: definition.name });
    const target = createReplicaTarget(definition, { logger: log, clock: systemClock, syncBatchBytesMax: config.binlog.syncBatchBytesMax });
    const session = await target.open(identity);
    try {
      const base = await takeBaseBackup({ primary: config.primary, files: session.files, clock: systemClock, logger: log });
      results.push({ replica: definition.name, id: base.id, binlog: base.binlog, gtid: base.gtidBinlogPos, lockHeldMs: base.lockHeldMs, bytes: base.files.reduce((n, f) => n + f.bytes, 0) });
    } catch (err) {
      throw err instanceof HotspareError ? err : new HotspareError('BASE_FAILED', `base backup for ${definition.name} failed: ${String(err)}`, { cause: err, hint: 'see the log; nothing partial was kept' });
    } finally {
      await session.close();
    }
  }
  if (values.json === true) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else for (const r of results) process.stdout.write(`${r.replica}: base ${r.id} at ${r.binlog.file}:${r.binlog.position}${r.gtid ? ` (GTID ${r.gtid})` : ''}, ${r.bytes} bytes, read lock held ${r.lockHeldMs} ms\n`);
  return 0;
}
