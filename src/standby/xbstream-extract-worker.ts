import { closeSync, fstatSync, mkdirSync, openSync, readSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { crc32 } from '../core/crc32.js';
import { HotspareError } from '../core/errors.js';
import { XBSTREAM_HEAD_BYTES_MAX, parseXbstreamHead, xbstreamDamaged as damaged } from '../core/xbstream-chunk.js';
import type { ExtractData, ExtractOutcome } from './xbstream-extract.js';

/**
 * The extractor's thread (see extractXbstream): reads the stream from start to end with plain
 * blocking calls, checks each chunk's CRC-32, and writes its payload at its offset in writes of
 * at most `sliceBytes`. Blocking calls are fine here and only here: nothing else waits on this
 * thread's event loop, and each costs one system call instead of a libuv pool round trip.
 */
const port = parentPort;
if (port === null) throw new Error('xbstream-extract-worker runs as a worker thread');
const cfg = workerData as ExtractData;

function extract(): { files: number; bytes: number } {
  const input = openSync(cfg.stream, 'r');
  /** Files begun and not yet ended: descriptor and the next offset expected. */
  const open = new Map<string, { fd: number; next: number }>();
  try {
    const size = fstatSync(input).size;
    const buf = Buffer.allocUnsafeSlow(cfg.readBytes);
    /** The stream offset of buf[0], and how many bytes from there buf holds. */
    let bufAt = 0;
    let held = 0;
    /** Makes buf hold [pos, pos + want) (less at the stream's end); returns pos's index in buf. */
    const hold = (pos: number, want: number): number => {
      if (pos + want <= bufAt + held) return pos - bufAt;
      const kept = bufAt + held - pos;
      if (kept > 0) buf.copy(buf, 0, pos - bufAt, pos - bufAt + kept);
      bufAt = pos;
      held = Math.max(kept, 0);
      const goal = Math.min(want, size - pos);
      while (held < goal) {
        const got = readSync(input, buf, held, buf.length - held, bufAt + held);
        if (got === 0) throw damaged(bufAt + held, `the file ended before its size of ${size} bytes`);
        held += got;
      }
      return 0;
    };
    const made = new Set<string>();
    const create = (path: string, at: number): number => {
      const parent = dirname(path);
      if (parent !== '.' && !made.has(parent)) {
        // mbstream makes its folders 0700; mariabackup --prepare and the server need no more.
        mkdirSync(join(cfg.dest, parent), { recursive: true, mode: 0o700 });
        made.add(parent);
      }
      try {
        return openSync(join(cfg.dest, path), 'wx', 0o640);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw damaged(at, `${path} appears twice`);
        throw err;
      }
    };
    let files = 0;
    let bytes = 0;
    for (let pos = 0; pos < size; ) {
      const at = hold(pos, XBSTREAM_HEAD_BYTES_MAX);
      const head = parseXbstreamHead(buf.subarray(at, at + Math.min(held - at, XBSTREAM_HEAD_BYTES_MAX)), pos);
      if (head === undefined) throw damaged(pos, 'the stream ends inside a chunk header');
      const chunkAt = pos;
      pos += head.headBytes;
      let file = open.get(head.path);
      if (head.type === 'eof') {
        // A file with no bytes has only its end chunk.
        closeSync(file?.fd ?? create(head.path, chunkAt));
        open.delete(head.path);
        files += 1;
        continue;
      }
      if (file === undefined) {
        if (open.size >= cfg.openFilesMax) throw damaged(chunkAt, `more than ${cfg.openFilesMax} files begun and not ended`);
        file = { fd: create(head.path, chunkAt), next: 0 };
        open.set(head.path, file);
      }
      if (head.offset !== file.next) throw damaged(chunkAt, `${head.path} continues at ${head.offset}, not at ${file.next}`);
      if (pos + head.length > size) throw damaged(chunkAt, `the stream ends inside ${head.path}'s chunk`);
      let crc = 0;
      for (let done = 0; done < head.length; ) {
        const length = Math.min(cfg.sliceBytes, head.length - done);
        const from = hold(pos, length);
        const piece = buf.subarray(from, from + length);
        crc = crc32(piece, crc);
        for (let written = 0; written < length; ) written += writeSync(file.fd, piece, written, length - written, head.offset + done + written);
        done += length;
        pos += length;
      }
      if (crc !== head.crc) throw damaged(chunkAt, `${head.path}'s chunk at file offset ${head.offset} does not match its CRC-32`);
      file.next += head.length;
      bytes += head.length;
    }
    if (open.size > 0) throw damaged(size, `the stream ends with ${[...open.keys()].slice(0, 3).join(', ')}${open.size > 3 ? ' and more' : ''} unfinished`);
    return { files, bytes };
  } finally {
    for (const { fd } of open.values()) closeSync(fd);
    closeSync(input);
  }
}

let outcome: ExtractOutcome;
try {
  outcome = { ok: true, ...extract() };
} catch (err) {
  outcome = err instanceof HotspareError
    ? { ok: false, code: err.code, message: err.message, hint: err.hint }
    : { ok: false, code: 'RESTORE_FAILED', message: `extracting the mariabackup stream: ${err instanceof Error ? err.message : String(err)}`, hint: 'the target is unchanged; fix the cause and run promote again' };
}
port.postMessage(outcome);
