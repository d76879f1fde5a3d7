import { parseArgs } from 'node:util';
import { askAgent } from '../agent/control-client.js';
import { baseResult, controlSocketPath, type BaseResult } from '../agent/control-protocol.js';
import type { PrimaryIdentity } from '../archive/archive-identity.js';
import { loadAgentConfig, type PrimaryConnection } from '../config/load.js';
import type { BaseMethod } from '../config/schema.js';
import { HotspareError } from '../core/errors.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { MysqlProbe } from '../primary/mysql-probe.js';
import { notRetried } from '../primary/mysql-error.js';
import { refuseAnotherTimeline, takeBase } from '../primary/base/take-base.js';
import { createReplicaTarget } from '../replica/create-replica-target.js';
import { UsageError } from './cli-failure.js';
import { listenForStop } from './stop-signal.js';
import { childLogger } from '../platform/logger.js';

/**
 * `hotspare base --config FILE [--replica NAME] [--method physical|logical]`: takes a base backup now into each replica's
 * archive (one consistent backup per archive, each with its own coordinates). While an agent
 * runs with this config it holds the archives' locks, so the request goes to it through its
 * control socket (`<stateDir>/agent.sock`) and the agent takes the backups through its own
 * sessions; this waits for the answer. Without a running agent it opens each archive itself.
 * `--method` overrides the config's `base.method` for this run.
 */
export async function baseCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' }, replica: { type: 'string' }, method: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  if (values.config === undefined) throw new UsageError('base needs --config FILE');
  if (values.method !== undefined && values.method !== 'physical' && values.method !== 'logical') throw new UsageError(`--method: expected physical or logical, got ${JSON.stringify(values.method)}`);
  const config = loadAgentConfig(values.config);
  const method: BaseMethod = values.method ?? config.base.method;
  const replicas = config.replicas.filter((r) => values.replica === undefined || r.name === values.replica);
  if (replicas.length === 0) throw new UsageError(`no replica named ${JSON.stringify(values.replica)} in ${values.config}`);
  const viaAgent = await askAgent(controlSocketPath(config.stateDir), { op: 'base', ...(values.replica === undefined ? {} : { replica: values.replica }), ...(values.method === undefined ? {} : { method }) });
  if (viaAgent !== undefined) {
    if (!viaAgent.ok) throw new HotspareError(viaAgent.error.code, `the running agent: ${viaAgent.error.message}`, { hint: viaAgent.error.hint });
    logger.info({ agentPid: viaAgent.agentPid }, 'base backup taken by the running agent');
    printResults(viaAgent.results, values.json === true, ` (taken by the running agent, pid ${viaAgent.agentPid})`);
    return 0;
  }
  // SIGTERM or SIGINT abandons the backup at once: its tools and session end, its partial folder goes.
  const interrupted = new AbortController();
  void listenForStop(logger).received.then(() => interrupted.abort());
  const identity = await baseIdentity(config.primary);
  const results: BaseResult[] = [];
  for (const definition of replicas) {
    const log = childLogger(logger, { replica: definition.name });
    // The signal also ends a remote replica's upload of a staged base between pieces: the base
    // stays in the stateDir, and the next agent start (or `hotspare base`) finishes its upload.
    const target = createReplicaTarget(definition, { logger: log, clock: systemClock, syncBatchBytesMax: config.binlog.syncBatchBytesMax, stateDir: config.stateDir, baseStagingBytesMax: config.base.stagingBytesMax, stopSignal: interrupted.signal });
    const session = await target.open(identity);
    try {
      await refuseAnotherTimeline(config.primary, session.resume);
      const base = await takeBase(method, { primary: config.primary, files: session.files, clock: systemClock, logger: log, signal: interrupted.signal });
      results.push(baseResult(definition.name, base));
    } catch (err) {
      throw err instanceof HotspareError ? err : new HotspareError('BASE_FAILED', `base backup for ${definition.name} failed: ${String(err)}`, { cause: err, hint: 'see the log; nothing partial was kept' });
    } finally {
      await session.close();
    }
  }
  printResults(results, values.json === true, '');
  return 0;
}

/**
 * The primary's preflight for `hotspare base`, whose failures' hints say what is true here: the
 * running agent retries a primary it cannot reach ("the agent retries"), this command does not.
 */
async function baseIdentity(primary: PrimaryConnection): Promise<PrimaryIdentity> {
  try {
    const probe = await MysqlProbe.connect(primary);
    return await probe.preflight([]).finally(() => probe.close());
  } catch (err) {
    throw notRetried(err, ', then run `hotspare base` again');
  }
}

function printResults(results: BaseResult[], json: boolean, suffix: string): void {
  if (json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  else for (const r of results) process.stdout.write(`${r.replica}: base ${r.id} at ${r.binlog.file}:${r.binlog.position}${r.gtid ? ` (GTID ${r.gtid})` : ''}, ${r.bytes} bytes, ${r.method === 'physical-mariabackup' ? 'commits blocked' : 'read lock held'} ${r.lockHeldMs} ms${r.tableLockHeldMs === undefined ? '' : ` (non-transactional tables ${r.tableLockHeldMs} ms)`}, ${r.method}${suffix}\n`);
}
