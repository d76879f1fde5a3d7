import { DEFAULT_EXIT_GRACE_MS } from '../config/defaults.js';
import type { Logger } from '../platform/logger.js';

/**
 * Called once a long-running command (agent, receive) has stopped: everything it owns is closed,
 * so the process ends by itself. If something still holds it (a handle a library left open), the
 * stop must end it all the same (a service manager would wait, then SIGKILL): after
 * DEFAULT_EXIT_GRACE_MS it exits, saying what held it (EXIT_HELD), for the bug report.
 */
export function exitOnceSettled(log: Pick<Logger, 'warn'>, graceMs = DEFAULT_EXIT_GRACE_MS): void {
  setTimeout(() => {
    log.warn({ code: 'EXIT_HELD', resources: process.getActiveResourcesInfo() }, `still running ${graceMs} ms after the stop completed; exiting`);
    process.exit(process.exitCode ?? 0);
  }, graceMs).unref();
}
