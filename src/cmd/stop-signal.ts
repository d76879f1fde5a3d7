import type { Logger } from '../platform/logger.js';

/** The first SIGTERM or SIGINT, listened for from the start of a long-running command. */
export interface StopSignal {
  /** True once a signal came, also while the command was still starting. */
  readonly requested: boolean;
  /** Resolves at the signal. */
  readonly received: Promise<void>;
}

/**
 * Listens for SIGTERM and SIGINT from the moment it is called, so that a signal during start-up
 * (preflight, opening archives) ends the command cleanly with exit 0 instead of killing it:
 * the command checks `requested` between its start-up steps.
 */
export function listenForStop(log: Logger): StopSignal {
  let requested = false;
  const received = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      log.info({ signal }, 'stopping');
      requested = true;
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      resolve();
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
  return {
    get requested() {
      return requested;
    },
    received,
  };
}
