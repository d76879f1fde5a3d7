import type { FileHandle } from 'node:fs/promises';
import { DEFAULT_PAGE_CACHE_WRITE_BYTES } from '../config/defaults.js';

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
 */
export async function writevAllAt(handle: FileHandle, buffers: readonly Buffer[], position: number, sliceBytes = DEFAULT_PAGE_CACHE_WRITE_BYTES): Promise<void> {
  let at = position;
  let group: Buffer[] = [];
  let groupBytes = 0;
  const flush = async (): Promise<void> => {
    let pending = group;
    group = [];
    groupBytes = 0;
    while (pending.length > 0) {
      const { bytesWritten } = await handle.writev(pending, at);
      if (bytesWritten === 0) throw new Error(`a write of ${pending.reduce((n, b) => n + b.length, 0)} bytes at ${at} wrote nothing`);
      at += bytesWritten;
      // Short writes are rare but legal: drop what was written and go on with the rest.
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
  };
  for (const buffer of buffers) {
    for (let from = 0; from < buffer.length; ) {
      const take = Math.min(buffer.length - from, sliceBytes - groupBytes);
      group.push(take === buffer.length ? buffer : buffer.subarray(from, from + take));
      groupBytes += take;
      from += take;
      if (groupBytes >= sliceBytes) await flush();
    }
  }
  if (group.length > 0) await flush();
}
