import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The package's command, as the benchmarks run it. */
export const HOTSPARE_BIN = fileURLToPath(new URL('../../../bin/hotspare.js', import.meta.url));

/**
 * The node flags of the `hotspare` command's shebang (`#!/usr/bin/env -S node FLAGS`), so that a
 * benchmark spawning `process.execPath` runs the command as an operator's `hotspare ...` does.
 */
export function hotspareNodeFlags(): string[] {
  const shebang = readFileSync(HOTSPARE_BIN, 'utf8').split('\n', 1)[0] ?? '';
  const words = shebang.replace(/^#!/, '').trim().split(/\s+/);
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  return node < 0 ? [] : words.slice(node + 1);
}
