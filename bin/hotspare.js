#!/usr/bin/env -S node --max-semi-space-size=8
// The package's command. The TypeScript sources are compiled to dist/src and bundled into
// dist/bundle by `npm ci` (the `prepare` script, see scripts/bundle.ts), so this file only
// loads the bundled entry point. Stack traces name the bundle's files; run with
// NODE_OPTIONS=--enable-source-maps for the TypeScript sources (off by default: reading the
// maps at start cost about 40 ms of the 100 ms the bundle saves).
//
// CommonJS (bin/package.json), so that it runs before anything uses libuv's thread pool: an
// ES module entry is read through that pool, which fixes its size before the first line runs.
//
// The `hotspare` command runs node with V8's semi-spaces at 8 MB (16 by default): the agent's
// peak RSS during a catch-up is then 129-133 MB instead of 132-159, at the same speed (README,
// Benchmarks). Only node's command line sets it (v8.setFlagsFromString comes too late), hence
// the shebang; `node bin/hotspare.js` runs without it unless given the flag.
'use strict';

/**
 * Node does file I/O on libuv's thread pool, 4 threads by default. A write to an archive volume
 * that hangs (an NFS server gone, a failing disk) holds its thread until the volume answers: a
 * few such writes would take every thread, and then no other replica could write, sync or read
 * a spool file. A hung `file` replica was seen holding two (its binlog write in flight, its
 * last-heard record), more with spool sources; 16 leave room for a few. Not more: every thread
 * that runs I/O grows the process's memory a little, and the agent's peak is bounded
 * (ARCHITECTURE.md, memory). UV_THREADPOOL_SIZE in the environment still decides.
 */
const DEFAULT_UV_THREADPOOL_SIZE = 16;
process.env.UV_THREADPOOL_SIZE ??= String(DEFAULT_UV_THREADPOOL_SIZE);

// Flags V8 reads as it runs, for the verb alone (see v8-flags.js): before the bundle loads.
require('./v8-flags.js').applyV8Flags(process.argv[2]);

import('../dist/bundle/main.js');
