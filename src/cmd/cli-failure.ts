import { ConfigError, HotspareError } from '../core/errors.js';

/** Raised for a wrong command line: printed with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/**
 * Prints a failure the way the contract says and returns the exit code: 2 for usage and
 * configuration errors, 1 for operational failures (`error CODE: ...` then `hint: ...`).
 */
export function reportFailure(err: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  if (err instanceof UsageError) {
    stderr.write(`usage error: ${err.message}\nrun \`hotspare help\` for the commands and their options\n`);
    return 2;
  }
  if (err instanceof ConfigError) {
    stderr.write(`${err.message.split('\n').map((line) => `config error: ${line}`).join('\n')}\n`);
    return 2;
  }
  if (err instanceof HotspareError) {
    stderr.write(`error ${err.code}: ${oneLine(err.message)}\nhint: ${oneLine(err.hint)}\n`);
    return 1;
  }
  const message = err instanceof Error ? err.message : String(err);
  stderr.write(`error INTERNAL: ${oneLine(message)}\nhint: this is a bug in hotspare; please report it with the log\n`);
  return 1;
}

/**
 * A message on one line: some carry a tool's own stderr (mariadb-binlog, the mariadb client),
 * whose lines would otherwise pass for the `hint:` line a wrapper script reads second.
 */
export function oneLine(text: string): string {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .join(' | ');
}
