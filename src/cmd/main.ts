import { DEFAULT_RECEIVE_PORT } from '../config/defaults.js';
import { createLogger } from '../platform/logger.js';
import { hotspareVersion } from '../platform/version.js';
import { UsageError, reportFailure } from './cli-failure.js';

/** Each verb's usage lines: all of them for `hotspare help`, one verb's for `hotspare VERB --help`. */
const VERBS: ReadonlyArray<{ verb: string; lines: string[] }> = [
  { verb: 'agent', lines: ['hotspare agent   --config FILE                      (primary) stream binlog and spool to every replica'] },
  {
    verb: 'receive',
    lines: [
      'hotspare receive --archive DIR --token-file FILE [--listen HOST:PORT]   (standby) serve an archive to the agent',
      '                 [--tls-cert F --tls-key F] [--http HOST:PORT]   (TLS; GET /status)',
      '                 [--allow-plaintext]   (a non-loopback --listen without TLS, on purpose)',
      `                 --listen: where the agent connects, default 127.0.0.1:${DEFAULT_RECEIVE_PORT}`,
    ],
  },
  { verb: 'base', lines: ['hotspare base    --config FILE [--replica NAME] [--method physical|logical] [--json]   (primary) take a base backup now'] },
  {
    verb: 'promote',
    lines: [
      'hotspare promote --archive DIR --target MYSQL_URL [--until TIME | --until-gtid GTID | --until-position FILE:POS]',
      '                 [--files-root DIR] [--no-hooks] [--fence] [--dry-run] [--json] [--replace]',
      '                 [--target-datadir DIR --target-start CMD]   (a physical base: replace the target\'s datadir)',
      '                 [--extractor hotspare|mbstream]   (a physical base: who extracts its stream)',
      '                 TIME: ISO 8601, 2026-11-22T10:00:00Z; without a zone, this host\'s local time (TZ)',
      'hotspare promote --files-only --archive DIR [--until ... as above] [--source NAME ...] [--files-root DIR]',
      '                 [--dry-run] [--json]   the spool files alone, as of the same point (in place only with --source)',
    ],
  },
  { verb: 'status', lines: ['hotspare status  --archive DIR [--json]                what the archive covers'] },
  { verb: 'verify', lines: ['hotspare verify  --archive DIR [--json]                every checksum; exit 0 intact, 1 damaged or not verified'] },
  { verb: 'check', lines: ['hotspare check   --url URL [--max-lag-seconds N] [--max-lag-bytes N]   exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN'] },
  { verb: 'demo', lines: ['hotspare demo    [--seconds N] [--keep]              throwaway primary and standby, live, on this machine'] },
  { verb: 'version', lines: ['hotspare version                                     print hotspare\'s version'] },
];

const USAGE = `hotspare: continuous binlog and spool archiving, standby promotion, lag monitoring

${VERBS.flatMap((v) => v.lines.map((l) => `  ${l}`)).join('\n')}

Every verb takes --help. Exit codes: 0 success, 1 operational failure, 2 usage or configuration
error (check: the monitoring-plugin codes above). README.md has the options in full.
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
  // Only alone: `-h` after other arguments may be an option's value (--target-start -h), and a
  // promote that printed its usage and exited 0 would pass for one that ran.
  if (rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h')) {
    const lines = VERBS.find((v) => v.verb === verb)?.lines ?? [];
    process.stdout.write(`${lines.map((l) => `  ${l}`).join('\n')}\n\nREADME.md has the options in full.\n`);
    // check speaks the monitoring-plugin codes: anything but a check is UNKNOWN there, never OK.
    return verb === 'check' ? 3 : 0;
  }
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
