import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AgentConfigInput } from '../../src/config/schema.js';
import type { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { trackChild } from './live-children.js';

const REPO_ROOT = new URL('../..', import.meta.url).pathname;
const BIN = join(REPO_ROOT, 'bin/hotspare.js');
const STOP_TIMEOUT_MS = 30_000;

type ReplicaInput = AgentConfigInput['replicas'][number];

/**
 * Writes an agent config for a sandbox primary. Replicas are given whole (file or remote),
 * so the same helper serves a receiver-backed test: pass `{ type: 'remote', ... }`.
 */
export function writeAgentConfig(
  dir: string,
  primary: MariadbServer,
  options: { replicas: ReplicaInput[]; httpPort: number; serverId?: number; binlog?: AgentConfigInput['binlog'] },
): string {
  const config: AgentConfigInput = {
    primary: { socketPath: primary.socketPath, user: 'root', password: '', serverId: options.serverId ?? 9_000 },
    stateDir: join(dir, 'state'),
    replicas: options.replicas,
    http: { listen: `127.0.0.1:${options.httpPort}` },
    binlog: { retryDelayMsMax: 1_000, ...options.binlog },
  };
  const path = join(dir, 'agent.json');
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** A real `hotspare agent` process (needs a fresh `npm run build`); its log goes to a file. */
export class AgentProcess {
  readonly #child: ChildProcess;
  readonly logPath: string;
  readonly #exited: Promise<number | null>;

  private constructor(child: ChildProcess, logPath: string) {
    this.#child = child;
    this.logPath = logPath;
    this.#exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    trackChild(child);
  }

  static start(configPath: string, logPath: string): AgentProcess {
    const fd = openSync(logPath, 'a');
    const child = spawn(process.execPath, [BIN, 'agent', '--config', configPath], {
      stdio: ['ignore', fd, fd],
      env: { ...process.env, HOTSPARE_LOG_LEVEL: 'info' },
    });
    closeSync(fd);
    return new AgentProcess(child, logPath);
  }

  get running(): boolean {
    return this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** SIGTERM, and the exit code (0 when it persisted its progress). */
  async stop(): Promise<number | null> {
    if (this.running) this.#child.kill('SIGTERM');
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const code = await this.#exited;
    clearTimeout(timer);
    return code;
  }

  log(): string {
    return readFileSync(this.logPath, 'utf8');
  }
}


export { runHotspare } from './agent-process.js';
export { waitFor } from './wait.js';
