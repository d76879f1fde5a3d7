#!/usr/bin/env node
// The package's command. The TypeScript sources are compiled to dist/src and bundled into
// dist/bundle by `npm ci` (the `prepare` script, see scripts/bundle.ts), so this file only
// loads the bundled entry point. Stack traces name the bundle's files; run with
// NODE_OPTIONS=--enable-source-maps for the TypeScript sources (off by default: reading the
// maps at start cost about 40 ms of the 100 ms the bundle saves).
import '../dist/bundle/main.js';
