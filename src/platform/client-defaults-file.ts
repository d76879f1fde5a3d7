import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makePrivateTempDir } from './private-temp-dir.js';

/** How the server's own client tools (mariadb, mariadb-dump, mariadb-binlog) reach a server. */
export interface ClientCredentials {
  user: string;
  password: string;
  host?: string | undefined;
  port?: number | undefined;
  socketPath?: string | undefined;
}

/**
 * A `[client]` option file in a private temporary folder (mode 0600), so that passwords reach
 * the server's tools without ever appearing on a command line (visible in `ps`) or in a log.
 * `use` runs the callback with the file's path and always removes the folder afterwards (and a
 * killed process's folder is removed at the next use: makePrivateTempDir).
 */
export async function withClientDefaultsFile<T>(credentials: ClientCredentials, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await makePrivateTempDir('hotspare-client-');
  const path = join(dir, 'client.cnf');
  try {
    const lines = ['[client]', `user=${optionValue(credentials.user)}`];
    if (credentials.password !== '') lines.push(`password=${optionValue(credentials.password)}`);
    if (credentials.socketPath !== undefined) lines.push(`socket=${optionValue(credentials.socketPath)}`, 'protocol=SOCKET');
    else lines.push(`host=${optionValue(credentials.host ?? '127.0.0.1')}`, `port=${credentials.port ?? 3306}`, 'protocol=TCP');
    await writeFile(path, `${lines.join('\n')}\n`, { mode: 0o600 });
    return await use(path);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Option-file values are quoted so that spaces, '#' and quotes survive. */
function optionValue(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
