'use strict';
// V8 flags that one verb sets for its own process, from bin/hotspare.js before anything else
// runs. Only flags that V8 reads as it runs belong here (v8.setFlagsFromString after start);
// those it fixes at start, such as the semi-spaces' sizes, go in the shebang, for every verb.

/**
 * `receive`: no incremental marking. The receiver's heap stays small while it streams (about
 * 10 MB live), and V8 kept starting incremental marking with most of its old-generation limit
 * free: 60-70 full collections per GB received, each marking on V8's helper threads beside the
 * main thread's steps: about a third of the receiver's CPU on a 2-core machine where agent, receiver
 * and server shared the cores. Without it V8 collects the old generation only when it reaches
 * its limit, in one pause (one per receiver in the benchmark, 6-9 ms): the receiver's CPU per GB went
 * from 1.32-1.63 s to 0.93-1.11 s, the remote catch-up from 489-596 to 635-717 MB/s, and the
 * commit-to-fsync p99 at 1,000 tx/s stayed at 4-5 ms, in interleaved runs (README, Benchmarks). The agent's GC
 * showed no such pattern and its peak RSS is bounded, so it keeps V8's default. Costs: a flag
 * changed after start makes node compile some of its own built-in modules without their code
 * cache (`hotspare receive --help` 92-93 ms against 88), once per start; and every old-generation
 * collection is one pause, so a receiver that came to hold a large heap would pause longer (its
 * heap is bounded: one frame plus the pending bytes per session, ARCHITECTURE.md).
 */
const V8_FLAGS_BY_VERB = Object.freeze({
  receive: Object.freeze(['--no-incremental-marking']),
});

/** The V8 flags `verb` sets (none for most). */
function v8FlagsFor(verb) {
  return typeof verb === 'string' && Object.hasOwn(V8_FLAGS_BY_VERB, verb) ? V8_FLAGS_BY_VERB[verb] : [];
}

/** Sets `verb`'s V8 flags in this process and returns them. */
function applyV8Flags(verb) {
  const flags = v8FlagsFor(verb);
  if (flags.length > 0) require('node:v8').setFlagsFromString(flags.join(' '));
  return flags;
}

module.exports = { v8FlagsFor, applyV8Flags };
