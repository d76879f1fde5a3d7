import { readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

/**
 * Bundles the compiled command (dist/src) into dist/bundle, which bin/hotspare.js loads.
 *
 * Why: loaded file by file, the `agent` command's modules took about 0.2 s to import (rxjs
 * and mysql2 alone are some hundreds of files, each resolved, read and compiled on its own),
 * most of a process start that every `hotspare check` probe and every agent restart pays.
 * One file per command (split at the commands' dynamic imports, so `check` does not load the
 * agent) loads in about half of that.
 *
 * The worker threads are entry points of their own, beside the bundle: their modules find
 * them as `./<name>.js` next to themselves. The native CRC32 addon stays a package.
 */
// A path, not a URL's pathname: a checkout under a folder with a space or non-ASCII name.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const OUT = `${ROOT}dist/bundle`;

const { version } = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string };

rmSync(OUT, { recursive: true, force: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: {
    main: 'dist/src/cmd/main.js',
    'file-reader-worker': 'dist/src/spool/file-reader-worker.js',
    'xbstream-extract-worker': 'dist/src/standby/xbstream-extract-worker.js',
  },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Native modules, loaded at run time with createRequire (each has a fallback where it does not load).
  external: ['@node-rs/crc32', '@napi-rs/blake-hash'],
  // The CommonJS packages (mysql2, zongji) require Node's own modules; ESM output has no
  // `require`, so each output file gets one of its own.
  banner: { js: "import { createRequire as __hotspareCreateRequire } from 'node:module'; const require = __hotspareCreateRequire(import.meta.url);" },
  // src/platform/version.ts reads it.
  define: { HOTSPARE_VERSION: JSON.stringify(version) },
  sourcemap: true,
  legalComments: 'linked',
  logLevel: 'warning',
});
