import type { FileHandle } from 'node:fs/promises';
import { DEFAULT_PAGE_CACHE_WRITE_BYTES, DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT } from '../config/defaults.js';

/**
 * Writes `data` at `position` in writes of at most `sliceBytes` each, going on after short
 * writes. See DEFAULT_PAGE_CACHE_WRITE_BYTES for why a buffered write is never larger.
 */
export async function writeAllAt(handle: FileHandle, data: Buffer, position: number, sliceBytes = DEFAULT_PAGE_CACHE_WRITE_BYTES): Promise<void> {
  for (let done = 0; done < data.length; ) {
    const length = Math.min(sliceBytes, data.length - done);
    const { bytesWritten } = await handle.write(data, done, length, position + done);
    if (bytesWritten === 0) throw new Error(`a write of ${length} bytes at ${position + done} wrote nothing`);
    done += bytesWritten;
  }
}

/**
 * Writes `buffers` one after the other from `position`, gathered into writev calls of at most
 * `sliceBytes` each (a larger buffer is cut), going on after short writes.
 *
 * Up to `inFlight` of those writes are handed to the thread pool at once, each at its own
 * offset. One after the other, every slice waited for a turn of the event loop before the next
 * could start: while the main thread was busy with a binlog backlog, a 4 MB batch took 15-30 ms
 * to write (one slice per turn) and the dump was paused for it, where the thread pool writes it
 * in 3-5 ms. The slices may reach the file out of order; nothing counts before all are written
 * and fsynced, and recovery cuts a torn tail (a hole reads as an invalid event).
 */
export async function writevAllAt(
  handle: FileHandle,
  buffers: readonly Buffer[],
  position: number,
  sliceBytes = DEFAULT_PAGE_CACHE_WRITE_BYTES,
  inFlight = DEFAULT_PAGE_CACHE_WRITES_IN_FLIGHT,
): Promise<void> {
  const slices = gatherSlices(buffers, position, sliceBytes);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < slices.length) {
      const slice = slices[next] as Slice;
      next += 1;
      try {
        await writevSlice(handle, slice);
      } catch (err) {
        // No further slice starts: the write has failed, and the caller cuts the file back.
        next = slices.length;
        throw err;
      }
    }
  };
  const workers: Promise<void>[] = [];
  for (let i = 0; i < Math.min(inFlight, slices.length); i++) workers.push(worker());
  // allSettled first: a failed slice must not leave others writing after the caller moved on.
  const results = await Promise.allSettled(workers);
  for (const result of results) if (result.status === 'rejected') throw result.reason;
}

interface Slice {
  at: number;
  buffers: Buffer[];
}

/** Cuts `buffers` into groups of at most `sliceBytes`, each with its file offset. */
function gatherSlices(buffers: readonly Buffer[], position: number, sliceBytes: number): Slice[] {
  const slices: Slice[] = [];
  let at = position;
  let group: Buffer[] = [];
  let groupBytes = 0;
  for (const buffer of buffers) {
    for (let from = 0; from < buffer.length; ) {
      const take = Math.min(buffer.length - from, sliceBytes - groupBytes);
      group.push(take === buffer.length ? buffer : buffer.subarray(from, from + take));
      groupBytes += take;
      from += take;
      if (groupBytes >= sliceBytes) {
        slices.push({ at, buffers: group });
        at += groupBytes;
        group = [];
        groupBytes = 0;
      }
    }
  }
  if (group.length > 0) slices.push({ at, buffers: group });
  return slices;
}

/** One slice's writev, going on after short writes (rare but legal). */
async function writevSlice(handle: FileHandle, slice: Slice): Promise<void> {
  let at = slice.at;
  let pending = slice.buffers;
  while (pending.length > 0) {
    const { bytesWritten } = await handle.writev(pending, at);
    if (bytesWritten === 0) throw new Error(`a write of ${pending.reduce((n, b) => n + b.length, 0)} bytes at ${at} wrote nothing`);
    at += bytesWritten;
    let skip = bytesWritten;
    const rest: Buffer[] = [];
    for (const buffer of pending) {
      if (skip >= buffer.length) {
        skip -= buffer.length;
        continue;
      }
      rest.push(skip > 0 ? buffer.subarray(skip) : buffer);
      skip = 0;
    }
    pending = rest;
  }
}
