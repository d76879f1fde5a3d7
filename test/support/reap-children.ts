import { afterAll } from 'vitest';
import { killLiveChildren } from './live-children.js';

// Runs after the test file's own afterAll hooks (after hooks run in reverse order of
// registration): whatever hotspare command is still running now was left behind by a test.
afterAll(() => {
  const killed = killLiveChildren();
  if (killed.length > 0) process.stderr.write(`reap-children: killed ${killed.length} hotspare process(es) a test left running: ${killed.join('; ').slice(0, 500)}\n`);
});
