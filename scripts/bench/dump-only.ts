import { BehaviorSubject } from 'rxjs';
import ZongJi from '@vlasky/zongji';
import { BinlogStreamFramer } from '../../src/core/binlog-stream-framer.js';
import { compareBinlogPositions } from '../../src/core/binlog-position.js';
import { DEFAULT_DUMP_IDLE_TIMEOUT_MS, DEFAULT_HEARTBEAT_PERIOD_MS, DEFAULT_NET_WRITE_TIMEOUT_S } from '../../src/config/defaults.js';
import { silentLogger } from '../../src/platform/logger.js';
import { binlogSource, type RawPacket } from '../../src/primary/binlog-source.js';

/**
 * The read side alone, as its own process (the bench's ceilings for the binlog suites):
 * `node dist/scripts/bench/dump-only.js MODE PORT STOP_FILE STOP_POSITION` dumps the primary's
 * binlog from its first file to STOP_FILE:STOP_POSITION and prints one JSON line with the
 * seconds from the first event to the last, the bytes and the process's CPU seconds. MODE `library`: @vlasky/zongji over
 * mysql2 with every event handed over and dropped (zongji's decoding skipped, as the agent
 * skips it): what the mandated client stack alone can read, the ceiling of anything built on
 * it. MODE `capture`: the agent's own source and framer (each event's CRC32 checked, position
 * chain, transaction boundaries), nothing written: the agent's read side.
 */
const [mode, portText, stopFile, stopText] = process.argv.slice(2);
if ((mode !== 'library' && mode !== 'capture') || portText === undefined || stopFile === undefined || stopText === undefined) {
  process.stderr.write('usage: dump-only library|capture PORT STOP_FILE STOP_POSITION\n');
  process.exit(2);
}
const stop = { file: stopFile, position: Number(stopText) };
const first = 'mysql-bin.000001';
const connection = { host: '127.0.0.1', port: Number(portText), user: 'root', password: '' };
let startNs: bigint | undefined;
let bytes = 0;

function done(): void {
  const seconds = Number(process.hrtime.bigint() - (startNs ?? 0n)) / 1e9;
  const cpu = process.cpuUsage();
  process.stdout.write(`${JSON.stringify({ seconds, bytes, cpuSeconds: (cpu.user + cpu.system) / 1e6 })}\n`);
  process.exit(0);
}

if (mode === 'library') {
  const zongji = new ZongJi(connection) as unknown as {
    BinlogClass: { prototype: { binlogData: (packet: RawPacket, connection: unknown) => unknown } };
    on(event: string, listener: (arg?: unknown) => void): void;
    start(options: Record<string, unknown>): void;
  };
  let file = first;
  zongji.on('ready', () => {
    const proto = zongji.BinlogClass.prototype;
    const decode = proto.binlogData;
    proto.binlogData = function (this: unknown, packet: RawPacket, conn: unknown) {
      if (packet.isEOF() || packet.isError()) return decode.call(this, packet, conn);
      startNs ??= process.hrtime.bigint();
      const event = packet.buffer.subarray(packet.start + 5, packet.end);
      bytes += event.length;
      // The least a reader must look at to know where it is: the type, and a rotate's file name.
      const type = event[4];
      if (type === 4) file = event.toString('latin1', 19 + 8, event.length - 4);
      else if (file === stop.file && event.readUInt32LE(13) >= stop.position) done();
      return proto.binlogData;
    };
  });
  zongji.on('error', (err) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
  zongji.start({ serverId: 4343, filename: first, position: 4, requestAnnotateRows: true, includeEvents: [] });
} else {
  const framer = new BinlogStreamFramer({ file: first, position: 4 });
  binlogSource({
    primary: { ...connection, serverId: 4343 },
    serverId: 4343,
    framer,
    tuning: { heartbeatPeriodMs: DEFAULT_HEARTBEAT_PERIOD_MS, idleTimeoutMs: DEFAULT_DUMP_IDLE_TIMEOUT_MS, netWriteTimeoutS: DEFAULT_NET_WRITE_TIMEOUT_S },
    paused$: new BehaviorSubject(false),
    logger: silentLogger(),
  }).subscribe({
    next: (framed) => {
      startNs ??= process.hrtime.bigint();
      if (framed.kind !== 'record') return;
      bytes += framed.record.bytes.length;
      if (compareBinlogPositions(framer.next, stop) >= 0) done();
    },
    error: (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  });
}
