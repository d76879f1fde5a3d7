#!/usr/bin/env node
// The package's command. The TypeScript sources are compiled to dist/ by `npm ci`
// (the `prepare` script), so this file only loads the compiled entry point.
import '../dist/src/cmd/main.js';
