/**
 * Assertions catch programmer errors: a broken invariant means the code is wrong, so the
 * process must not go on writing an archive on top of it. Operating errors are HotspareErrors.
 */
export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) {
    throw new Error(`assertion failed: ${message}`);
  }
}
