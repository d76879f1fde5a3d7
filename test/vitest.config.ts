import { defineConfig } from 'vitest/config';

// Integration tests start their own MariaDB servers and agents; they run one file at a time
// (two cores, real fsyncs) and get generous timeouts because a server takes seconds to start.
export default defineConfig({
  test: {
    root: new URL('..', import.meta.url).pathname,
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/support/fail-on-console.ts', 'test/support/reap-children.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    pool: 'forks',
    reporters: ['default'],
  },
});
