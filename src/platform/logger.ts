import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one root logger of a process: JSON lines on stderr (stdout is for human or --json
 * output). Modules take `logger.child({ component })`. Credentials are redacted wherever
 * they might be bound by mistake.
 */
export function createLogger(options: { level?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['HOTSPARE_LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
      redact: {
        paths: ['password', '*.password', 'token', '*.token', 'primary.password'],
        censor: '[redacted]',
      },
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything, for library use and tests that assert on results. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
