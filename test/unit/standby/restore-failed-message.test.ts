import { describe, expect, it } from 'vitest';
import { restoreFailedHint, shortened } from '../../../src/standby/mariadb-client.js';

/**
 * Goal: a RESTORE_FAILED says what the server said in a line an operator can read, however long
 * the statement the client echoed, and its hint follows the server's error.
 */
describe('RESTORE_FAILED message and hint', () => {
  it('puts the ERROR lines first and cuts a long echo short, saying how long it was', () => {
    const statement = `INSERT INTO feeds.feed_1 VALUES ${'(1,0.5),'.repeat(9_000)}(2,0.75)`;
    const said = `--------------\n${statement}\n--------------\n\nERROR 1062 (23000) at line 12: Duplicate entry '1' for key 'PRIMARY'`;
    const short = shortened(said);
    expect(short.length).toBeLessThan(2_100);
    expect(short.startsWith("ERROR 1062 (23000) at line 12: Duplicate entry '1' for key 'PRIMARY'")).toBe(true);
    expect(short).toMatch(new RegExp(`\\.\\.\\. \\(${said.length} characters in all\\)$`));
    // Short output stays as it is.
    expect(shortened('ERROR 1044 (42000) at line 3: Access denied')).toBe('ERROR 1044 (42000) at line 3: Access denied');
  });

  it('names the cure for a missing privilege and for an account that exists, and the general one otherwise', () => {
    expect(restoreFailedHint("ERROR 1044 (42000) at line 3: Access denied for user 'promote'@'localhost' to database 'feeds'")).toMatch(/WITH GRANT OPTION/);
    expect(restoreFailedHint("ERROR 1396 (HY000) at line 9: Operation CREATE USER failed for 'late'@'%'")).toMatch(/DROP USER it on the standby/);
    expect(restoreFailedHint('ERROR 1062 (23000) at line 12: Duplicate entry')).toBe('the target is partly restored; fix the cause and then run promote again with --replace');
  });
});
