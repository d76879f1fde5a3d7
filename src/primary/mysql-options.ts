import type { ConnectionOptions } from 'mysql2';
import type { PrimaryConnection } from '../config/load.js';

/** mysql2 connection options for the primary, with the settings every hotspare connection needs. */
export function mysqlOptions(primary: PrimaryConnection): ConnectionOptions {
  return {
    ...(primary.socketPath !== undefined ? { socketPath: primary.socketPath } : { host: primary.host ?? '127.0.0.1', port: primary.port ?? 3306 }),
    user: primary.user,
    password: primary.password,
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    connectTimeout: 10_000,
  };
}

/** Where the primary is, for messages (never the password). */
export function describeEndpoint(primary: PrimaryConnection): string {
  return primary.socketPath !== undefined ? `${primary.user}@${primary.socketPath}` : `${primary.user}@${primary.host}:${primary.port}`;
}
