import { parseArgs } from 'node:util';
import { controlSocketPath } from '../agent/control-protocol.js';
import { loadAgentId } from '../agent/agent-id.js';
import { ControlServer } from '../agent/control-server.js';
import { SyncAgent } from '../agent/sync-agent.js';
import { loadAgentConfig } from '../config/load.js';
import { LagServer } from '../http/lag-server.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { hotspareVersion } from '../platform/version.js';
import { UsageError } from './cli-failure.js';
import { exitOnceSettled } from './exit-once-settled.js';
import { listenForStop, type StopSignal } from './stop-signal.js';
import { childLogger } from '../platform/logger.js';

/** `hotspare agent --config FILE`: runs until SIGTERM/SIGINT, then persists progress and exits 0. */
export async function agentCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) throw new UsageError('agent needs --config FILE');
  const config = loadAgentConfig(values.config);
  const log = childLogger(logger, { component: 'agent' });
  const stop = listenForStop(log);
  const identity = await startupStep(stop, SyncAgent.preflight(config, log));
  if (identity === undefined) return 0;
  log.info({ version: hotspareVersion(), primary: identity, replicas: config.replicas.map((r) => r.name) }, 'primary checked; starting');
  const agentId = await loadAgentId(config.stateDir);
  const agent = new SyncAgent(config, identity, { logger, clock: systemClock, random01: Math.random, agentId });
  // `hotspare base` reaches the running agent here (the agent holds the archives' locks). Taken
  // before any replica is opened: a second agent on this stateDir is refused here, before its
  // connections (under the same agent id) could replace this one's at a receiver. (loadAgentId
  // has made the stateDir.)
  const control = await ControlServer.listen({
    path: controlSocketPath(config.stateDir),
    handle: async (request) => ({ ok: true, agentPid: process.pid, results: await agent.baseBackup(request.replica, request.method) }),
    logger: childLogger(logger, { component: 'control' }),
  });
  try {
    await startupStep(stop, agent.checkReplicas());
    if (stop.requested) return 0;
    const http = config.http;
    // The lag endpoint is how an operator learns that a standby fell behind; running without
    // one is allowed (`hotspare status` on the archive still works) but must not go unnoticed.
    if (http === undefined) log.warn({ code: 'NO_LAG_ENDPOINT', hint: 'add "http": { "listen": "127.0.0.1:9187" } to the agent config' }, 'no http.listen in the config: the lag endpoint (/lag, /metrics, /healthz) is off');
    const server =
      http === undefined
        ? undefined
        : await LagServer.listen({ ...http, report: (nowMs) => agent.lag.report(nowMs), clock: systemClock, logger: childLogger(logger, { component: 'lag-server' }) });
    if (stop.requested) {
      await server?.close();
      return 0;
    }
    agent.start();
    await stop.received;
    await server?.close();
  } finally {
    // Base backups go first, so a `hotspare base` waiting on one is told why before the control socket closes.
    await agent.abandonBaseBackups();
    await control?.close();
  }
  await agent.stop();
  log.info('stopped; progress is durable');
  exitOnceSettled(log);
  return 0;
}

/**
 * Awaits a start-up step. Once a stop was requested, the step's failure (a primary that never
 * answered, say) is no longer the agent's: it was stopping anyway, and exits 0 as asked.
 */
async function startupStep<T>(stop: StopSignal, step: Promise<T>): Promise<T | undefined> {
  try {
    const result = await step;
    return stop.requested ? undefined : result;
  } catch (err) {
    if (stop.requested) return undefined;
    throw err;
  }
}
