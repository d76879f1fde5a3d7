import { Worker } from 'node:worker_threads';
import { alignedMemory } from '../platform/aligned-memory.js';
import { HotspareError, errorMessage } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';
import type { BlockHashName } from './block-hash.js';
import type { Found, ScanResult } from './tree-scanner.js';

/** What the reader thread is started with. */
export interface ReaderConfig {
  blockBytes: number;
  /** How the thread names the blocks it reads (the source's, from its source.json). */
  blockHash: BlockHashName;
  /** Bytes read from a file at once; also the size of each buffer. */
  readBytes: number;
  /** Buffers the reader has (with it or with the main thread): its memory bound. */
  buffers: number;
  attempts: number;
  /** A message goes back after this many files even when its buffer is not full. */
  endsPerMessage: number;
}

export interface ReadJob {
  kind: 'read';
  id: number;
  abs: string;
  /** The scan's lstat, the "before" of the first attempt. */
  scanned: Found | undefined;
  /** Stop after open+fstat and wait for `go` (the test seam). */
  pause: boolean;
  /** The source names the file append-only (`appendOnly`): grown while read, it is taken at the size its read began with. */
  appendOnly: boolean;
}

/** A scan of some of the source's paths (`scanRootsSync`). */
export interface ScanJob {
  kind: 'scan';
  id: number;
  root: string;
  roots: readonly string[];
  shallow: readonly string[];
  exclude: readonly string[];
}

export type ReadOutcome =
  /**
   * `changedWhileRead`: taken on a second read that agreed (see the worker's readFile); racy,
   * however old its times look by then. `grewTo`: an append-only file that grew to this size
   * while read; `found.size` bytes of it were read.
   */
  | { kind: 'read'; found: Found; rereads: number; changedWhileRead?: true; grewTo?: number }
  | { kind: 'gone'; rereads: number }
  | { kind: 'not-a-file'; found: Found }
  | { kind: 'unstable' }
  | { kind: 'unreadable'; code: string };

export type ReaderEvent =
  | { id: number; t: 'open' }
  /** `length` bytes of the file at `at` (of a file of `size` bytes) are at `off` in the message's buffer, with one hash per block. */
  | { id: number; t: 'data'; size: number; at: number; off: number; length: number; hashes: string[] }
  /** The attempt so far did not read one version of the file: forget its data events. */
  | { id: number; t: 'retry' }
  | { id: number; t: 'end'; result: ReadOutcome }
  | ({ id: number; t: 'scanned' } & ScanResult);

/** Whether a reader started with `a` reads as one started with `b` would (a ReaderPool lends it only then). */
export function sameReaderConfig(a: ReaderConfig, b: ReaderConfig): boolean {
  const keys = Object.keys(a) as Array<keyof ReaderConfig>;
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** What the thread is started with: the config and its buffers, shared memory both threads see. */
export interface ReaderData extends ReaderConfig {
  /** The buffers, one after the other. */
  memory: SharedArrayBuffer;
  /** Bytes of each buffer (a whole number of blocks). */
  chunkBytes: number;
}

/** The reader's buffers in its memory, by index. */
export function poolViews(memory: SharedArrayBuffer, buffers: number, chunkBytes: number): Buffer[] {
  return Array.from({ length: buffers }, (_, i) => Buffer.from(memory, i * chunkBytes, chunkBytes));
}

export type ToReader = { t: 'jobs'; jobs: Array<ReadJob | ScanJob> } | { t: 'go'; id: number } | { t: 'buffer'; buf: number };
export interface FromReader {
  /** The pool buffer (index) the data events point into; the main thread gives it back with `buffer`. */
  buf: number | undefined;
  events: ReaderEvent[];
}

/** What the caller does with one file's bytes as they arrive. */
export interface ReadHandlers {
  /**
   * A piece of the file. `data` stays valid until the returned promise resolves, or, when it
   * resolves with a `hold` (writes still reading from `data`), until that one settles.
   */
  data(size: number, at: number, data: Buffer, hashes: readonly string[]): Promise<{ hold: Promise<unknown> } | undefined>;
  /** Everything `data` was given for this file so far belongs to no version of it. */
  retry(): void;
  /** Runs once the file is open and its size known, before any byte is read (test seam). */
  beforeRead?: (() => Promise<void> | void) | undefined;
}

// Under vitest this module runs from src/ as TypeScript; the thread then runs the built copy
// (the integration tests build first, as they run bin/hotspare.js).
const WORKER_URL = import.meta.url.endsWith('.ts') ? new URL('../../dist/src/spool/file-reader-worker.js', import.meta.url) : new URL('./file-reader-worker.js', import.meta.url);

interface Pending {
  /** Undefined for a scan. */
  handlers: ReadHandlers | undefined;
  resolve: (outcome: ReadOutcome | ScanResult) => void;
  reject: (err: unknown) => void;
  /** The first failure of a handler: the file's remaining events are skipped and read() rejects. */
  failed: { err: unknown } | undefined;
}

/**
 * Scans a spool source and reads its files on a thread of its own (`file-reader-worker.ts`),
 * where each lstat, readdir, open, read, fstat and close is one blocking system call rather
 * than a round trip through the libuv pool, and the blocks are hashed off the event loop (a
 * tree of small files was bound by those round trips). A blocking call there never holds up
 * this thread's event loop. Jobs run one after the other in the order asked; file bytes come
 * back in the reader's `buffers` buffers of `readBytes` (shared memory, never copied between
 * the threads), each given back once the handlers are done with it. The thread starts at
 * warm() or the first job and ends after `idleMs` without one (and at close), so an idle source
 * holds no thread and no buffer.
 */
export class FileReader {
  #worker: Worker | undefined;
  /** Views of the current thread's pool buffers. */
  #views: Buffer[] = [];
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  /** Jobs asked for in this turn of the event loop, sent together. */
  #outbox: Array<ReadJob | ScanJob> = [];
  /** Messages are handled one at a time, in the order they came. */
  #handling: Promise<void> = Promise.resolve();
  #idleTimer: NodeJS.Timeout | undefined;

  /** `log`: whose reader it is now (a ReaderPool hands a reader on to the next syncer of its config). */
  constructor(
    readonly config: ReaderConfig,
    readonly idleMs: number,
    public log: Logger,
  ) {}

  /** A scan or read is under way or asked for. */
  get busy(): boolean {
    return this.#pending.size > 0;
  }

  /** Lists the source's paths under `roots` (and `shallow` alone) with lstat, as `scanRootsSync` does. */
  scan(root: string, roots: readonly string[], exclude: readonly string[], shallow: readonly string[]): Promise<ScanResult> {
    return this.#submit(undefined, (id) => ({ kind: 'scan', id, root, roots, shallow, exclude })) as Promise<ScanResult>;
  }

  /** Reads one file; resolves with what was read, rejects with the first failure of a handler. `appendOnly`: see ReadJob. */
  read(abs: string, scanned: Found | undefined, handlers: ReadHandlers, appendOnly = false): Promise<ReadOutcome> {
    return this.#submit(handlers, (id) => ({ kind: 'read', id, abs, scanned, pause: handlers.beforeRead !== undefined, appendOnly })) as Promise<ReadOutcome>;
  }

  #submit(handlers: ReadHandlers | undefined, job: (id: number) => ReadJob | ScanJob): Promise<ReadOutcome | ScanResult> {
    const worker = this.#start();
    clearTimeout(this.#idleTimer);
    // Work under way keeps the process alive; an idle reader does not.
    if (this.#pending.size === 0) worker.ref();
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { handlers, resolve, reject, failed: undefined });
      if (this.#outbox.length === 0) {
        // Everything asked for in this turn of the event loop goes in one message.
        setImmediate(() => {
          // A thread that ended meanwhile took its jobs with it (rejected); the outbox now
          // belongs to the next thread, whose own turn sends it.
          if (this.#worker !== worker) return;
          const jobs = this.#outbox;
          this.#outbox = [];
          if (jobs.length > 0) worker.postMessage({ t: 'jobs', jobs } satisfies ToReader);
        });
      }
      this.#outbox.push(job(id));
    });
  }

  /** Starts the thread ahead of the first job (it takes a few tens of milliseconds to load); idle, it ends as usual. */
  warm(): void {
    const worker = this.#start();
    if (this.#pending.size === 0) this.#idleSoon(worker);
  }

  async close(): Promise<void> {
    clearTimeout(this.#idleTimer);
    const worker = this.#worker;
    this.#stopWorker(new HotspareError('SPOOL_STOPPED', 'the spool syncer stopped', { hint: 'restart the agent' }));
    await worker?.terminate();
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    // Shared buffers rather than moved ones: nothing is allocated, moved or collected per piece.
    // Page-aligned, and each a whole number of blocks, so a run of blocks in one starts where
    // an O_DIRECT write can take it from without a copy (see DirectWriter).
    const B = this.config.blockBytes;
    const chunkBytes = Math.max(B, Math.floor(this.config.readBytes / B) * B);
    const memory = alignedMemory(this.config.buffers * chunkBytes, true) as SharedArrayBuffer;
    const worker = new Worker(WORKER_URL, { workerData: { ...this.config, memory, chunkBytes } satisfies ReaderData });
    this.#views = poolViews(memory, this.config.buffers, chunkBytes);
    worker.on('message', (m: FromReader) => {
      // A failure here would leave every later message unhandled and their reads waiting
      // forever: it fails this thread's work instead (the pass is retried with a new reader).
      this.#handling = this.#handling
        .then(() => this.#handle(worker, m))
        .catch((err: unknown) => this.#failed(worker, err));
    });
    worker.on('error', (err) => this.#failed(worker, err));
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return;
      this.#stopWorker(new HotspareError('SPOOL_READER', `the spool file reader exited (code ${code})`, { hint: 'the pass is retried with a new reader' }));
    });
    this.#worker = worker;
    return worker;
  }

  /** The thread (or the handling of its messages) failed: its work fails with SPOOL_READER. */
  #failed(worker: Worker, err: unknown): void {
    if (this.#worker !== worker) return;
    this.log.error({ code: 'SPOOL_READER', err }, `the spool file reader failed: ${errorMessage(err)}`);
    this.#stopWorker(new HotspareError('SPOOL_READER', `the spool file reader failed: ${errorMessage(err)}`, { hint: 'the pass is retried with a new reader', cause: err }));
  }

  #stopWorker(err: unknown): void {
    const worker = this.#worker;
    this.#worker = undefined;
    this.#views = [];
    this.#outbox = [];
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    if (worker !== undefined) void worker.terminate();
  }

  async #handle(worker: Worker, m: FromReader): Promise<void> {
    const holds: Array<Promise<unknown>> = [];
    for (const ev of m.events) {
      const p = this.#pending.get(ev.id);
      if (p === undefined) continue;
      switch (ev.t) {
        case 'open':
          // Run beside the queue: the reader waits for this file's go, other messages need not.
          void Promise.resolve()
            .then(() => p.handlers?.beforeRead?.())
            .catch((err: unknown) => {
              p.failed ??= { err };
            })
            .finally(() => {
              if (this.#worker === worker) worker.postMessage({ t: 'go', id: ev.id } satisfies ToReader);
            });
          break;
        case 'data':
          if (p.failed !== undefined || m.buf === undefined) break;
          try {
            const held = await p.handlers?.data(ev.size, ev.at, (this.#views[m.buf] as Buffer).subarray(ev.off, ev.off + ev.length), ev.hashes);
            if (held !== undefined) holds.push(held.hold);
          } catch (err) {
            p.failed = { err };
          }
          break;
        case 'retry':
          if (p.failed === undefined) p.handlers?.retry();
          break;
        case 'end':
          this.#pending.delete(ev.id);
          if (p.failed !== undefined) p.reject(p.failed.err);
          else p.resolve(ev.result);
          break;
        case 'scanned':
          this.#pending.delete(ev.id);
          p.resolve({ found: ev.found, unreadable: ev.unreadable, badNames: ev.badNames });
          break;
      }
    }
    // The buffer goes back once nothing reads from it any more; the next messages are handled
    // meanwhile, so writes from several buffers are under way at once (as many as there are buffers).
    const buf = m.buf;
    if (buf !== undefined) {
      const giveBack = (): void => {
        if (this.#worker === worker) worker.postMessage({ t: 'buffer', buf } satisfies ToReader);
      };
      if (holds.length === 0) giveBack();
      else void Promise.allSettled(holds).then(giveBack);
    }
    if (this.#pending.size === 0 && this.#worker === worker) this.#idleSoon(worker);
  }

  /** Nothing pending: the thread no longer keeps the process alive, and ends after idleMs. */
  #idleSoon(worker: Worker): void {
    worker.unref();
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => {
      if (this.#pending.size === 0 && this.#worker === worker) this.#stopWorker(undefined);
    }, this.idleMs);
    this.#idleTimer.unref();
  }
}
