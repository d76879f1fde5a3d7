/** Set to package.json's version by scripts/bundle.ts (an esbuild define); absent when the compiled sources run unbundled. */
declare const HOTSPARE_VERSION: string | undefined;

/** hotspare's own version, for `hotspare version` and the first log line of a long-running command. */
export function hotspareVersion(): string {
  // typeof: an undeclared global reads as 'undefined' here instead of throwing.
  return typeof HOTSPARE_VERSION === 'string' ? HOTSPARE_VERSION : 'unbundled';
}
