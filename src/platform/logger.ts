import { pino, type Logger, type LoggerOptions } from 'pino';
import { messageWithNewCauses } from '../core/errors.js';

export type { Logger };

/** pino's err serializer (type, stack with causes, own fields), its message without repeats (messageWithNewCauses). */
export function serializeError(err: unknown): unknown {
  const out = pino.stdSerializers.err(err as Error) as unknown;
  if (err instanceof Error && typeof out === 'object' && out !== null) (out as { message: string }).message = messageWithNewCauses(err);
  return out;
}

/** The serializers of every hotspare logger (tests' capturing loggers included). */
export const LOG_SERIALIZERS: NonNullable<LoggerOptions['serializers']> = { err: serializeError };

/**
 * The one root logger of a process: JSON lines on stderr (stdout is for human or --json
 * output). Modules take `childLogger(logger, { component })`. Credentials are redacted wherever
 * they might be bound by mistake.
 */
export function createLogger(options: { level?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env['HOTSPARE_LOG_LEVEL'] ?? 'info',
      base: { pid: process.pid },
      serializers: LOG_SERIALIZERS,
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

/**
 * A child of `parent` that binds only what is new: pino writes a key bound twice twice (the
 * spool's lines read `"component":"replica",...,"component":"spool"`, a base upload's
 * `"replica"` twice), and log tools keep one of them. A binding the parent holds with the same
 * value is left out; a `component` under another is bound as `part` (a replica's spool, its
 * binlog source), so the line says both.
 */
export function childLogger(parent: Logger, bindings: Record<string, unknown>): Logger {
  const bound = parent.bindings();
  const fresh: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(bindings)) {
    if (bound[key] === value) continue;
    if (key === 'component' && bound['component'] !== undefined) {
      if (bound['part'] !== value) fresh['part'] = value;
    } else fresh[key] = value;
  }
  return Object.keys(fresh).length === 0 ? parent : parent.child(fresh);
}
