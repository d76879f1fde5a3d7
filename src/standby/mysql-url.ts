import { ConfigError } from '../core/errors.js';
import type { ClientCredentials } from '../platform/client-defaults-file.js';

/**
 * Parses MYSQL_URL: `mysql://USER[:PASSWORD]@HOST:PORT` or `mysql://USER@localhost?socket=/path`.
 * The result carries the password for the connections only; `describe` never shows it, nor
 * does `redacted` (the URL as given without its password, for the post-promotion hooks).
 */
export function parseMysqlUrl(text: string): ClientCredentials & { describe: string; redacted: string } {
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
  const withoutPassword = new URL(url.href);
  withoutPassword.password = '';
  const redacted = withoutPassword.href;
  if (socketPath !== undefined) return { user, password, socketPath, describe: `${user}@${url.hostname}?socket=${socketPath}`, redacted };
  const port = url.port === '' ? 3306 : Number(url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return { user, password, host, port, describe: `${user}@${host}:${port}`, redacted };
}
