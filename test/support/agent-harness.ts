import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SyncAgent } from '../../src/agent/sync-agent.js';
import { loadAgentConfig } from '../../src/config/load.js';
import type { ReplicaDefinition } from '../../src/config/schema.js';
import { systemClock } from '../../src/platform/clock.js';
import type { Logger } from '../../src/platform/logger.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';

/** A logger that writes JSON lines to a file in the test's folder (read it when a test fails). */
export function fileLogger(path: string): Logger {
  return pino({ level: 'debug', base: { pid: process.pid } }, pino.destination({ dest: path, sync: true }));
}

/** Starts an in-process SyncAgent for `primary` with the given replicas; quick retries for tests. */
export async function startAgent(primary: MariadbServer, replicas: object[], dir: string): Promise<SyncAgent> {
  const configPath = join(dir, 'agent.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      primary: { host: '127.0.0.1', port: primary.port, user: 'root', serverId: 4242 },
      stateDir: join(dir, 'agent-state'),
      replicas,
      binlog: { retryDelayMsMin: 100, retryDelayMsMax: 800 },
    }),
  );
  const config = loadAgentConfig(configPath);
  const identity = await SyncAgent.preflight(config);
  const agent = new SyncAgent(config, identity, { logger: fileLogger(join(dir, 'agent.log')), clock: systemClock, random01: Math.random });
  agent.start();
  return agent;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `hotspare-${prefix}-`));
}

export type { ReplicaDefinition };
