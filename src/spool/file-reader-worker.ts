import { closeSync, constants, fstatSync, openSync, read, readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { blockHasher } from './block-hash.js';
import { ReadHashes } from './read-hashes.js';
import type { FromReader, ReaderData, ReaderEvent, ReadJob, ReadOutcome, ScanJob, ToReader } from './file-reader.js';
import { describe, excludeMatcher, scanRootsSync, type Found } from './tree-scanner.js';

/**
 * The spool reader's thread (see FileReader): scans the source and reads the files it is given,
 * one job after the other, with plain blocking calls, hashes their blocks, and sends the bytes
 * back in buffers it owns. Blocking calls are fine here and only here: this thread has no event loop anyone else
 * waits on, and each one costs a system call instead of a round trip through the libuv pool.
 */
const port = parentPort;
if (port === null) throw new Error('file-reader-worker runs as a worker thread');
const cfg = workerData as ReaderData;
const B = cfg.blockBytes;
const blockHash = blockHasher(cfg.blockHash);
/** Bytes read from a file at once: a buffer's worth (a whole number of blocks). */
const chunkBytes = cfg.chunkBytes;
// The same views as FileReader's poolViews (not imported: this thread loads only what it runs).
const views = Array.from({ length: cfg.buffers }, (_, i) => Buffer.from(cfg.memory, i * chunkBytes, chunkBytes));

const jobs: Array<ReadJob | ScanJob> = [];
let jobArrived: (() => void) | undefined;
/** Pool buffers (indexes) not with the main thread. */
const free: number[] = views.map((_, i) => i).reverse();
let bufferArrived: (() => void) | undefined;
const goes = new Map<number, () => void>();
const released = new Set<number>();

/** The buffer being filled and the events not sent yet; both go out together. */
let cur: { index: number; view: Buffer; fill: number } | undefined;
let events: ReaderEvent[] = [];

port.on('message', (m: ToReader) => {
  switch (m.t) {
    case 'jobs':
      jobs.push(...m.jobs);
      jobArrived?.();
      return;
    case 'buffer':
      free.push(m.buf);
      bufferArrived?.();
      return;
    case 'go': {
      const go = goes.get(m.id);
      if (go === undefined) released.add(m.id);
      else go();
    }
  }
});

/** Files finished since the last message. */
let ended = 0;

function send(): void {
  ended = 0;
  if (cur === undefined && events.length === 0) return;
  port?.postMessage({ buf: cur?.index, events } satisfies FromReader);
  cur = undefined;
  events = [];
}

/** Room for `length` bytes in the current buffer, sending it when full; waits while every buffer is with the main thread. */
async function room(length: number): Promise<{ view: Buffer; fill: number }> {
  if (cur !== undefined && cur.fill + length > cur.view.length) send();
  while (cur === undefined) {
    const index = free.pop();
    if (index !== undefined) {
      cur = { index, view: views[index] as Buffer, fill: 0 };
      break;
    }
    send();
    await new Promise<void>((resolve) => (bufferArrived = resolve));
    bufferArrived = undefined;
  }
  return cur;
}

async function waitForGo(id: number): Promise<void> {
  if (released.delete(id)) return;
  await new Promise<void>((resolve) => goes.set(id, resolve));
  goes.delete(id);
}

const sameVersion = (a: Found, b: Found): boolean => a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs && a.ino === b.ino;

/** Reads up to `length` bytes at `position` into `buf` at `at`; fewer only at the end of the file. */
function readFully(fd: number, buf: Buffer, at: number, length: number, position: number): number {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, at + got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

const errCode = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? String(err);

/** The hashes of the blocks of `length` bytes at `from`, each also recorded in `read` when given (the attempt's, see readFile). */
const hashesOf = (view: Buffer, from: number, length: number, read?: ReadHashes): string[] => {
  const hashes: string[] = [];
  for (let at = 0; at < length; at += B) {
    const hash = blockHash(view.subarray(from + at, from + Math.min(length, at + B)));
    read?.add(hash);
    hashes.push(hash);
  }
  return hashes;
};

/** Read into by sameBytesAgain (a second read nobody is sent); made at its first use. */
let scratch: Buffer | undefined;

/**
 * Reads the first `size` bytes of the file again and tells whether their blocks hash as the
 * attempt's did (`first`). When two reads one after the other agree, every block held the same
 * bytes from the moment the first read took it to the moment the second did, and all those spans
 * cover the moment between the two reads: the bytes are the file's first `size` bytes as they
 * were then, one version, whatever was written elsewhere (the classic double collect). Blocking
 * reads, into a buffer of its own; it stops at the first piece with a block that differs.
 */
function sameBytesAgain(fd: number, size: number, first: ReadHashes): boolean {
  const buf = (scratch ??= Buffer.allocUnsafe(chunkBytes));
  const again = new ReadHashes();
  for (let pos = 0; pos < size; pos += chunkBytes) {
    const length = Math.min(chunkBytes, size - pos);
    if (readFully(fd, buf, 0, length, pos) < length) return false;
    for (const hash of hashesOf(buf, 0, length)) if (!again.addMatching(hash, first)) return false;
  }
  return again.sameAs(first);
}

interface PiecesRead {
  /** The file ended before its size. */
  short: boolean;
  /** The read failed with this code. */
  failed: string | undefined;
}

/** A file of one piece at most: read with one blocking call into the buffer being filled. */
async function readSmall(id: number, fd: number, size: number, read: ReadHashes): Promise<PiecesRead> {
  if (size === 0) return { short: false, failed: undefined };
  const buf = await room(size);
  let got: number;
  try {
    got = readFully(fd, buf.view, buf.fill, size, 0);
  } catch (err) {
    return { short: false, failed: errCode(err) };
  }
  if (got < size) return { short: true, failed: undefined };
  events.push({ id, t: 'data', size, at: 0, off: buf.fill, length: size, hashes: hashesOf(buf.view, buf.fill, size, read) });
  buf.fill += size;
  return { short: false, failed: undefined };
}

const readAsync = (fd: number, buf: Buffer, offset: number, length: number, position: number): Promise<number> =>
  new Promise((resolve, reject) => read(fd, buf, offset, length, position, (err, n) => (err === null ? resolve(n) : reject(err))));

async function readFullyAsync(fd: number, buf: Buffer, length: number, position: number): Promise<number> {
  let got = 0;
  while (got < length) {
    const n = await readAsync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** A free buffer (index), sending what is in hand and waiting while every one is with the main thread. */
async function takeBuffer(): Promise<number> {
  for (;;) {
    const index = free.pop();
    if (index !== undefined) return index;
    send();
    await new Promise<void>((resolve) => (bufferArrived = resolve));
    bufferArrived = undefined;
  }
}

/**
 * A file of several pieces, each in a buffer of its own: the next piece is read through the
 * libuv pool while this thread hashes the current one (hashing a large file costs more than
 * reading it, and the two then overlap), when a second buffer is free.
 */
async function readPieces(id: number, fd: number, size: number, read: ReadHashes): Promise<PiecesRead> {
  // What is in hand goes first, so that this file's pieces follow the earlier files' events.
  send();
  interface Piece {
    index: number;
    pos: number;
    length: number;
    got: Promise<number>;
  }
  const start = (index: number, pos: number): Piece => {
    const length = Math.min(chunkBytes, size - pos);
    return { index, pos, length, got: readFullyAsync(fd, views[index] as Buffer, length, pos) };
  };
  let next: Piece | undefined = start(await takeBuffer(), 0);
  try {
    while (next !== undefined) {
      const piece: Piece = next;
      next = undefined;
      let got: number;
      try {
        got = await piece.got;
      } catch (err) {
        free.push(piece.index);
        return { short: false, failed: errCode(err) };
      }
      if (got < piece.length) {
        free.push(piece.index);
        return { short: true, failed: undefined };
      }
      const after = piece.pos + piece.length;
      const spare = after < size ? free.pop() : undefined;
      if (spare !== undefined) next = start(spare, after);
      const view = views[piece.index] as Buffer;
      port?.postMessage({ buf: piece.index, events: [{ id, t: 'data', size, at: piece.pos, off: 0, length: piece.length, hashes: hashesOf(view, 0, piece.length, read) }] } satisfies FromReader);
      if (after < size && next === undefined) next = start(await takeBuffer(), after);
    }
    return { short: false, failed: undefined };
  } finally {
    // A read still under way ends before the descriptor closes, and its buffer is free again.
    if (next !== undefined) {
      await next.got.catch(() => 0);
      free.push(next.index);
    }
  }
}

/**
 * One file, with the checks FileReader documents: the size, times and inode before and after
 * the read, and the link count after; a mismatch that a second read does not clear reads it
 * again (a `retry` event first).
 */
async function readFile(job: ReadJob): Promise<ReadOutcome> {
  let rereads = 0;
  for (let attempt = 0; attempt < cfg.attempts; attempt++) {
    let fd: number;
    try {
      fd = openSync(job.abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (err) {
      const code = errCode(err);
      if (code === 'ENOENT' || code === 'ENOTDIR') return { kind: 'gone', rereads };
      if (code === 'ELOOP') return { kind: 'not-a-file', found: { kind: 'link', mode: 0, mtimeNs: '0', ctimeNs: '0', size: 0, ino: 0, dev: 0, uid: 0, gid: 0 } };
      return { kind: 'unreadable', code };
    }
    try {
      let first: Found;
      /**
       * `first` is the scan's lstat, taken a while before this open. Never for a file named
       * append-only: its grown case takes the first `size` bytes as the file at `first`, which
       * holds only if nothing but appends happened since; between a scan and the open (a long
       * pass) the file may have been truncated and written again (logrotate's copytruncate, or
       * removed and made anew on a reused inode), and those bytes of its new content were cut
       * at a size it never had. An fstat of the opened file leaves only the moment to its read.
       */
      const scanned = attempt === 0 && job.scanned?.kind === 'file' && !job.appendOnly;
      if (scanned) first = job.scanned as Found;
      else {
        first = describe(fstatSync(fd, { bigint: true }));
        if (first.kind !== 'file') return { kind: 'not-a-file', found: first };
      }
      if (job.pause) {
        events.push({ id: job.id, t: 'open' });
        send();
        await waitForGo(job.id);
      }
      const size = first.size;
      const read = new ReadHashes();
      const { short, failed } = await (size > chunkBytes ? readPieces(job.id, fd, size, read) : readSmall(job.id, fd, size, read));
      const afterStat = fstatSync(fd, { bigint: true });
      const after = describe(afterStat);
      if (after.kind !== 'file') return { kind: 'not-a-file', found: after };
      if (failed !== undefined) return { kind: 'unreadable', code: failed };
      // No link left: removed or renamed over while read. The bytes were a whole version, but
      // not one the path still names: look at the path again.
      if (short || afterStat.nlink === 0n || !sameVersion(first, after)) {
        // Written to while read, but still this file, linked, and of the same size: a second
        // read of the same bytes that agrees proves them one version (sameBytesAgain), the file
        // as it was at the stat between the two reads, times and size included. Not a file that
        // grew: its first `size` bytes are the file only for an append-only writer, and one
        // rewritten larger (O_TRUNC, then written) has a different version's bytes there; cut to
        // the old size they were never the file's content. Not when `first` is the scan's: a
        // fresh attempt reads a file changed since then whole. It is `changedWhileRead`: a write
        // just after that stat, in the same tick of coarse timestamps, and to bytes the second
        // read had passed, leaves the recorded stat as it is; the racy window must read the file
        // again, and measured when the file is shipped, after a second read of a large or slow
        // file, it would have passed.
        // A file the source names append-only (`appendOnly`) that grew is the exception: the
        // operator says its first `size` bytes are the file as it was when the read began, so
        // two reads agreeing on them take it at that size (the rest comes with the next pass),
        // on the first attempt too, whose `first` is then the opened file's. A file appended every
        // few milliseconds otherwise never ships while it is busy.
        const grew = job.appendOnly && after.size > size;
        if (!scanned && !short && afterStat.nlink > 0n && (after.size === size || grew) && sameBytesAgain(fd, size, read)) {
          return grew ? { kind: 'read', found: { ...after, size }, rereads, changedWhileRead: true, grewTo: after.size } : { kind: 'read', found: after, rereads, changedWhileRead: true };
        }
        rereads++;
        events.push({ id: job.id, t: 'retry' });
        continue;
      }
      return { kind: 'read', found: after, rereads };
    } catch (err) {
      return { kind: 'unreadable', code: errCode(err) };
    } finally {
      closeSync(fd);
    }
  }
  return { kind: 'unstable' };
}

async function main(): Promise<void> {
  for (;;) {
    let job = jobs.shift();
    if (job === undefined) {
      // Files asked for meanwhile may be waiting in the port: take them first, so that what
      // is in hand goes out once per batch rather than once per file.
      await new Promise<void>((resolve) => setImmediate(resolve));
      job = jobs.shift();
    }
    if (job === undefined) {
      // Nothing queued: what is in hand goes out now rather than waiting for a full buffer.
      send();
      await new Promise<void>((resolve) => (jobArrived = resolve));
      jobArrived = undefined;
      continue;
    }
    if (job.kind === 'scan') {
      events.push({ id: job.id, t: 'scanned', ...scanRootsSync(job.root, job.roots, excludeMatcher(job.exclude), job.shallow) });
      send();
      continue;
    }
    const result = await readFile(job);
    events.push({ id: job.id, t: 'end', result });
    // Part of the queue goes back while the rest is read, so the main thread can ship those
    // files and queue more meanwhile instead of the two threads taking turns.
    if (++ended >= cfg.endsPerMessage) send();
  }
}

void main();
