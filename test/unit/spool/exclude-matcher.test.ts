import { describe, expect, it } from 'vitest';
import { excludeMatcher } from '../../../src/spool/tree-scanner.js';

/**
 * Goal: excludes read as rsync (and .gitignore, much the same) reads them, the tools operators
 * write them for: a glob without a slash matches a name at any depth, one with a slash (or
 * starting with one) the whole path from the root, a trailing slash a folder; what a glob
 * matches goes with all it holds; `/` alone leaves nothing out rather than failing the source.
 */
describe('excludeMatcher', () => {
  it('matches a glob without a slash at any depth, and one with a slash from the root', () => {
    const excluded = excludeMatcher(['cache/', '/log', '*.tmp', 'spool/**', 'queue/tmp']);
    expect(['cache', 'cache/a', 'cache/sub/b', 'sub/cache', 'sub/cache/c', 'log', 'log/old', 'a.tmp', 'sub/.b.tmp', 'spool/x', 'queue/tmp', 'queue/tmp/1'].filter((p) => !excluded(p))).toEqual([]);
    expect(['sub/log', 'logs', 'keep', 'sub/spool/x', 'x/queue/tmp', 'tmp', ''].filter(excluded)).toEqual([]);
  });

  it('leaves nothing out for "/" or "//", and does not throw', () => {
    expect(['a', 'b/c'].filter(excludeMatcher(['/', '//']))).toEqual([]);
    expect(['a', 'b/c'].filter(excludeMatcher(['//', 'b/']))).toEqual(['b/c']);
  });
});
