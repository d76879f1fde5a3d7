import ZongJi from '@vlasky/zongji';
import { Observable, type Subscription } from 'rxjs';
import type { PrimaryConnection } from '../config/load.js';
import type { BinlogTuning } from '../config/schema.js';
import { DEFAULT_DUMP_READ_BYTES_MIN, DEFAULT_DUMP_READ_SLAB_BYTES, DEFAULT_DUMP_SLICE_BYTES, DEFAULT_DUMP_SLICE_EVENTS } from '../config/defaults.js';
import type { BinlogStreamFramer, FramedEvent } from '../core/binlog-stream-framer.js';
import { HotspareError } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';
import { fromMysqlError } from './mysql-error.js';
import { describeEndpoint, mysqlOptions } from './mysql-options.js';
import { dumpSocketFactory } from './dump-socket.js';

export interface BinlogSourceOptions {
  primary: PrimaryConnection;
  /** Replication client id of this dump connection (unique among the primary's replicas). */
  serverId: number;
  /** Frames the stream; a restarted source reuses the same framer and so continues exactly. */
  framer: BinlogStreamFramer;
  tuning: Pick<BinlogTuning, 'heartbeatPeriodMs' | 'idleTimeoutMs' | 'netWriteTimeoutS'>;
  /** true pauses the dump connection (flow control), false resumes it. */
  paused$: Observable<boolean>;
  /** Events and bytes handled per turn of the event loop (DEFAULT_DUMP_SLICE_*). */
  slice?: { events: number; bytes: number };
  logger: Logger;
}

/** The subset of mysql2's Connection that the source touches (see research/zongji.md §1-2). */
interface DumpConnection {
  query(sql: string, callback?: (err: unknown) => void): void;
  pause(): void;
  resume(): void;
  stream?: { setTimeout(ms: number): void; on(event: 'timeout', listener: () => void): void; destroy(err?: Error): void };
}

/** A packet of the dump as mysql2 parsed it: the event's bytes lie at [start + 5, end) of buffer. */
export interface RawPacket {
  buffer: Buffer;
  start: number;
  end: number;
  isEOF(): boolean;
  isError(): boolean;
}

/** The subset of ZongJi we use; `BinlogClass` is internal, hence the pinned version. */
interface ZongJiLike {
  connection: DumpConnection | undefined;
  /** zongji's second connection: asks its questions before the dump, and KILLs the dump at stop. */
  ctrlConnection: { removeAllListeners(event: 'error'): void; on(event: 'error', listener: (err: unknown) => void): void } | null;
  BinlogClass: { prototype: { binlogData: (packet: RawPacket, connection: unknown) => unknown } };
  on(event: 'ready', listener: () => void): void;
  on(event: 'error', listener: (err: unknown) => void): void;
  on(event: 'binlog', listener: (event: unknown) => void): void;
  start(options: Record<string, unknown>): void;
  stop(): void;
}

/**
 * The primary's binlog as an Observable of framed events, from a file and position.
 * zongji opens the connections, negotiates checksums and the MariaDB capability, and sends
 * the dump request; we take each event's raw bytes from the packet it parses (research/
 * zongji.md §2) and never use its decoded rows. Every error ends the Observable: zongji
 * never reconnects, so the caller restarts from its durable position.
 */
export function binlogSource(options: BinlogSourceOptions): Observable<FramedEvent> {
  return new Observable<FramedEvent>((subscriber) => {
    const log = options.logger;
    const endpoint = describeEndpoint(options.primary);
    const framer = options.framer;
    const start = framer.next;
    // Both of zongji's connections read through slabs (the dump's is the one that matters).
    const stream = dumpSocketFactory(options.primary, { slabBytes: DEFAULT_DUMP_READ_SLAB_BYTES, readBytesMin: DEFAULT_DUMP_READ_BYTES_MIN });
    const zongji = new ZongJi({ ...mysqlOptions(options.primary), stream }) as unknown as ZongJiLike;
    const slice = options.slice ?? { events: DEFAULT_DUMP_SLICE_EVENTS, bytes: DEFAULT_DUMP_SLICE_BYTES };
    /** Flow control asks for a pause (bytes not yet durable above the high-water mark). */
    let paused = false;
    /** This turn of the event loop has had its slice; the connection waits for the next turn. */
    let sliceSpent = false;
    let connectionPaused = false;
    let sliceEvents = 0;
    let sliceBytes = 0;
    let sliceEnd: NodeJS.Immediate | undefined;
    let pauseSubscription: Subscription | undefined;
    let finished = false;

    const fail = (err: unknown): void => {
      if (finished) return;
      finished = true;
      if (sliceEnd !== undefined) clearImmediate(sliceEnd);
      subscriber.error(err instanceof HotspareError ? err : fromMysqlError(err, 'binlog dump', endpoint));
    };

    /**
     * Pauses or resumes the connection for either reason. mysql2 pauses between packets: the
     * rest of a socket read waits in its queue, and resume() hands those packets over first
     * (they may pause it again), so nothing is lost or reordered.
     */
    const applyPause = (): void => {
      const conn = zongji.connection;
      const want = paused || sliceSpent;
      if (conn === undefined || finished || want === connectionPaused) return;
      connectionPaused = want;
      if (want) conn.pause();
      else conn.resume();
    };

    // A backlog arrives in socket reads of up to 64 KiB, hundreds of events each, and libuv
    // reads a socket many times in one turn: handled in one go, a catch-up would hold the
    // event loop (and every /lag request) for hundreds of milliseconds. So each turn handles
    // at most one slice, and the next turn (setImmediate runs after the pending I/O) goes on.
    const endSlice = (): void => {
      sliceEnd = undefined;
      sliceEvents = 0;
      sliceBytes = 0;
      if (sliceSpent) {
        sliceSpent = false;
        applyPause();
      }
    };
    const countSlice = (bytes: number): void => {
      sliceEnd ??= setImmediate(endSlice);
      sliceEvents += 1;
      sliceBytes += bytes;
      if (!sliceSpent && (sliceEvents >= slice.events || sliceBytes >= slice.bytes)) {
        sliceSpent = true;
        applyPause();
      }
    };

    let idleTimerStream: DumpConnection['stream'];
    const armIdleTimer = (): void => {
      // A dead link is silent: with heartbeats every heartbeatPeriodMs, silence for
      // idleTimeoutMs means the connection is gone. No timer while we paused it ourselves.
      const stream = zongji.connection?.stream;
      if (stream === undefined) return;
      // (A slice's pause lasts one turn of the event loop; it leaves the timer alone.)
      if (idleTimerStream !== stream) {
        // One listener per socket: setTimeout(ms, callback) would add another on every pause.
        idleTimerStream = stream;
        stream.on('timeout', () => {
          if (paused) return;
          fail(new HotspareError('DUMP_STALLED', `no binlog data or heartbeat from ${endpoint} for ${options.tuning.idleTimeoutMs} ms`, {
            hint: 'the agent reconnects; check the network between the agent and the primary',
          }));
        });
      }
      stream.setTimeout(paused ? 0 : options.tuning.idleTimeoutMs);
    };

    zongji.on('ready', () => {
      const conn = zongji.connection;
      if (conn === undefined) return;
      // The control connection idles from here (its rows decoding is skipped): the server
      // closes it after wait_timeout, and zongji passed that on as an error of the dump, which
      // tore a healthy stream down every wait_timeout. Its loss only costs stop() its KILL of
      // the dump thread, which the server's next dump with this id does anyway.
      const ctrl = zongji.ctrlConnection;
      if (ctrl !== null) {
        ctrl.removeAllListeners('error');
        ctrl.on('error', (err) => log.debug({ err }, 'the dump\'s control connection closed (idle); the dump goes on'));
      }
      const periodNs = BigInt(options.tuning.heartbeatPeriodMs) * 1_000_000n;
      conn.query(`SET @master_heartbeat_period = ${periodNs}`, (err) => err && fail(err));
      conn.query(`SET SESSION net_write_timeout = ${options.tuning.netWriteTimeoutS}`, (err) => err && fail(err));
      const proto = zongji.BinlogClass.prototype;
      const decode = proto.binlogData;
      proto.binlogData = function (this: unknown, packet: RawPacket, connection: unknown) {
        if (packet.isEOF() || packet.isError()) return decode.call(this, packet, connection);
        if (finished) return proto.binlogData;
        // A view, not a copy. mysql2 reuses the Packet object but never the bytes under it:
        // packet.buffer is a chunk the socket read into its slab (dumpSocketFactory: no read
        // goes into a slab below its last one), or a fresh buffer joining a packet split
        // across reads (mysql2 lib/packet_parser.js), and nothing writes into it afterwards.
        // A view keeps its slab alive only as long as the event is queued, and the events of
        // a slab leave the queue together.
        const bytes = packet.buffer.subarray(packet.start + 5, packet.end);
        try {
          subscriber.next(framer.frame(bytes));
        } catch (err) {
          fail(err);
        }
        countSlice(bytes.length);
        // zongji's own decoding is skipped: it parses every header again and decodes
        // the commit and GTID events for bookkeeping we do not use (research/zongji.md §1).
        // Returning the handler keeps the dump command reading the next packet.
        return proto.binlogData;
      };
      armIdleTimer();
      pauseSubscription = options.paused$.subscribe((shouldPause) => {
        if (shouldPause === paused || zongji.connection === undefined) return;
        paused = shouldPause;
        armIdleTimer();
        applyPause();
      });
    });
    zongji.on('error', (err) => fail(err));
    log.debug({ start, serverId: options.serverId }, 'starting binlog dump');
    zongji.start({
      serverId: options.serverId,
      filename: start.file,
      position: start.position,
      // Without ANNOTATE_ROWS a MariaDB dump skips events and the offsets no longer match the file.
      requestAnnotateRows: true,
      // Decode nothing: the archive keeps raw bytes, and decoding can stall on schema changes.
      includeEvents: [],
    });

    return () => {
      finished = true;
      if (sliceEnd !== undefined) clearImmediate(sliceEnd);
      pauseSubscription?.unsubscribe();
      try {
        zongji.stop();
      } catch (err) {
        log.debug({ err }, 'zongji stop failed');
      }
    };
  });
}
