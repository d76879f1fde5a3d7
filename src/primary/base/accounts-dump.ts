import type { Connection, RowDataPacket } from 'mysql2/promise';
import { errorMessage } from '../../core/errors.js';
import type { Logger } from '../../platform/logger.js';

/**
 * Accounts the server makes for itself, never the application's: left to the standby's own.
 * (`mariadb.sys` owns the system views; `PUBLIC` is the role every account has.)
 */
const SERVER_ACCOUNTS = new Set(["'mariadb.sys'@'localhost'", "'PUBLIC'@''"]);

/**
 * The PROXY grant mariadb-install-db gives every root (and, with unix_socket, mysql) account
 * (SHOW GRANTS quotes it with backticks in 10.11, with single quotes in other versions):
 * the standby's own install gave its accounts the same. Restored by a promote user that is not
 * root it failed at every promotion (only an account holding PROXY on ''@'%' WITH GRANT OPTION
 * may give it), so BASE_ACCOUNTS_PARTLY warned always, and operators learn to skip a warning
 * that can also mean an application's account came back without its privileges.
 */
const INSTALL_PROXY_GRANT = /^GRANT PROXY ON (?:``@`%`|''@'%') TO ([`'])(?:root|mysql)\1@([`'])[^`']*\2 WITH GRANT OPTION$/;

/** Whether a SHOW GRANTS line is mariadb-install-db's PROXY grant (INSTALL_PROXY_GRANT). */
export function isInstallProxyGrant(statement: string): boolean {
  return INSTALL_PROXY_GRANT.test(statement);
}

/** ER_PASSWORD_NO_MATCH: SHOW CREATE USER of an account the server's privilege tables hold but it does not use. */
const ER_PASSWORD_NO_MATCH = 1133;

/**
 * Whether a server with skip_name_resolve on ignores accounts of this host: it matches clients
 * by address only, so a host that is a name (not localhost, an IPv4 or IPv6 address or a
 * pattern) is dropped when the privileges load ("entry ignored in --skip-name-resolve mode").
 */
export function hostIgnoredWithoutNameResolve(host: string): boolean {
  if (host === '' || host === 'localhost' || /[%_]/.test(host)) return false;
  if (/^[0-9.]+(\/[0-9.]+)?$/.test(host) || host.includes(':')) return false;
  return true;
}

/** Quotes an account name part as SHOW CREATE USER and SHOW GRANTS take it. */
function part(text: string): string {
  return `'${text.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

/**
 * The primary's accounts and roles with their grants, as SQL for the restore: `CREATE ROLE IF NOT
 * EXISTS` and `CREATE USER IF NOT EXISTS` (an account the standby already has keeps its own
 * password, so the promote user's login goes on working), then every `GRANT`, then the default
 * roles. Read under the global read lock, so the accounts are those of the base's coordinates: a
 * replayed `GRANT` or `ALTER USER` for an account created before them finds it. An account the
 * server cannot describe (SHOW CREATE USER fails, as for a host-named root with
 * skip_name_resolve) is left out with a log line, never the reason a base fails.
 */
export async function dumpAccounts(conn: Connection, log: Logger): Promise<string> {
  let rows: RowDataPacket[];
  try {
    [rows] = await conn.query<RowDataPacket[]>("SELECT User AS u, Host AS h, is_role AS r FROM mysql.user ORDER BY is_role DESC, User, Host");
  } catch (err) {
    log.warn({ code: 'BASE_ACCOUNTS', err: errorMessage(err) }, 'cannot list the primary\'s accounts; the base holds none (create them on the standby)');
    return '';
  }
  const skipNameResolve = await conn
    .query<RowDataPacket[]>('SELECT @@skip_name_resolve AS s')
    .then(([r]) => String(r[0]?.['s'] ?? '0') === '1', () => false);
  const creates: string[] = [];
  const grants: string[] = [];
  const defaults: string[] = [];
  for (const row of rows) {
    const user = String(row['u']);
    const host = String(row['h']);
    const role = String(row['r']).toUpperCase() === 'Y';
    const account = `${part(user)}@${part(host)}`;
    if (SERVER_ACCOUNTS.has(account)) continue;
    try {
      if (role) {
        creates.push(`CREATE ROLE IF NOT EXISTS ${part(user)};`);
      } else {
        const [created] = await conn.query<RowDataPacket[]>(`SHOW CREATE USER ${account}`);
        const text = String(Object.values(created[0] ?? {})[0] ?? '');
        if (!text.startsWith('CREATE USER ')) throw new Error(`unexpected SHOW CREATE USER output: ${text.slice(0, 80)}`);
        creates.push(`CREATE USER IF NOT EXISTS ${text.slice('CREATE USER '.length)};`);
      }
      const [granted] = await conn.query<RowDataPacket[]>(`SHOW GRANTS FOR ${role ? part(user) : account}`);
      for (const g of granted) {
        const statement = String(Object.values(g)[0] ?? '');
        // SET DEFAULT ROLE names a role that must exist and be granted first.
        if (statement.startsWith('SET DEFAULT ROLE')) defaults.push(`${statement};`);
        else if (isInstallProxyGrant(statement)) continue;
        else if (statement !== '') grants.push(`${withoutAuthentication(statement)};`);
      }
    } catch (err) {
      if (!role && skipNameResolve && (err as { errno?: number }).errno === ER_PASSWORD_NO_MATCH && hostIgnoredWithoutNameResolve(host)) {
        // Dead on the primary (a host-named root that mariadb-install-db made, say): nothing
        // anyone could log in with is lost, so no warning at every base.
        log.info({ code: 'BASE_ACCOUNT_IGNORED', account: `${user}@${host}` }, `account ${user}@${host} left out of the base: the primary ignores it (skip_name_resolve is on, and its host is a name)`);
      } else {
        log.warn({ code: 'BASE_ACCOUNT_SKIPPED', account: `${user}@${host}`, err: errorMessage(err) }, `account ${user}@${host} left out of the base: the primary could not describe it`);
      }
    }
  }
  return ['-- hotspare base backup: the primary\'s accounts and grants', ...creates, ...grants, ...defaults, ''].join('\n');
}

/**
 * A GRANT without its IDENTIFIED clause (SHOW GRANTS prints the account's password hash or
 * plugin there): the CREATE USER IF NOT EXISTS before it gives a new account its login, and an
 * account the standby already has (its root, the promote user) must keep its own, or the
 * restore's next connection would fail to log in.
 */
export function withoutAuthentication(grant: string): string {
  return grant.replace(/ IDENTIFIED (?:BY PASSWORD '[^']*'|VIA .*?)(?= WITH |$)/, '');
}
