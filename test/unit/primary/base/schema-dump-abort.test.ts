import { describe, expect, it } from 'vitest';
import { dumpSchema } from '../../../../src/primary/base/schema-dump.js';

/**
 * Goal: a schema dump whose base is abandoned (the agent stopping while mariadb-dump runs)
 * fails with BASE_ABORTED and does not end the process. Aborting kills the tool at once and
 * rejects its exit before the dump's output has been read to its end; unobserved until then,
 * that rejection was unhandled, which ends a Node process (vitest reports it as an error).
 * Method: the real mariadb-dump, spawned with a signal that has already aborted.
 */
describe('schema dump, abandoned', () => {
  it('fails with BASE_ABORTED, with no unhandled rejection', async () => {
    const dump = dumpSchema('/nonexistent/client.cnf', ['app'], 'schema', AbortSignal.abort());
    const read = (async () => {
      for await (const chunk of dump) void chunk;
    })();
    await expect(read).rejects.toMatchObject({ code: 'BASE_ABORTED' });
    // Turns for an unhandled rejection to surface, if there were one.
    await new Promise((r) => setTimeout(r, 50));
  });
});
