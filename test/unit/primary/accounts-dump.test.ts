import { describe, expect, it } from 'vitest';
import { isInstallProxyGrant, withoutAuthentication } from '../../../src/primary/base/accounts-dump.js';

// Goal: a restored GRANT never changes how an account the standby already has logs in.
describe('withoutAuthentication', () => {
  it('drops the IDENTIFIED clause SHOW GRANTS prints, and keeps everything else', () => {
    expect(withoutAuthentication("GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'")).toBe('GRANT USAGE ON *.* TO `app`@`%`');
    expect(withoutAuthentication("GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket WITH GRANT OPTION")).toBe(
      'GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` WITH GRANT OPTION',
    );
    expect(withoutAuthentication('GRANT SELECT ON `app`.* TO `reader`@`%`')).toBe('GRANT SELECT ON `app`.* TO `reader`@`%`');
    expect(withoutAuthentication("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION")).toBe("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION");
  });
});

// Goal: mariadb-install-db's PROXY grants, which the standby's own install gave and only root may
// give again, stay out of the base, in either quoting SHOW GRANTS uses; no other PROXY grant does.
describe('isInstallProxyGrant', () => {
  it("knows the install's PROXY grant to root or mysql, quoted with backticks (10.11) or single quotes", () => {
    expect(isInstallProxyGrant('GRANT PROXY ON ``@`%` TO `root`@`localhost` WITH GRANT OPTION')).toBe(true);
    expect(isInstallProxyGrant('GRANT PROXY ON ``@`%` TO `root`@`::1` WITH GRANT OPTION')).toBe(true);
    expect(isInstallProxyGrant("GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION")).toBe(true);
    expect(isInstallProxyGrant("GRANT PROXY ON ''@'%' TO 'mysql'@'localhost' WITH GRANT OPTION")).toBe(true);
    // An operator's own proxy setup stays: another grantee, another proxied user, no grant option.
    expect(isInstallProxyGrant('GRANT PROXY ON ``@`%` TO `pam_users`@`%` WITH GRANT OPTION')).toBe(false);
    expect(isInstallProxyGrant("GRANT PROXY ON 'dba'@'%' TO 'root'@'localhost' WITH GRANT OPTION")).toBe(false);
    expect(isInstallProxyGrant('GRANT PROXY ON ``@`%` TO `root`@`localhost`')).toBe(false);
  });
});
