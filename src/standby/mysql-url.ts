import { ConfigError } from '../core/errors.js';
import type { ClientCredentials } from '../platform/client-defaults-file.js';

/**
 * Parses MYSQL_URL: `mysql://USER[:PASSWORD]@HOST:PORT` or `mysql://USER@localhost?socket=/path`.
 * The result carries the password for the connections only; `describe` never shows it.
 */
export function parseMysqlUrl(text: string): ClientCredentials & { describe: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ConfigError('--target', 'expected mysql://USER[:PASSWORD]@HOST:PORT or mysql://USER@localhost?socket=/path');
  }
  if (url.protocol !== 'mysql:') throw new ConfigError('--target', `expected a mysql:// URL, got ${url.protocol}//`);
  const user = decodeURIComponent(url.username);
  if (user === '') throw new ConfigError('--target', 'the URL names no user');
  const password = decodeURIComponent(url.password);
  const socketPath = url.searchParams.get('socket') ?? undefined;
  if (socketPath !== undefined) return { user, password, socketPath, describe: `${user}@${url.hostname}?socket=${socketPath}` };
  const port = url.port === '' ? 3306 : Number(url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { user, password, host, port, describe: `${user}@${host}:${port}` };
}
