import { realpathSync } from 'node:fs';
import { basename, join, relative, sep } from 'node:path';
import { watch, type ChokidarOptions, type FSWatcher } from 'chokidar';

/** What a source's watcher tells its syncer; every path is relative to the source, '/'-separated. */
export interface SourceWatchHandlers {
  /** Whether the source's excludes leave `rel` out (nothing under it is watched). */
  excluded(rel: string): boolean;
  /** Something may have changed at `rel`: a pass looks at it. */
  changed(rel: string): void;
  /** Whether `rel` already waits for a pass (a busy file's raw events then cost no glob match). */
  waiting(rel: string): boolean;
  /** The watcher failed: events may have been lost. */
  failed(err: unknown): void;
  /** The watcher's own first scan of the tree has ended: a change made while it ran may have gone unseen. */
  ready(): void;
}

/**
 * Watches a spool source for changes (chokidar): its own events, which need a new mtime, and the
 * raw inotify 'change' events of folders' watches, which a chmod or chown raises too. Latency
 * only: the syncer's full rescans find what a watcher misses (lost or overflowed events).
 * `watchTree` is chokidar's `watch` unless a test wraps it.
 */
export function watchSource(path: string, handlers: SourceWatchHandlers, watchTree: (root: string, options: ChokidarOptions) => FSWatcher = watch): FSWatcher {
  // The folder itself when the source's path is a link to it: the watcher follows no links.
  let root = path;
  try {
    root = realpathSync(root);
  } catch {
    // Gone meanwhile: the pass that follows says so.
  }
  const toRel = (p: string): string => relative(root, p).split(sep).join('/');
  /** Outside the source (not a name that merely starts with two dots). */
  const outside = (rel: string): boolean => rel === '..' || rel.startsWith('../');
  const watcher = watchTree(root, {
    ignoreInitial: true,
    followSymlinks: false,
    persistent: true,
    ignored: (p: string) => {
      const rel = toRel(p);
      return !outside(rel) && handlers.excluded(rel);
    },
  });
  watcher.on('all', (_event, p) => {
    const rel = toRel(p);
    if (!outside(rel)) handlers.changed(rel);
  });
  // chokidar reports a change only when the mtime moved: a chmod or chown (a secret's mode
  // tightened) waited for the next rescan, a minute, and a promotion meanwhile restored the
  // file readable. The raw inotify event says something changed at that path; the pass then
  // compares it (mode and ctime included) with what the archive has.
  watcher.on('raw', (event: string, evPath: string | null, details: unknown) => {
    const watched = (details as { watchedPath?: unknown } | undefined)?.watchedPath;
    if (event !== 'change' || typeof watched !== 'string' || evPath === null || evPath === '') return;
    // Only a folder's watch, which names the entry: a file's own watch names the file itself,
    // and the same event comes from its folder's watch by name. (An entry named as its folder
    // reads like a file's own watch: it waits for the rescan, rather than its folder being walked.)
    if (basename(watched) === evPath) return;
    const rel = toRel(join(watched, evPath));
    if (outside(rel) || handlers.waiting(rel) || handlers.excluded(rel)) return;
    handlers.changed(rel);
  });
  watcher.on('error', (err) => handlers.failed(err));
  watcher.once('ready', () => handlers.ready());
  return watcher;
}
