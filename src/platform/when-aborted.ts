/**
 * Runs `onAbort` once when `signal` aborts (at once if it already has); returns what stops
 * listening. A base backup uses it to end its primary session and tools at once, and a staged
 * base's upload to stop between pieces, so a stopping agent does not wait for either.
 */
export function whenAborted(signal: AbortSignal | undefined, onAbort: () => void): () => void {
  if (signal === undefined) return () => undefined;
  if (signal.aborted) {
    onAbort();
    return () => undefined;
  }
  signal.addEventListener('abort', onAbort, { once: true });
  return () => signal.removeEventListener('abort', onAbort);
}
