import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dumpAccounts, hostIgnoredWithoutNameResolve } from '../../src/primary/base/accounts-dump.js';
import { MariadbServer } from '../../src/sandbox/mariadb-server.js';
import { captureLogger } from '../support/capture-logger.js';

/**
 * Goal: a base carries every account the primary uses, and says what it leaves out, loudly only
 * when something anyone could log in with is lost. A server with skip_name_resolve ignores
 * accounts whose host is a name (mariadb-install-db makes one, root@<hostname>): SHOW CREATE USER
 * fails for them, and leaving them out loses nothing. Method: a real primary (skip_name_resolve
 * on, as the sandbox runs it) with an application account and a host-named one.
 */
describe('the accounts of a logical base', () => {
  let dir: string;
  let primary: MariadbServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hotspare-accounts-'));
    primary = await MariadbServer.start({ serverId: 72, binlog: true, baseDir: join(dir, 'primary') });
  });
  afterAll(async () => {
    await primary?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('tells a host name from an address or a pattern', () => {
    for (const host of ['vm', 'gateway.example', 'db-1']) expect(hostIgnoredWithoutNameResolve(host)).toBe(true);
    for (const host of ['localhost', '%', '10.0.%', '192.168.1.7', '10.0.0.0/255.0.0.0', '::1', 'fe80::1', '']) expect(hostIgnoredWithoutNameResolve(host)).toBe(false);
  });

  it('leaves out an account the primary ignores with a note, not a warning, and keeps the others', async () => {
    const conn = await primary.connect();
    try {
      await conn.query("CREATE USER 'app'@'%' IDENTIFIED BY 'secret'");
      await conn.query("GRANT SELECT ON *.* TO 'app'@'%'");
      await conn.query("CREATE USER 'old'@'gateway.example' IDENTIFIED BY 'x'");
      // Loaded again, the host-named account is ignored (as at a server start).
      await conn.query('FLUSH PRIVILEGES');
      const { logger, lines } = captureLogger();
      const sql = await dumpAccounts(conn, logger);
      expect(sql).toContain('CREATE USER IF NOT EXISTS `app`@`%`');
      expect(sql).toContain('GRANT SELECT ON *.* TO `app`@`%`');
      expect(sql).not.toContain('gateway.example');
      expect(lines().filter((l) => (l.level as number) >= 40)).toEqual([]);
      expect(lines().filter((l) => l.code === 'BASE_ACCOUNT_IGNORED').map((l) => l.account)).toContain('old@gateway.example');
    } finally {
      await conn.end();
    }
  });
});
