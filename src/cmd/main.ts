import { createLogger } from '../platform/logger.js';
import { hotspareVersion } from '../platform/version.js';
import { UsageError, reportFailure } from './cli-failure.js';

const USAGE = `hotspare: continuous binlog and spool archiving, standby promotion, lag monitoring

  hotspare agent   --config FILE                      (primary) stream binlog and spool to every replica
  hotspare receive --archive DIR --listen HOST:PORT --token-file FILE [--tls-cert F --tls-key F] [--http HOST:PORT] [--allow-plaintext]
  hotspare base    --config FILE [--replica NAME] [--method physical|logical] [--json]   (primary) take a base backup now
  hotspare promote --archive DIR --target MYSQL_URL [--until TIME | --until-gtid GTID | --until-position FILE:POS]
                   [--files-root DIR] [--dry-run] [--json] [--replace]
                   [--target-datadir DIR --target-start CMD]   (a physical base: replace the target's datadir)
                   [--extractor hotspare|mbstream]   (a physical base: who extracts its stream)
  hotspare status  --archive DIR [--json]
  hotspare verify  --archive DIR [--json]
  hotspare check   --url URL [--max-lag-seconds N] [--max-lag-bytes N]
  hotspare demo                                        throwaway primary and standby, live, on this machine
  hotspare version                                     print hotspare's version

Exit codes: 0 success, 1 operational failure, 2 usage or configuration error.
`;

type Command = (argv: string[], logger: ReturnType<typeof createLogger>) => Promise<number>;

/** Each verb loads only its own modules: the agent starts faster without promote's and the demo's. */
const commands: Record<string, () => Promise<Command>> = {
  agent: async () => (await import('./agent.js')).agentCommand,
  demo: async () => (await import('./demo.js')).demoCommand,
  check: async () => (await import('./check.js')).checkCommand,
  receive: async () => (await import('./receive.js')).receiveCommand,
  base: async () => (await import('./base.js')).baseCommand,
  promote: async () => (await import('./promote.js')).promoteCommand,
  status: async () => (await import('./status.js')).statusCommand,
  verify: async () => (await import('./verify.js')).verifyCommand,
};

async function main(argv: string[]): Promise<number> {
  const [verb, ...rest] = argv;
  if (verb === undefined || verb === 'help' || verb === '--help' || verb === '-h') {
    process.stdout.write(USAGE);
    return verb === undefined ? 2 : 0;
  }
  if (verb === 'version' || verb === '--version' || verb === '-V') {
    process.stdout.write(`hotspare ${hotspareVersion()}\n`);
    return 0;
  }
  const load = commands[verb];
  if (load === undefined) throw new UsageError(`unknown command ${JSON.stringify(verb)}`);
  // The demo talks to a person on stdout; its logs stay quiet unless asked for.
  const logger = createLogger(verb === 'demo' && process.env['HOTSPARE_LOG_LEVEL'] === undefined ? { level: 'warn' } : {}).child({ command: verb });
  const command = await load();
  return command(rest, logger);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.exitCode = reportFailure(err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS') ? new UsageError(err.message) : err);
  },
);
