import { connect, type Socket } from 'node:net';
import type { PrimaryConnection } from '../config/load.js';

/** How the dump connection's socket reads (DEFAULT_DUMP_READ_*). */
export interface DumpReadLimits {
  /** Memory a socket reads into, in slabs of this size, each read taking what is left of one. */
  slabBytes: number;
  /** A new slab once less than this is left of the current one (libuv's own reads are 64 KiB). */
  readBytesMin: number;
}

/**
 * A socket factory for mysql2 (its `stream` option) whose reads go into slabs of `slabBytes`
 * instead of a fresh 64 KiB buffer per read. libuv reads a stream at most 64 KiB at a time, and
 * during a catch-up the socket is always full: 250 MB of binlog came in about 4,000 reads, each
 * going through Node's stream machinery (Readable.push, its buffering and nextTick, the socket's
 * timer) and mysql2's packet parser, whose packets split across two reads are copied into a
 * fresh buffer. With a slab the same backlog arrives in reads of up to `slabBytes`.
 *
 * Each read's bytes are handed to mysql2 as a view of the slab (as Node hands it a view of its
 * own buffer), and a slab is never read into again below its last read: a view stays valid for
 * as long as an event of it waits to be written. The next read takes the rest of the slab, so
 * a stream of small reads (a primary writing a little at a time) shares one slab among many
 * reads rather than holding a slab per read. pause() and resume() stop and start the reading
 * as before, and 'end', 'close' and 'error' come as before.
 */
export function dumpSocketFactory(primary: PrimaryConnection, limits: DumpReadLimits): () => Socket {
  return () => {
    let slab = Buffer.allocUnsafeSlow(limits.slabBytes);
    let used = 0;
    // Assigned before any read can happen (reads start once connected).
    let socket: Socket | undefined;
    const onread = {
      buffer: (): Uint8Array => {
        if (slab.length - used < limits.readBytesMin) {
          slab = Buffer.allocUnsafeSlow(limits.slabBytes);
          used = 0;
        }
        return slab.subarray(used);
      },
      callback: (bytes: number, into: Uint8Array): boolean => {
        const chunk = Buffer.from(into.buffer, into.byteOffset, bytes);
        used += bytes;
        socket?.emit('data', chunk);
        return true;
      },
    };
    if (primary.socketPath !== undefined) {
      socket = connect({ path: primary.socketPath, onread });
    } else {
      socket = connect({ host: primary.host ?? '127.0.0.1', port: primary.port ?? 3306, onread });
      // As mysql2 does for the sockets it makes (a `stream` factory's it leaves alone): its
      // packets go out at once, and TCP keep-alive probes a link gone silent (mysql2's default
      // enableKeepAlive, with its initial delay of 0: the system's).
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 0);
    }
    return socket;
  };
}
