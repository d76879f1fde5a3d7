/**
 * The error every layer returns for an operating failure: a stable `code` that scripts can
 * match, a sentence of what happened, and a `hint` that tells the operator what to do.
 * Programmer errors are assertions (see assert.ts), never HotspareErrors.
 */
export class HotspareError extends Error {
  readonly code: string;
  readonly hint: string;

  constructor(code: string, message: string, options: { hint: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HotspareError';
    this.code = code;
    this.hint = options.hint;
  }
}

/** A configuration or usage error: exit code 2, and the message names the field. */
export class ConfigError extends Error {
  readonly field: string;

  constructor(field: string, message: string) {
    super(field === '' ? message : `${field}: ${message}`);
    this.name = 'ConfigError';
    this.field = field;
  }
}

export function isHotspareError(err: unknown): err is HotspareError {
  return err instanceof HotspareError;
}

/** The message of any thrown value, for logs and wrapping. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * An error's message followed by each cause's that it does not already hold. pino's own err
 * serializer appends every cause's message, and an error that wraps another usually quotes it
 * already (`cannot reach the receiver at X: connect ECONNREFUSED`), so log lines said the same
 * thing twice ("...ended: nothing heard from X for 15389 ms: nothing heard from X for 15389 ms").
 */
export function messageWithNewCauses(err: Error): string {
  let message = err.message;
  const seen = new Set<unknown>([err]);
  let cause: unknown = err.cause;
  while (cause instanceof Error && !seen.has(cause)) {
    seen.add(cause);
    if (cause.message !== '' && !message.includes(cause.message)) message += `: ${cause.message}`;
    cause = cause.cause;
  }
  return message;
}
