import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { formatIssues } from './format-issues.js';
import {
  agentConfigSchema,
  replicaDefinitionSchema,
  type BaseSettings,
  type BinlogTuning,
  type ReplicaDefinition,
  type SpoolSource,
} from './schema.js';

/** The agent's configuration after parsing: replica files read, secrets loaded, frozen. */
export interface AgentConfig {
  readonly primary: PrimaryConnection;
  readonly stateDir: string;
  readonly replicas: readonly ReplicaDefinition[];
  readonly spool: readonly SpoolSource[];
  readonly http: { readonly host: string; readonly port: number } | undefined;
  readonly binlog: BinlogTuning;
  readonly base: BaseSettings;
  /** The file the config came from, for messages. */
  readonly sourcePath: string;
}

export interface PrimaryConnection {
  readonly host?: string;
  readonly port?: number;
  readonly socketPath?: string;
  readonly user: string;
  readonly password: string;
  readonly serverId: number;
}

/**
 * The YAML parser, loaded on the first YAML file: it costs about 25 ms of every start, and a
 * JSON config never needs it (the agent's start-up is part of its catch-up time).
 */
function parseYaml(text: string): unknown {
  const yaml = createRequire(import.meta.url)('yaml') as typeof import('yaml');
  return yaml.parse(text);
}

/** Reads a JSON or YAML file into plain data; the error names the file. */
export function readStructuredFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError('', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError('', `${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
  }
}

/** Parses one replica definition (from replicas/*.json or inline); errors name the field. */
export function parseReplicaDefinition(data: unknown, field: string): ReplicaDefinition {
  const result = replicaDefinitionSchema.safeParse(data, { reportInput: true });
  if (!result.success) throw new ConfigError('', formatIssues(result.error.issues, field).join('\n'));
  return result.data;
}

/** Loads and validates an agent config file. Throws ConfigError naming the first bad field(s). */
export function loadAgentConfig(path: string): AgentConfig {
  const absolute = resolve(path);
  const data = readStructuredFile(absolute);
  const result = agentConfigSchema.safeParse(data, { reportInput: true });
  if (!result.success) throw new ConfigError('', formatIssues(result.error.issues).join('\n'));
  const raw = result.data;
  const baseDir = dirname(absolute);

  const replicas = raw.replicas.map((entry, index) => {
    if (typeof entry !== 'string') return entry;
    const file = resolve(baseDir, entry);
    return parseReplicaDefinition(readStructuredFile(file), `replicas[${index}] (${entry})`);
  });
  assertUnique(replicas.map((r) => r.name), 'replicas', 'replica name');
  assertUnique(raw.spool.map((s) => s.name), 'spool', 'spool source name');
  if (raw.binlog.lowWaterBytes >= raw.binlog.highWaterBytes) {
    throw new ConfigError('binlog.lowWaterBytes', 'must be below binlog.highWaterBytes');
  }

  let password = raw.primary.password ?? '';
  if (raw.primary.passwordFile !== undefined) {
    const file = resolve(baseDir, raw.primary.passwordFile);
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError('primary.passwordFile', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
  const { host, port, socketPath, user, serverId } = raw.primary;
  const primary: PrimaryConnection = {
    user,
    password,
    serverId,
    ...(socketPath !== undefined ? { socketPath } : { host: host ?? '127.0.0.1', port: port ?? 3306 }),
  };

  return Object.freeze({
    primary: Object.freeze(primary),
    stateDir: resolve(baseDir, raw.stateDir),
    replicas: Object.freeze(replicas.map((r) => resolveReplicaPaths(r, baseDir))),
    spool: Object.freeze(raw.spool),
    http: raw.http === undefined ? undefined : parseHostPort(raw.http.listen, 'http.listen'),
    binlog: Object.freeze(raw.binlog),
    base: Object.freeze(raw.base),
    sourcePath: absolute,
  });
}

/**
 * Every relative path of a replica definition is relative to the agent config file, like the
 * config's own paths: an agent started by a service manager has `/` as its working directory.
 */
function resolveReplicaPaths(replica: ReplicaDefinition, baseDir: string): ReplicaDefinition {
  if (replica.type === 'file') return { ...replica, path: resolve(baseDir, replica.path) };
  const tls = replica.tls === undefined ? undefined : { ...replica.tls, ...(replica.tls.ca === undefined ? {} : { ca: resolve(baseDir, replica.tls.ca) }) };
  return { ...replica, tokenFile: resolve(baseDir, replica.tokenFile), ...(tls === undefined ? {} : { tls }) };
}

/** Splits HOST:PORT (IPv6 in brackets). */
export function parseHostPort(value: string, field: string): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : NaN;
  if (!match || !(port >= 0 && port <= 65535)) throw new ConfigError(field, `expected HOST:PORT, received ${JSON.stringify(value)}`);
  return { host: match[1] ?? '', port };
}

function assertUnique(names: readonly string[], field: string, what: string): void {
  const seen = new Set<string>();
  for (const [index, name] of names.entries()) {
    if (seen.has(name)) throw new ConfigError(`${field}[${index}].name`, `duplicate ${what} ${JSON.stringify(name)}`);
    seen.add(name);
  }
}
