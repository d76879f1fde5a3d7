/**
 * Polls `probe` until it returns something other than false or undefined, and returns that;
 * fails with `what` (and the probe's last error, if it threw) after `timeoutMs`.
 */
export async function waitFor<T>(what: string, probe: () => T | false | undefined | Promise<T | false | undefined>, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError === undefined ? '' : `: ${describe(lastError)}`}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

function describe(err: unknown): string {
  const cause = err instanceof Error && err.cause !== undefined ? ` (cause: ${String(err.cause)})` : '';
  return `${String(err)}${cause}`;
}

/** Waits for the next whole second plus `offsetMs`, so that commit times (seconds) separate cleanly. */
export async function nextSecond(offsetMs: number): Promise<void> {
  await new Promise((r) => setTimeout(r, 1000 - (Date.now() % 1000) + offsetMs));
}
