import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { HotspareError } from '../../core/errors.js';
import { TOOL_STDERR_BYTES_MAX, spawnTool } from '../../platform/tool-process.js';
import { baseAbortedError, isAborted } from './base-session.js';

const execFileAsync = promisify(execFile);

/** What the schema dump writes: tables, views, routines and events, or only the triggers. */
export type SchemaPart = 'schema' | 'triggers';

/**
 * Runs `mariadb-dump --no-data` for the given databases and yields its output. Triggers are a
 * separate part because they must be created after the rows are loaded (or they would fire
 * on the restore's INSERTs).
 */
export async function* dumpSchema(defaultsFile: string, databases: readonly string[], part: SchemaPart, signal?: AbortSignal): AsyncGenerator<Buffer> {
  if (databases.length === 0) return;
  const common = [`--defaults-file=${defaultsFile}`, '--no-data', '--skip-lock-tables', '--skip-add-locks', '--skip-dump-date', '--no-tablespaces', '--default-character-set=utf8mb4'];
  const partArgs = part === 'schema' ? ['--skip-triggers', '--routines', '--events'] : ['--no-create-info', '--no-create-db', '--triggers', '--skip-routines', '--skip-events'];
  const { child, exited, stderr } = spawnTool('mariadb-dump', [...common, ...partArgs, '--databases', ...databases], 'ignore', signal);
  for await (const chunk of child.stdout as AsyncIterable<Buffer>) yield chunk;
  const code = await exited.catch((err: unknown) => {
    if (isAborted(signal)) throw baseAbortedError(err);
    throw new HotspareError('TOOL_MISSING', `cannot run mariadb-dump: ${String(err)}`, { hint: 'install the MariaDB client tools (mariadb-client)' });
  });
  if (isAborted(signal)) throw baseAbortedError();
  if (code !== 0) {
    throw new HotspareError('SCHEMA_DUMP', `mariadb-dump (${part}) exited with ${code}: ${stderr().trim().slice(0, TOOL_STDERR_BYTES_MAX)}`, {
      hint: 'the base backup was not kept; check the privileges (SELECT, SHOW VIEW, EVENT, TRIGGER) and the message above',
    });
  }
}

/** `mariadb-dump --version`, recorded in the base metadata. */
export async function schemaDumpVersion(): Promise<string> {
  try {
    const { stdout } = await execFileAsync('mariadb-dump', ['--version']);
    return stdout.trim();
  } catch {
    return 'unknown';
  }
}
