import { readFileSync, realpathSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { excludeMatcher } from '../spool/tree-scanner.js';
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

/** Reads a JSON or YAML file into plain data; the error names the file, and `field` when a config field named it. */
export function readStructuredFile(path: string, field = ''): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(field, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  try {
    return /\.ya?ml$/i.test(path) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw new ConfigError(field, `${path} is not valid ${/\.ya?ml$/i.test(path) ? 'YAML' : 'JSON'}: ${(err as Error).message}`);
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
    return parseReplicaDefinition(readStructuredFile(file, `replicas[${index}]`), `replicas[${index}] (${entry})`);
  });
  assertUnique(replicas.map((r) => r.name), 'replicas', 'replica name');
  assertUnique(raw.spool.map((s) => s.name), 'spool', 'spool source name');
  if (raw.binlog.lowWaterBytes >= raw.binlog.highWaterBytes) {
    throw new ConfigError('binlog.lowWaterBytes', 'must be below binlog.highWaterBytes');
  }
  // Heartbeats are what keep an idle dump from counting as dead.
  if (raw.binlog.heartbeatPeriodMs >= raw.binlog.idleTimeoutMs) {
    throw new ConfigError('binlog.heartbeatPeriodMs', 'must be below binlog.idleTimeoutMs (an idle primary would look dead between heartbeats)');
  }
  if (raw.binlog.retryDelayMsMin > raw.binlog.retryDelayMsMax) {
    throw new ConfigError('binlog.retryDelayMsMin', 'must not be above binlog.retryDelayMsMax');
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

  const stateDir = resolve(baseDir, raw.stateDir);
  const resolved = replicas.map((r) => resolveReplicaPaths(r, baseDir));
  checkSeparate(resolved, raw.spool, stateDir);
  const serverIds = new Map<number, number>();
  for (const [index, r] of resolved.entries()) {
    // The primary keeps one dump per replication id: two replicas on one id push each other off.
    const id = r.serverId ?? serverId + index;
    const other = serverIds.get(id);
    if (other !== undefined) throw new ConfigError(`replicas[${index}].serverId`, `dump id ${id} is also replica ${JSON.stringify(resolved[other]?.name)}'s (ids default to primary.serverId + the replica's index)`);
    serverIds.set(id, index);
  }

  return Object.freeze({
    primary: Object.freeze(primary),
    stateDir,
    replicas: Object.freeze(resolved),
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

/** The path with every symlink of its longest existing prefix resolved (so two spellings of one folder compare equal). */
function realPathOf(path: string): string {
  const missing: string[] = [];
  let at = path;
  for (;;) {
    try {
      return join(realpathSync(at), ...missing.reverse());
    } catch {
      const parent = dirname(at);
      if (parent === at) return path;
      missing.push(basename(at));
      at = parent;
    }
  }
}

/** Whether one of the two folders is the other or inside it. */
function overlaps(a: string, b: string): boolean {
  const inside = (x: string, y: string): boolean => x === y || x.startsWith(y.endsWith(sep) ? y : y + sep);
  return inside(a, b) || inside(b, a);
}

/**
 * Each file replica's archive, the state folder and each spool source must be folders of their
 * own: two replicas on one archive would both append to its binlog files (one process holds its
 * lock), and a spool source holding an archive would ship the archive into itself. Two remote
 * replicas on one receiver would replace each other's session without end. Two spool sources
 * may nest only when the outer one's excludes leave the inner out: else the same files are
 * archived twice, and restored twice at promotion, each source deleting what the other wrote.
 */
function checkSeparate(replicas: readonly ReplicaDefinition[], spool: readonly SpoolSource[], stateDir: string): void {
  const folders: Array<{ field: string; what: string; path: string }> = [{ field: 'stateDir', what: 'the state folder', path: realPathOf(stateDir) }];
  const addresses = new Map<string, string>();
  for (const [index, r] of replicas.entries()) {
    if (r.type === 'file') {
      const path = realPathOf(r.path);
      const field = `replicas[${index}].path`;
      for (const other of folders) {
        if (overlaps(path, other.path)) throw new ConfigError(field, `${r.path} is, holds or lies inside ${other.what} (${other.path}): each archive needs a folder of its own`);
      }
      folders.push({ field, what: `replica ${JSON.stringify(r.name)}'s archive`, path });
    } else {
      const other = addresses.get(r.address);
      if (other !== undefined) throw new ConfigError(`replicas[${index}].address`, `${r.address} is also replica ${JSON.stringify(other)}'s receiver: one receiver takes one agent session at a time`);
      addresses.set(r.address, r.name);
    }
  }
  const sources: Array<{ name: string; path: string; excluded: (rel: string) => boolean }> = [];
  /** Whether `inner`, a folder inside `outer`, is left out by the excludes of the source at `outer`. */
  const leftOut = (outer: string, excluded: (rel: string) => boolean, inner: string): boolean => {
    // The folder or one of its parents inside the source matches an exclude glob: not shipped.
    const rel = relative(outer, inner).split(sep);
    return rel[0] !== '..' && rel[0] !== '' && rel.some((_, i) => excluded(rel.slice(0, i + 1).join('/')));
  };
  for (const [index, source] of spool.entries()) {
    const path = realPathOf(source.path);
    const excluded = excludeMatcher(source.exclude);
    for (const other of folders) {
      if (!overlaps(path, other.path) || leftOut(path, excluded, other.path)) continue;
      throw new ConfigError(`spool[${index}].path`, `${source.path} is, holds or lies inside ${other.what} (${other.path}): the spool would ship the archive or agent state into itself (exclude it, or use separate folders)`);
    }
    for (const other of sources) {
      if (!overlaps(path, other.path) || leftOut(path, excluded, other.path) || leftOut(other.path, other.excluded, path)) continue;
      throw new ConfigError(`spool[${index}].path`, `${source.path} is, holds or lies inside spool source ${JSON.stringify(other.name)} (${other.path}): its files would be archived and restored twice (exclude the inner folder from the outer source, or use separate folders)`);
    }
    sources.push({ name: source.name, path, excluded });
  }
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
