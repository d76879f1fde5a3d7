import ZongJi from '@vlasky/zongji';
import { Observable, type Subscription } from 'rxjs';
import type { PrimaryConnection } from '../config/load.js';
import type { BinlogTuning } from '../config/schema.js';
import type { BinlogStreamFramer, FramedEvent } from '../core/binlog-stream-framer.js';
import { HotspareError } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';
import { fromMysqlError } from './mysql-error.js';
import { describeEndpoint, mysqlOptions } from './mysql-options.js';

export interface BinlogSourceOptions {
  primary: PrimaryConnection;
  /** Replication client id of this dump connection (unique among the primary's replicas). */
  serverId: number;
  /** Frames the stream; a restarted source reuses the same framer and so continues exactly. */
  framer: BinlogStreamFramer;
  tuning: Pick<BinlogTuning, 'heartbeatPeriodMs' | 'idleTimeoutMs' | 'netWriteTimeoutS'>;
  /** true pauses the dump connection (flow control), false resumes it. */
  paused$: Observable<boolean>;
  logger: Logger;
}

/** The subset of mysql2's Connection that the source touches (see research/zongji.md §1-2). */
interface DumpConnection {
  query(sql: string, callback?: (err: unknown) => void): void;
  pause(): void;
  resume(): void;
  stream?: { setTimeout(ms: number): void; on(event: 'timeout', listener: () => void): void; destroy(err?: Error): void };
}

interface RawPacket {
  buffer: Buffer;
  start: number;
  end: number;
  isEOF(): boolean;
  isError(): boolean;
}

/** The subset of ZongJi we use; `BinlogClass` is internal, hence the pinned version. */
interface ZongJiLike {
  connection: DumpConnection | undefined;
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
    const zongji = new ZongJi(mysqlOptions(options.primary)) as unknown as ZongJiLike;
    let paused = false;
    let pauseSubscription: Subscription | undefined;
    let finished = false;

    const fail = (err: unknown): void => {
      if (finished) return;
      finished = true;
      subscriber.error(err instanceof HotspareError ? err : fromMysqlError(err, 'binlog dump', endpoint));
    };

    let idleTimerStream: DumpConnection['stream'];
    const armIdleTimer = (): void => {
      // A dead link is silent: with heartbeats every heartbeatPeriodMs, silence for
      // idleTimeoutMs means the connection is gone. No timer while we paused it ourselves.
      const stream = zongji.connection?.stream;
      if (stream === undefined) return;
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
      const periodNs = BigInt(options.tuning.heartbeatPeriodMs) * 1_000_000n;
      conn.query(`SET @master_heartbeat_period = ${periodNs}`, (err) => err && fail(err));
      conn.query(`SET SESSION net_write_timeout = ${options.tuning.netWriteTimeoutS}`, (err) => err && fail(err));
      const proto = zongji.BinlogClass.prototype;
      const decode = proto.binlogData;
      proto.binlogData = function (this: unknown, packet: RawPacket, connection: unknown) {
        if (packet.isEOF() || packet.isError()) return decode.call(this, packet, connection);
        if (finished) return proto.binlogData;
        // A view, not a copy. mysql2 reuses the Packet object but never the bytes under it:
        // packet.buffer is a chunk the socket read into a fresh buffer, or a fresh buffer
        // joining a packet split across reads (mysql2 lib/packet_parser.js), and nothing
        // writes into it afterwards. A view keeps its chunk alive only as long as the event
        // is queued, and the events of a chunk leave the queue together.
        const bytes = packet.buffer.subarray(packet.start + 5, packet.end);
        try {
          subscriber.next(framer.frame(bytes));
        } catch (err) {
          fail(err);
        }
        // zongji's own decoding is skipped: it parses every header again and decodes
        // the commit and GTID events for bookkeeping we do not use (research/zongji.md §1).
        // Returning the handler keeps the dump command reading the next packet.
        return proto.binlogData;
      };
      armIdleTimer();
      pauseSubscription = options.paused$.subscribe((shouldPause) => {
        if (shouldPause === paused || zongji.connection === undefined) return;
        paused = shouldPause;
        if (paused) zongji.connection.pause();
        else zongji.connection.resume();
        armIdleTimer();
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
      pauseSubscription?.unsubscribe();
      try {
        zongji.stop();
      } catch (err) {
        log.debug({ err }, 'zongji stop failed');
      }
    };
  });
}
