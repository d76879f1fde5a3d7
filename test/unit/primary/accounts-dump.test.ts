import { describe, expect, it } from 'vitest';
import { withoutAuthentication } from '../../../src/primary/base/accounts-dump.js';

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
