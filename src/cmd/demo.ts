import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_DEMO_SECONDS, runDemo } from '../demo/run-demo.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { UsageError } from './cli-failure.js';
import { listenForStop } from './stop-signal.js';

/**
 * `hotspare demo [--seconds N] [--keep]`: the whole product on one machine in a temporary
 * folder (see runDemo). Human output on stdout; exit 0 when the promoted standby matched.
 */
export async function demoCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { seconds: { type: 'string' }, keep: { type: 'boolean' } }, strict: true });
  const seconds = values.seconds === undefined ? DEFAULT_DEMO_SECONDS : Number(values.seconds);
  if (!(seconds > 0 && seconds <= 3600)) throw new UsageError(`--seconds: expected a number of seconds from 1 to 3600, got ${JSON.stringify(values.seconds)}`);
  const dir = mkdtempSync(join(tmpdir(), 'hotspare-demo-'));
  const out = (line: string): void => void process.stdout.write(`${line}\n`);
  out(`hotspare demo in ${dir}${values.keep === true ? ' (kept afterwards)' : ''}`);
  // Ctrl-C: the sandbox kills its servers when the process exits; take the folder with them.
  void listenForStop(logger).received.then(() => {
    if (values.keep !== true) rmSync(dir, { recursive: true, force: true });
    process.exit(130);
  });
  try {
    return (await runDemo({ dir, seconds, out, logger, clock: systemClock })) ? 0 : 1;
  } finally {
    if (values.keep !== true) rmSync(dir, { recursive: true, force: true });
  }
}
