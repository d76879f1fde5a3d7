import { createHash, timingSafeEqual } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import { LocalArchiveFiles } from '../../archive/archive-files.js';
import { claimArchive, readArchiveIdentity, type ArchiveIdentity } from '../../archive/archive-identity.js';
import { ArchiveLock } from '../../archive/archive-lock.js';
import { BinlogArchiveWriter } from '../../archive/binlog-archive-writer.js';
import {
  DEFAULT_RECEIVER_CONNECTIONS_MAX,
  DEFAULT_RECEIVER_HTTP_CONNECTIONS_MAX,
  DEFAULT_RECEIVER_PEER_LOG_LINES,
  DEFAULT_RECEIVER_PEER_LOG_WINDOW_MS,
  DEFAULT_RECEIVER_HTTP_REQUEST_TIMEOUT_MS,
  DEFAULT_RECEIVER_PENDING_BYTES_MAX,
  DEFAULT_ARCHIVE_VOLUME_CHECK_INTERVAL_MS,
  DEFAULT_RECEIVER_UPLOADS_MAX,
  DEFAULT_RECEIVER_FILE_QUEUE_BYTES_MAX,
  DEFAULT_SYNC_BATCH_BYTES_MAX,
  DEFAULT_RECEIVER_WRITE_STALL_MS,
  DEFAULT_WIRE_CONTROL_FRAME_BYTES_MAX,
  DEFAULT_WIRE_FRAME_BYTES_MAX,
  DEFAULT_WIRE_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_WIRE_HEARTBEAT_INTERVAL_MS,
  DEFAULT_WIRE_IDLE_TIMEOUT_MS,
  WIRE_PROTOCOL_VERSION,
} from '../../config/defaults.js';
import type { DurablePoint } from '../../core/binlog-record.js';
import { HotspareError, errorMessage } from '../../core/errors.js';
import { LogThrottle } from '../../core/log-throttle.js';
import { archiveWriteError } from '../../archive/archive-errors.js';
import { systemClock, type Clock } from '../../platform/clock.js';
import { VolumePoller, type VolumeReading } from '../../platform/volume-poller.js';
import type { Logger } from '../../platform/logger.js';
import { FrameType, wireError, type Frame } from '../../wire/wire-frame.js';
import { decodeJson, encodeJson, helloSchema, isArchiveCode, volumeForWire, type AckVolume, type Hello, type Problem, type RefusalCode, type Welcome } from '../../wire/wire-messages.js';
import { WireSocket } from '../../wire/wire-socket.js';
import { ReceiverSession } from './receiver-session.js';
import { receiverStatus, type ReceiverStatus } from './receiver-status.js';
import { hotspareVersion } from '../../platform/version.js';
import { childLogger } from '../../platform/logger.js';

export interface ReceiverOptions {
  archive: string;
  listen: { host: string; port: number };
  /** The shared secret the agent must present (the token file's content, trimmed). */
  token: string;
  tls?: { cert: Buffer | string; key: Buffer | string } | undefined;
  /** Serves GET /status there when given. */
  http?: { host: string; port: number } | undefined;
  logger: Logger;
  clock?: Clock;
  limits?: Partial<ReceiverLimits>;
}

export interface ReceiverLimits {
  heartbeatIntervalMs: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  connectionsMax: number;
  /** GET /status: connections at once, and how long one may take to send its request. */
  httpConnectionsMax: number;
  httpRequestTimeoutMs: number;
  pendingBytesMax: number;
  uploadsMax: number;
  fileQueueBytesMax: number;
  syncBatchBytesMax: number;
  /** A peer whose socket has not drained for this long is dropped (DEFAULT_RECEIVER_WRITE_STALL_MS). */
  writeStallMs: number;
}

export interface Receiver {
  /** Where the receiver listens (the real port when 0 was asked for). */
  readonly address: { host: string; port: number };
  readonly httpAddress: { host: string; port: number } | undefined;
  status(): Promise<ReceiverStatus>;
  /** Stops listening, ends the agent's session (making what it sent durable), releases the archive. */
  close(): Promise<void>;
}

/**
 * Starts `hotspare receive` in-process: locks the archive folder, listens for one agent at a
 * time, and writes its stream into the archive as the file replica would. Used by the
 * command, the demo and the tests.
 */
export async function startReceiver(options: ReceiverOptions): Promise<Receiver> {
  const limits: ReceiverLimits = {
    heartbeatIntervalMs: DEFAULT_WIRE_HEARTBEAT_INTERVAL_MS,
    idleTimeoutMs: DEFAULT_WIRE_IDLE_TIMEOUT_MS,
    handshakeTimeoutMs: DEFAULT_WIRE_HANDSHAKE_TIMEOUT_MS,
    connectionsMax: DEFAULT_RECEIVER_CONNECTIONS_MAX,
    httpConnectionsMax: DEFAULT_RECEIVER_HTTP_CONNECTIONS_MAX,
    httpRequestTimeoutMs: DEFAULT_RECEIVER_HTTP_REQUEST_TIMEOUT_MS,
    pendingBytesMax: DEFAULT_RECEIVER_PENDING_BYTES_MAX,
    uploadsMax: DEFAULT_RECEIVER_UPLOADS_MAX,
    fileQueueBytesMax: DEFAULT_RECEIVER_FILE_QUEUE_BYTES_MAX,
    syncBatchBytesMax: DEFAULT_SYNC_BATCH_BYTES_MAX,
    writeStallMs: DEFAULT_RECEIVER_WRITE_STALL_MS,
    ...options.limits,
  };
  const log = childLogger(options.logger, { component: 'receiver' });
  await mkdir(`${options.archive}/state`, { recursive: true });
  // The receiver is the archive's one writer for as long as it runs.
  const lock = await ArchiveLock.acquire(options.archive, 'hotspare receive');
  const state = new ReceiverState(options, limits, log);
  let tcp: Server;
  try {
    tcp = await listen(options, limits, log, state);
  } catch (err) {
    await lock.release();
    throw err;
  }
  let http: HttpServer | undefined;
  try {
    if (options.http !== undefined) http = await serveStatus(options.http, limits, () => state.status(), log);
  } catch (err) {
    tcp.close();
    await lock.release();
    throw err;
  }
  state.startVolumePoller();
  const tcpAddress = tcp.address() as AddressInfo;
  const httpAddress = http?.address() as AddressInfo | undefined;
  log.info({ version: hotspareVersion(), archive: options.archive, listen: `${tcpAddress.address}:${tcpAddress.port}`, tls: options.tls !== undefined }, 'receiver listening');
  let closing: Promise<void> | undefined;
  return {
    address: { host: tcpAddress.address, port: tcpAddress.port },
    httpAddress: httpAddress === undefined ? undefined : { host: httpAddress.address, port: httpAddress.port },
    status: () => state.status(),
    close: () =>
      (closing ??= (async () => {
        const stopped = new Promise<void>((r) => tcp.close(() => r()));
        http?.closeAllConnections();
        http?.close();
        await state.closeAll();
        await stopped;
        await lock.release();
        log.info('receiver stopped; the archive is durable and unlocked');
      })()),
  };
}

function listen(options: ReceiverOptions, limits: ReceiverLimits, log: Logger, state: ReceiverState): Promise<Server> {
  // Every TCP connection, a TLS one still in its handshake included, is counted as it comes
  // (ReceiverState.connection), before accept() sees it: the newcomer past the limit makes a
  // stray give way, and accept() then marks it with its own handshake state.
  const server =
    options.tls === undefined
      ? createTcpServer((raw: Socket) => {
          state.connection(raw);
          if (!raw.destroyed) state.accept(raw);
        })
      : createTlsServer({ cert: options.tls.cert, key: options.tls.key, handshakeTimeout: limits.handshakeTimeoutMs, minVersion: 'TLSv1.2' }, (socket: Socket) => state.accept(socket));
  if (options.tls !== undefined) server.on('connection', (raw: Socket) => state.connection(raw));
  // One over the limit, so that the newcomer reaches that count.
  server.maxConnections = limits.connectionsMax + 1;
  server.on('tlsClientError', (err: Error, socket: Socket) => {
    state.peerWarn(log, { peer: `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`, reason: err.message }, 'dropped a connection that failed the TLS handshake');
  });
  server.on('drop', (data?: { remoteAddress?: string }) => state.peerWarn(log, { peer: data?.remoteAddress }, `dropped a connection: more than ${limits.connectionsMax} open`));
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new HotspareError('RECEIVER_LISTEN', `cannot listen on ${options.listen.host}:${options.listen.port}: ${err.code ?? err.message}`, {
          hint: 'choose a free port and an address of this host',
          cause: err,
        }),
      ),
    );
    server.listen(options.listen.port, options.listen.host, () => {
      server.removeAllListeners('error');
      server.on('error', (err) => log.error({ err }, 'listener error'));
      resolve(server);
    });
  });
}

function serveStatus(at: { host: string; port: number }, limits: ReceiverLimits, status: () => Promise<ReceiverStatus>, log: Logger): Promise<HttpServer> {
  // Bounded, as the agent's port is: each connection holds a descriptor of the process that
  // also serves the agent (see DEFAULT_RECEIVER_HTTP_CONNECTIONS_MAX).
  const server = createHttpServer({ requestTimeout: limits.httpRequestTimeoutMs, headersTimeout: limits.httpRequestTimeoutMs }, (req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/status') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not found; try GET /status"}\n');
      return;
    }
    status().then(
      (body) => res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(body, null, 2)}\n`),
      (err: unknown) => {
        log.warn({ err }, 'status failed');
        res.writeHead(500, { 'content-type': 'application/json' }).end(`${JSON.stringify({ error: errorMessage(err) })}\n`);
      },
    );
  });
  server.maxConnections = limits.httpConnectionsMax;
  // At debug: a flood of them would otherwise flood the log as well.
  server.on('drop', (data?: { remoteAddress?: string }) => log.debug({ peer: data?.remoteAddress }, `dropped a status connection: more than ${limits.httpConnectionsMax} open`));
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new HotspareError('RECEIVER_LISTEN', `cannot serve --http on ${at.host}:${at.port}: ${err.code ?? err.message}`, { hint: 'choose a free port', cause: err })),
    );
    server.listen(at.port, at.host, () => resolve(server));
  });
}

/** Compares the presented token with the expected one in constant time (equal-length digests). */
export function tokenMatches(expected: string, presented: string): boolean {
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(a, b);
}

class Refusal extends Error {
  constructor(
    /** One of REFUSAL_CODES, or an archive's own code (isArchiveCode). */
    readonly code: RefusalCode | string,
    message: string,
    readonly hint: string,
  ) {
    super(message);
  }
}

/** The receiver's connections and its one agent session. */
class ReceiverState {
  /** Open connections past accept(), each with whether its peer has yet to show the token. */
  readonly #connections = new Map<WireSocket, { unproven: () => boolean }>();
  /**
   * Every TCP connection as it came (oldest first), by its peer's address and port, which its
   * TLS socket shares: one before accept() (a TLS handshake under way) has shown nothing.
   */
  readonly #raw = new Map<string, { socket: Socket; unproven: () => boolean }>();
  #session: ReceiverSession | undefined;
  #agent: { id: string; remote: string } | undefined;
  /** Handshakes are admitted one at a time, so two agents can never both win. */
  #admission: Promise<void> = Promise.resolve();
  #lastDurable: DurablePoint | undefined;
  #lastHeardAtMs: number | undefined;
  /** The last failure a session reported to its agent (a full volume, a refused event), for GET /status. */
  #lastProblem: (Problem & { atMs: number }) | undefined;
  #closing = false;
  readonly #clock: Clock;
  /** The archive volume as last read: sent to the agent (ACK, WELCOME, PING), so its /lag shows the standby's room. */
  #volume: VolumeReading | undefined;
  readonly #volumePoller: VolumePoller;
  /**
   * The archive's files, for every session: a write-back error one session's writes met is
   * kept there (see LocalArchiveFiles.sync) until a SYNC of that file reports it, also when
   * the SYNC comes on the agent's next connection. Per session, that error was lost with the
   * connection, and the next SYNC, through a new descriptor, succeeded (Linux reports a
   * write-back error once): an acknowledged size with pages that never reached the disk.
   */
  readonly #files: LocalArchiveFiles;
  /** Lines about peers dropped or refused before a session: a flood of connections must not flood the log too. */
  readonly #peerLog = new LogThrottle(DEFAULT_RECEIVER_PEER_LOG_LINES, DEFAULT_RECEIVER_PEER_LOG_WINDOW_MS);

  constructor(
    private readonly options: ReceiverOptions,
    private readonly limits: ReceiverLimits,
    private readonly log: Logger,
  ) {
    this.#clock = options.clock ?? systemClock;
    this.#files = new LocalArchiveFiles(options.archive);
    this.#volumePoller = new VolumePoller({
      path: options.archive,
      intervalMs: DEFAULT_ARCHIVE_VOLUME_CHECK_INTERVAL_MS,
      clock: this.#clock,
      logger: log,
      onReading: (reading) => {
        this.#volume = reading;
        // Each reading goes to the agent of the session at once, on a PING: an idle primary
        // sends nothing to acknowledge, and the agent's own requests keep the link from ever
        // being quiet enough for a heartbeat. Only an agent past the handshake learns of it.
        const volume = this.#volumeOnWire();
        if (volume !== undefined) this.#session?.sendPing(encodeJson({ volume }));
      },
    });
  }

  /** The reading as it travels: its age instead of its time, since the two hosts' clocks need not agree. */
  #volumeOnWire(): AckVolume | undefined {
    return this.#volume === undefined ? undefined : volumeForWire(this.#volume, this.#clock.nowMs());
  }

  /** Starts reading the archive volume; once the receiver serves (a failed start leaves no timer). */
  startVolumePoller(): void {
    this.#volumePoller.start();
  }

  /**
   * A TCP connection arrives (before TLS, if any). Full: a connection whose peer has not shown
   * the token makes room (#strayToDrop). Refusing the newcomer instead let anyone who reaches
   * the port keep the agent out after a dropped link, by holding every slot with idle
   * connections (or TLS handshakes) renewed before their deadline.
   */
  connection(raw: Socket): void {
    const key = `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`;
    if (this.#raw.size >= this.limits.connectionsMax) {
      const stray = this.#strayToDrop();
      if (stray === undefined) {
        this.peerWarn(this.log, { peer: key }, `dropped a connection: ${this.limits.connectionsMax} open, none of them a stray`);
        raw.destroy();
        return;
      }
      this.peerWarn(this.log, { peer: key, dropped: stray[0] }, `${this.limits.connectionsMax} connections open: dropped the oldest one still without a handshake to make room`);
      this.#raw.delete(stray[0]);
      stray[1].socket.destroy();
    }
    this.#raw.set(key, { socket: raw, unproven: () => true });
    raw.once('close', () => {
      if (this.#raw.get(key)?.socket === raw) this.#raw.delete(key);
    });
  }

  /** A warning about a peer dropped or refused, within the peer log's budget (see LogThrottle). */
  peerWarn(log: Logger, fields: Record<string, unknown>, message: string): void {
    const { log: allowed, suppressed } = this.#peerLog.take(this.#clock.nowMs());
    if (allowed) log.warn(suppressed > 0 ? { ...fields, suppressedSinceLastLine: suppressed } : fields, message);
  }

  /**
   * The stray that gives way: the oldest one of the address that holds the most strays (the
   * oldest address first among equals). The oldest overall let one host that opens connections
   * faster than an agent's handshake takes (a TLS handshake, a round trip for the HELLO) drop
   * the agent's every attempt: with an address of its own, the flood now drops its own first.
   */
  #strayToDrop(): [string, { socket: Socket; unproven: () => boolean }] | undefined {
    const strays = [...this.#raw].filter(([, c]) => c.unproven());
    const counts = new Map<string, number>();
    for (const [, c] of strays) counts.set(c.socket.remoteAddress ?? '?', (counts.get(c.socket.remoteAddress ?? '?') ?? 0) + 1);
    let busiest: string | undefined;
    for (const [address, n] of counts) if (busiest === undefined || n > (counts.get(busiest) ?? 0)) busiest = address;
    return strays.find(([, c]) => (c.socket.remoteAddress ?? '?') === busiest);
  }

  accept(socket: Socket): void {
    if (this.#closing) {
      socket.destroy();
      return;
    }
    const peer = `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    const log = childLogger(this.log, { peer });
    let session: ReceiverSession | undefined;
    let handshaking = false;
    /** The peer showed the token (its admission may still be under way). */
    let proven = false;
    const handshakeTimer = setTimeout(() => {
      this.peerWarn(log, {}, `dropped a peer that did not complete the handshake within ${this.limits.handshakeTimeoutMs} ms`);
      wire.close(wireError('handshake timeout'));
    }, this.limits.handshakeTimeoutMs);
    handshakeTimer.unref();

    const wire: WireSocket = new WireSocket(socket, {
      clock: this.#clock,
      frameBytesMax: DEFAULT_WIRE_CONTROL_FRAME_BYTES_MAX,
      heartbeatIntervalMs: this.limits.heartbeatIntervalMs,
      idleTimeoutMs: this.limits.idleTimeoutMs,
      writeStallMs: this.limits.writeStallMs,
      onFrame: (frame: Frame) => {
        if (session !== undefined) {
          this.#lastHeardAtMs = this.#clock.nowMs();
          try {
            session.onFrame(frame);
          } catch (err) {
            // A bad frame from an authenticated agent: tell it why, log it, drop the connection.
            session.fail(err);
          }
          return;
        }
        if (handshaking || frame.type !== FrameType.HELLO) throw wireError(`expected HELLO, received frame type ${frame.type}`);
        handshaking = true;
        const hello = decodeJson(frame.payload, helloSchema, 'HELLO');
        // A peer with the token has done its part: the rest (waiting for an earlier admission,
        // the archive's identity, its folders' fsyncs) is our own work, and a slow disk is no
        // reason to drop it. A peer without it stays bound by the deadline (and is refused).
        if (tokenMatches(this.options.token, hello.token)) {
          proven = true;
          clearTimeout(handshakeTimer);
        }
        this.#admission = this.#admission.then(async () => {
          try {
            session = await this.#admit(hello, wire, log);
          } catch (err) {
            // An archive problem keeps its code (the agent shows it as the archive's, and an
            // operator must act); anything else is the receiver's own, and may pass.
            const refusal =
              err instanceof Refusal
                ? err
                : err instanceof HotspareError && isArchiveCode(err.code)
                  ? new Refusal(err.code, `the receiver could not open the archive: ${err.message}`, err.hint ?? 'see the receiver log')
                  : new Refusal('RECEIVER_ERROR', `the receiver could not open the archive: ${errorMessage(err)}`, 'see the receiver log');
            // A peer that showed the token is an agent: its refusal (ARCHIVE_FOREIGN, ARCHIVE_PROMOTED, ...)
            // is the line an operator must see, never held back behind a flood of strays.
            if (refusal.code === 'BAD_TOKEN') this.peerWarn(log, { code: refusal.code, agentId: hello.agentId }, `refused agent: ${refusal.message}`);
            else log.warn({ code: refusal.code, agentId: hello.agentId }, `refused agent: ${refusal.message}`);
            const problem: Problem = { code: refusal.code, message: refusal.message, hint: refusal.hint };
            wire.send(FrameType.REFUSE, [encodeJson(problem)]);
            wire.close(undefined);
          }
        });
      },
      onClose: (err) => {
        clearTimeout(handshakeTimer);
        this.#connections.delete(wire);
        if (session === undefined) {
          if (err !== undefined && !handshaking) this.peerWarn(log, { reason: err.message }, 'dropped a peer before its handshake');
          return;
        }
        const ended = session;
        if (err !== undefined && !(err instanceof HotspareError && err.code === 'WIRE_CLOSED')) log.warn({ code: err instanceof HotspareError ? err.code : undefined, reason: err.message }, 'agent connection lost');
        else log.info('agent disconnected');
        this.#lastDurable = ended.durablePoint ?? this.#lastDurable;
        void ended.teardown().then(() => {
          this.#lastDurable = ended.durablePoint ?? this.#lastDurable;
          if (this.#session === ended) {
            this.#session = undefined;
            this.#agent = undefined;
          }
        });
      },
    });
    const unproven = (): boolean => session === undefined && !proven;
    this.#connections.set(wire, { unproven });
    const raw = this.#raw.get(peer);
    if (raw !== undefined) raw.unproven = unproven;
  }

  async #admit(hello: Hello, wire: WireSocket, log: Logger): Promise<ReceiverSession> {
    if (wire.closed) throw new Refusal('RECEIVER_ERROR', 'the connection closed during the handshake', 'the agent reconnects');
    // A HELLO that came in as the receiver began to stop: the archive is being released.
    if (this.#closing) throw new Refusal('RECEIVER_ERROR', 'the receiver is stopping', 'the agent reconnects when it is back');
    if (hello.protocol !== WIRE_PROTOCOL_VERSION) {
      throw new Refusal('VERSION', `the agent speaks wire protocol ${hello.protocol}; this receiver speaks ${WIRE_PROTOCOL_VERSION}`, 'run the same hotspare version on the primary and the standby');
    }
    if (!tokenMatches(this.options.token, hello.token)) {
      throw new Refusal('BAD_TOKEN', 'the agent presented a wrong token', "make the replica's tokenFile hold the same token as the receiver's --token-file");
    }
    const current = this.#session;
    if (current !== undefined) {
      if (this.#agent?.id !== hello.agentId) {
        throw new Refusal('ARCHIVE_LOCKED', `another agent (${this.#agent?.id ?? '?'} from ${this.#agent?.remote ?? '?'}) is streaming into this archive`, 'only one agent may write an archive; stop the other one');
      }
      // The same agent reconnected before its old connection timed out: that one is dead.
      log.info('the agent reconnected; ending its previous connection');
      current.fail(new HotspareError('RECEIVER_SUPERSEDED', 'a newer connection of the same agent replaced this one', { hint: 'none' }));
      await current.closed;
    }
    // A system error opening the archive (a full or read-only volume, a refused or failing one)
    // gets the archive's code, as a file replica's does, so the agent shows it and pages.
    let writer: BinlogArchiveWriter;
    try {
      await claimArchive(this.options.archive, hello.primary, new Date(this.#clock.nowMs()).toISOString());
      writer = await BinlogArchiveWriter.open(this.options.archive, {
        logger: log,
        clock: this.#clock,
        syncBatchBytesMax: this.limits.syncBatchBytesMax,
      });
    } catch (err) {
      if (err instanceof HotspareError && (err.code === 'ARCHIVE_FOREIGN' || err.code === 'ARCHIVE_VERSION' || err.code === 'ARCHIVE_PROMOTED')) throw new Refusal(err.code, err.message, err.hint);
      throw archiveWriteError(err, this.options.archive);
    }
    if (wire.closed) {
      await writer.close();
      throw new Refusal('RECEIVER_ERROR', 'the connection closed during the handshake', 'the agent reconnects');
    }
    const session = new ReceiverSession({
      agentId: hello.agentId,
      wire,
      writer,
      files: this.#files,
      logger: log,
      pendingBytesMax: this.limits.pendingBytesMax,
      uploadsMax: this.limits.uploadsMax,
      fileQueueBytesMax: this.limits.fileQueueBytesMax,
      nowMs: () => this.#clock.nowMs(),
      volume: () => this.#volumeOnWire(),
      onProblem: (problem) => {
        this.#lastProblem = { ...problem, atMs: this.#clock.nowMs() };
      },
    });
    this.#session = session;
    this.#agent = { id: hello.agentId, remote: wire.remote };
    this.#lastHeardAtMs = this.#clock.nowMs();
    wire.setLimit(DEFAULT_WIRE_FRAME_BYTES_MAX);
    const welcome: Welcome = { protocol: WIRE_PROTOCOL_VERSION, resume: writer.resume ?? null, volume: this.#volumeOnWire() };
    wire.send(FrameType.WELCOME, [encodeJson(welcome)]);
    log.info({ agentId: hello.agentId, resume: writer.resume ?? null }, 'agent connected');
    return session;
  }

  async status(): Promise<ReceiverStatus> {
    let identity: ArchiveIdentity | undefined;
    try {
      identity = await readArchiveIdentity(this.options.archive);
    } catch {
      identity = undefined;
    }
    const session = this.#session;
    return receiverStatus({
      archive: this.options.archive,
      identity,
      durable: session?.durablePoint ?? this.#lastDurable,
      agent: session === undefined || this.#agent === undefined ? undefined : { ...this.#agent, connectedAtMs: session.connectedAtMs },
      lastHeardAtMs: this.#lastHeardAtMs,
      lastProblem: this.#lastProblem,
      // Every TCP connection as it came (a TLS one still in its TLS handshake included), as the
      // connection limit counts them.
      connections: { open: this.#raw.size, withoutHandshake: [...this.#raw.values()].filter((c) => c.unproven()).length },
    });
  }

  async closeAll(): Promise<void> {
    this.#closing = true;
    this.#volumePoller.stop();
    await this.#admission;
    const session = this.#session;
    for (const wire of this.#connections.keys()) wire.close(new HotspareError('RECEIVER_STOPPING', 'the receiver is stopping', { hint: 'the agent reconnects when it is back' }));
    if (session !== undefined) await session.closed;
    // An admission queued meanwhile is refused (closing); wait for it, so nothing holds the
    // archive once this returns.
    await this.#admission;
  }
}
