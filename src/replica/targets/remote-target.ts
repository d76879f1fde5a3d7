import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect as connectTcp, type Socket } from 'node:net';
import { checkServerIdentity, connect as connectTls, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { Subject, type Observable } from 'rxjs';
import type { PrimaryIdentity } from '../../archive/archive-identity.js';
import { compareBinlogNames } from '../../archive/archive-layout.js';
import {
  DEFAULT_REMOTE_CLOSE_TIMEOUT_MS,
  DEFAULT_REMOTE_CONNECT_TIMEOUT_MS,
  DEFAULT_REMOTE_REQUEST_TIMEOUT_MS,
  DEFAULT_STOP_REQUEST_GRACE_MS,
  DEFAULT_WIRE_CONTROL_FRAME_BYTES_MAX,
  DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX,
  DEFAULT_WIRE_FRAME_BYTES_MAX,
  DEFAULT_WIRE_FRAME_EVENTS_MAX,
  DEFAULT_WIRE_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_WIRE_HEARTBEAT_INTERVAL_MS,
  DEFAULT_WIRE_IDLE_TIMEOUT_MS,
  WIRE_PROTOCOL_VERSION,
} from '../../config/defaults.js';
import type { BinlogRecord, DurablePoint, ResumePoint } from '../../core/binlog-record.js';
import { assert } from '../../core/assert.js';
import { HotspareError, errorMessage } from '../../core/errors.js';
import { systemClock, type Clock } from '../../platform/clock.js';
import type { VolumeReading } from '../../platform/volume-poller.js';
import type { Logger } from '../../platform/logger.js';
import { FrameType, wireError, type Frame } from '../../wire/wire-frame.js';
import {
  decodeAck,
  decodePingVolume,
  type AckVolume,
  decodeFileResponse,
  decodeJson,
  decodeWelcome,
  agentCodeForRefusal,
  encodableEvent,
  encodedEventBytes,
  encodeEventPieces,
  encodeEvents,
  EVENTS_FRAME_OVERHEAD_BYTES,
  encodeFileRequest,
  encodeJson,
  problemSchema,
  type FileArgs,
  type FileOpCode,
  type FileResponse,
  type Hello,
} from '../../wire/wire-messages.js';
import { WireSocket } from '../../wire/wire-socket.js';
import type { ReplicaSession, ReplicaTarget } from '../replica-target.js';
import { problemError, RemoteArchiveFiles } from './remote-archive-files.js';
import { BaseStaging, StagedBaseFiles } from './staged-base-files.js';
import type { ArchiveFiles } from '../../archive/archive-files.js';
import { whenAborted } from '../../platform/when-aborted.js';
import { within } from '../../platform/within.js';

export interface RemoteTargetOptions {
  name: string;
  /** HOST:PORT of `hotspare receive`. */
  address: string;
  tokenFile: string;
  tls?: { ca?: string | undefined; servername?: string | undefined } | undefined;
  logger: Logger;
  /** Dates the wire's heartbeats and idle timeout; the system clock by default. */
  clock?: Clock;
  /**
   * A folder on the agent's disk (in its stateDir) where base backups are staged and uploaded
   * from, resumably (see StagedBaseFiles). Without it a base streams to the standby directly.
   */
  baseStagingDir?: string | undefined;
  /** At most this many bytes of one staged base (DEFAULT_BASE_STAGING_BYTES_MAX when not given). */
  baseStagingBytesMax?: number | undefined;
  /** Who connects, the same across the agent's restarts (loadAgentId); a new one per target without it. */
  agentId?: string | undefined;
  /** Told the receiver's archive volume (size, room) whenever it reports it (ACK, WELCOME, PING). */
  onVolume?: ((reading: VolumeReading | undefined) => void) | undefined;
  /** Aborted when the agent stops: a staged base's upload ends then and resumes at the next start. */
  stopSignal?: AbortSignal | undefined;
  limits?: Partial<RemoteLimits>;
}

export interface RemoteLimits {
  connectTimeoutMs: number;
  handshakeTimeoutMs: number;
  heartbeatIntervalMs: number;
  idleTimeoutMs: number;
  closeTimeoutMs: number;
  requestTimeoutMs: number;
  /** Events in hand are sent together in one EVENTS frame of up to this many bytes; a larger event in EVENT_PIECE frames of this size. */
  eventBatchBytesMax: number;
}

/**
 * A standby reached over the network: `hotspare receive` on the other end writes the archive.
 * Each open() is one connection: connect (TCP or TLS), HELLO with the token and the primary's
 * identity, and the receiver's durable resume point in return. Every failure is a
 * HotspareError (RECEIVER_UNREACHABLE, RECEIVER_REFUSED, RECEIVER_LOST, or the receiver's own
 * code), so the pipeline retries it with backoff like any other.
 */
export class RemoteTarget implements ReplicaTarget {
  readonly type = 'remote';
  readonly name: string;
  /** The agent's id (see loadAgentId): a reconnect of this agent replaces its own stale connection. */
  readonly agentId: string;
  readonly #limits: RemoteLimits;
  /** Shared by every session: a staged base outlives the connection it was taken on. */
  readonly #staging: BaseStaging | undefined;

  constructor(readonly options: RemoteTargetOptions) {
    this.name = options.name;
    this.agentId = options.agentId ?? randomUUID();
    this.#staging = options.baseStagingDir === undefined ? undefined : new BaseStaging(options.baseStagingDir, options.logger, options.baseStagingBytesMax, options.stopSignal);
    this.#limits = {
      connectTimeoutMs: DEFAULT_REMOTE_CONNECT_TIMEOUT_MS,
      handshakeTimeoutMs: DEFAULT_WIRE_HANDSHAKE_TIMEOUT_MS,
      heartbeatIntervalMs: DEFAULT_WIRE_HEARTBEAT_INTERVAL_MS,
      idleTimeoutMs: DEFAULT_WIRE_IDLE_TIMEOUT_MS,
      closeTimeoutMs: DEFAULT_REMOTE_CLOSE_TIMEOUT_MS,
      requestTimeoutMs: DEFAULT_REMOTE_REQUEST_TIMEOUT_MS,
      eventBatchBytesMax: DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX,
      ...options.limits,
    };
    // The receiver refuses a frame larger than its limit.
    assert(this.#limits.eventBatchBytesMax <= DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX, 'eventBatchBytesMax is at most DEFAULT_WIRE_EVENT_BATCH_BYTES_MAX');
  }

  async open(identity: PrimaryIdentity): Promise<ReplicaSession> {
    const token = await readSecret(this.options.tokenFile, 'tokenFile');
    const socket = await this.#connect();
    const session = new RemoteSession(socket, this.#limits, this.options.address, this.options.logger, this.options.clock, this.#staging, this.options.onVolume, this.options.stopSignal);
    const hello: Hello = { protocol: WIRE_PROTOCOL_VERSION, token, primary: identity, agentId: this.agentId };
    await session.handshake(hello);
    return session;
  }

  async #connect(): Promise<Socket> {
    const { host, port } = splitAddress(this.options.address);
    const tls = this.options.tls;
    const ca = tls?.ca === undefined ? undefined : await readSecret(tls.ca, 'tls.ca');
    return new Promise<Socket>((resolve, reject) => {
      const socket: Socket =
        tls === undefined
          ? connectTcp({ host, port })
          : connectTls(tlsOptions(host, port, ca, tls.servername));
      const timer = setTimeout(() => socket.destroy(new Error(`no connection within ${this.#limits.connectTimeoutMs} ms`)), this.#limits.connectTimeoutMs);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        // (Node sets authorizationError before it ends a connection whose certificate failed a
        // check; until then it is null, as after a refused or timed-out connect, which are outages.)
        if (tls !== undefined && (isTlsFailure(err) || (socket as TLSSocket).authorizationError != null)) {
          // Reached, but its certificate is not one this replica trusts (or TLS itself failed):
          // an operator's fix, not an outage that passes, so not RECEIVER_UNREACHABLE.
          reject(
            new HotspareError('RECEIVER_TLS', `TLS with the receiver at ${this.options.address} failed: ${errorMessage(err)}`, {
              hint: "check the replica's tls.ca (the CA that signed the receiver's --tls-cert) and tls.servername (a name or address the certificate was made for), and that the receiver runs with --tls-cert and --tls-key",
              cause: err,
            }),
          );
          return;
        }
        reject(
          new HotspareError('RECEIVER_UNREACHABLE', `cannot reach the receiver at ${this.options.address}: ${errorMessage(err)}`, {
            hint: 'is `hotspare receive` running there, and the address, port, firewall and TLS settings right? The agent retries.',
            cause: err,
          }),
        );
      };
      socket.once('error', onError);
      socket.once(tls === undefined ? 'connect' : 'secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        resolve(socket);
      });
    });
  }
}

/** One EVENTS frame sent and not yet acknowledged: where its last event ends, and its size. */
interface InFlight {
  file: string;
  end: number;
  bytes: number;
}

interface PendingRequest {
  resolve: (response: FileResponse) => void;
  reject: (err: unknown) => void;
  timer: NodeJS.Timeout;
}

/** One connection to a receiver, handshaken: the ReplicaSession the pipeline streams into. */
class RemoteSession implements ReplicaSession {
  resume: ResumePoint | undefined;
  readonly files: ArchiveFiles;
  readonly #wire: WireSocket;
  readonly #durable = new Subject<DurablePoint>();
  readonly #inflight: InFlight[] = [];
  #pendingBytes = 0;
  /** Events appended in this turn of the event loop, sent together at its end. */
  #batch: BinlogRecord[] = [];
  /** The batch's size in a frame (event bytes and metadata), and its event bytes alone. */
  #batchBytes = 0;
  #batchSize = 0;
  #batchScheduled = false;
  #failure: HotspareError | undefined;
  #handshake: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  #byeOk: (() => void) | undefined;
  #closing = false;
  #gone: Promise<void>;
  readonly #requests = new Map<number, PendingRequest>();
  /** Stops listening for the agent's stop (see stopSignal). */
  readonly #stopListening: () => void;
  #nextRequestId = 1;
  readonly #clock: Clock;

  constructor(
    socket: Socket,
    private readonly limits: RemoteLimits,
    private readonly address: string,
    private readonly log: Logger,
    clock: Clock | undefined,
    staging: BaseStaging | undefined,
    /** Told the receiver's archive volume whenever a frame carries it (ACK, WELCOME, PING). */
    private readonly onVolume?: ((reading: VolumeReading | undefined) => void) | undefined,
    /** The agent's stop: file operations then wait at most DEFAULT_STOP_REQUEST_GRACE_MS. */
    private readonly stopSignal?: AbortSignal | undefined,
  ) {
    this.#clock = clock ?? systemClock;
    let markGone!: () => void;
    this.#gone = new Promise((r) => (markGone = r));
    this.#wire = new WireSocket(socket, {
      clock,
      frameBytesMax: DEFAULT_WIRE_CONTROL_FRAME_BYTES_MAX,
      heartbeatIntervalMs: limits.heartbeatIntervalMs,
      idleTimeoutMs: limits.idleTimeoutMs,
      onFrame: (frame) => this.#onFrame(frame),
      // A receiver's heartbeat may carry its volume (an empty one, from before that, says nothing).
      onPing: (payload) => {
        const volume = decodePingVolume(payload);
        if (volume !== undefined) this.#reportVolume(volume);
      },
      onClose: (err) => {
        this.#onClose(err);
        markGone();
      },
    });
    this.#stopListening = whenAborted(stopSignal, () => {
      for (const [id, pending] of this.#requests) {
        clearTimeout(pending.timer);
        pending.timer = this.#requestTimer(id, pending.reject);
      }
    });
    const remote = new RemoteArchiveFiles((op, args, data) => this.#request(op, args, data));
    this.files = staging === undefined ? remote : new StagedBaseFiles(remote, staging);
  }

  get pendingBytes(): number {
    return this.#pendingBytes;
  }

  get durable$(): Observable<DurablePoint> {
    return this.#durable.asObservable();
  }

  handshake(hello: Hello): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#fail(new HotspareError('RECEIVER_UNREACHABLE', `the receiver at ${this.address} did not answer the handshake within ${this.limits.handshakeTimeoutMs} ms`, { hint: 'is that port a `hotspare receive`? The agent retries.' }));
      }, this.limits.handshakeTimeoutMs);
      this.#handshake = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.#wire.send(FrameType.HELLO, [encodeJson(hello)]);
    });
  }

  append(record: BinlogRecord): void {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closing) throw new Error('append after close');
    if (!encodableEvent(record)) throw new Error('binlog file name or GTID too long for the wire');
    const size = record.bytes.length;
    // A frame's size counts the events' metadata too, so that no frame exceeds the batch limit.
    const encoded = encodedEventBytes(record);
    const frameMax = this.limits.eventBatchBytesMax - EVENTS_FRAME_OVERHEAD_BYTES;
    if (this.#batch.length > 0 && (this.#batchBytes + encoded > frameMax || this.#batch.length >= DEFAULT_WIRE_FRAME_EVENTS_MAX)) this.#sendBatch();
    this.#pendingBytes += size;
    if (encoded > frameMax) {
      // Larger than a frame: the event travels alone, in pieces the receiver writes as they come.
      this.#inflight.push({ file: record.file, end: record.offset + size, bytes: size });
      if (this.#failure === undefined) for (const parts of encodeEventPieces(record, this.limits.eventBatchBytesMax)) this.#wire.send(FrameType.EVENT_PIECE, parts);
      return;
    }
    this.#batch.push(record);
    this.#batchBytes += encoded;
    this.#batchSize += size;
    if (this.#batchBytes >= frameMax) {
      this.#sendBatch();
    } else if (!this.#batchScheduled) {
      // The events of every socket read in this turn of the event loop go out in one frame
      // and one write; no timer, so a lone event leaves as soon as this turn ends.
      this.#batchScheduled = true;
      setImmediate(() => {
        this.#batchScheduled = false;
        this.#sendBatch();
      });
    }
  }

  #sendBatch(): void {
    const batch = this.#batch;
    const last = batch[batch.length - 1];
    if (last === undefined) return;
    this.#batch = [];
    this.#inflight.push({ file: last.file, end: last.offset + last.bytes.length, bytes: this.#batchSize });
    this.#batchBytes = 0;
    this.#batchSize = 0;
    if (this.#failure === undefined) this.#wire.send(FrameType.EVENTS, encodeEvents(batch));
  }

  async close(): Promise<void> {
    if (this.#closing) return this.#gone;
    this.#closing = true;
    this.#sendBatch();
    if (this.#failure === undefined && !this.#wire.closed) {
      const done = new Promise<void>((resolve) => (this.#byeOk = resolve));
      this.#wire.send(FrameType.BYE);
      const answered = await within(Promise.race([done.then(() => 'ok' as const), this.#gone.then(() => 'gone' as const)]), this.limits.closeTimeoutMs);
      const outcome = answered?.value ?? 'timeout';
      if (outcome !== 'ok') this.log.warn({ outcome, unacknowledgedBytes: this.#pendingBytes }, 'the receiver did not confirm the end of the session');
    }
    this.#wire.close(undefined);
    await this.#gone;
  }

  #onFrame(frame: Frame): void {
    if (this.#handshake !== undefined) {
      const handshake = this.#handshake;
      this.#handshake = undefined;
      if (frame.type === FrameType.WELCOME) {
        let welcome;
        try {
          welcome = decodeWelcome(frame.payload);
        } catch (err) {
          this.#fail(err as HotspareError);
          handshake.reject(err);
          return;
        }
        this.resume = welcome.resume ?? undefined;
        this.#reportVolume(welcome.volume);
        this.#wire.setLimit(DEFAULT_WIRE_FRAME_BYTES_MAX);
        handshake.resolve();
        return;
      }
      if (frame.type === FrameType.REFUSE) {
        let problem;
        try {
          problem = decodeJson(frame.payload, problemSchema, 'REFUSE');
        } catch (err) {
          // A REFUSE we cannot read still ends the handshake (the handshake is no longer
          // pending, so nothing else would settle it).
          this.#fail(err as HotspareError);
          handshake.reject(err);
          return;
        }
        // Archive codes keep their name (the lag endpoint shows them as an archive error).
        const code = agentCodeForRefusal(problem.code);
        const err = new HotspareError(code, `the receiver at ${this.address} refused the agent (${problem.code}): ${problem.message}`, { hint: problem.hint });
        this.#fail(err);
        handshake.reject(err);
        return;
      }
      const err = wireError(`expected WELCOME or REFUSE, received frame type ${frame.type}`);
      this.#fail(err);
      handshake.reject(err);
      return;
    }
    switch (frame.type) {
      case FrameType.ACK:
        {
          const ack = decodeAck(frame.payload);
          // An ACK without it (the receiver could not read its volume, or predates the field)
          // clears the reading: none rather than a stale one, as for a file replica.
          this.#reportVolume(ack.volume);
          this.#onAck(ack.point);
        }
        return;
      case FrameType.FILE_RESPONSE: {
        const response = decodeFileResponse(frame.payload);
        const pending = this.#requests.get(response.id);
        if (pending === undefined) return;
        this.#requests.delete(response.id);
        clearTimeout(pending.timer);
        if (response.result.error !== undefined) pending.reject(problemError(response.result.error));
        else pending.resolve(response);
        return;
      }
      case FrameType.ERROR:
        this.#fail(problemError(decodeJson(frame.payload, problemSchema, 'ERROR')));
        return;
      case FrameType.BYE_OK:
        this.#byeOk?.();
        return;
      default:
        throw wireError(`unexpected frame type ${frame.type} from the receiver`);
    }
  }

  #reportVolume(volume: AckVolume | undefined): void {
    // An age beyond the epoch (a receiver's clock gone wrong; the wire allows any) would make a
    // time no Date can show, and every /lag request would fail on it.
    const nowMs = this.#clock.nowMs();
    this.onVolume?.(volume === undefined ? undefined : { totalBytes: volume.totalBytes, freeBytes: volume.freeBytes, atMs: nowMs - Math.min(volume.ageMs, nowMs) });
  }

  #onAck(point: DurablePoint): void {
    while (this.#inflight.length > 0) {
      const head = this.#inflight[0] as InFlight;
      const order = compareBinlogNames(head.file, point.file);
      if (order > 0 || (order === 0 && head.end > point.position)) break;
      this.#inflight.shift();
      this.#pendingBytes -= head.bytes;
    }
    this.#durable.next(point);
  }

  #request(op: FileOpCode, args: FileArgs, data: Buffer = Buffer.alloc(0)): Promise<FileResponse> {
    if (this.#failure !== undefined) return Promise.reject(this.#failure);
    const id = this.#nextRequestId;
    this.#nextRequestId = this.#nextRequestId >= 0xffffffff ? 1 : this.#nextRequestId + 1;
    return new Promise<FileResponse>((resolve, reject) => {
      this.#requests.set(id, { resolve, reject, timer: this.#requestTimer(id, reject) });
      this.#wire.send(FrameType.FILE_REQUEST, encodeFileRequest({ id, op, args, data }));
    });
  }

  /** Fails request `id` when its answer is late: after the request timeout, or, once the agent stops, after the stop's grace. */
  #requestTimer(id: number, reject: (err: unknown) => void): NodeJS.Timeout {
    const stopping = this.stopSignal?.aborted === true;
    const ms = stopping ? Math.min(DEFAULT_STOP_REQUEST_GRACE_MS, this.limits.requestTimeoutMs) : this.limits.requestTimeoutMs;
    return setTimeout(() => {
      this.#requests.delete(id);
      reject(
        stopping
          ? new HotspareError('RECEIVER_TIMEOUT', `the agent is stopping, and the receiver did not answer an archive file operation within ${ms} ms`, { hint: 'the operation is shipped again at the next start' })
          : new HotspareError('RECEIVER_TIMEOUT', `the receiver did not answer an archive file operation within ${ms} ms`, { hint: 'check the standby\'s disk and the receiver log' }),
      );
    }, ms);
  }

  #fail(err: HotspareError): void {
    this.#failure ??= err;
    this.#wire.close(err);
  }

  #onClose(err: Error | undefined): void {
    this.#stopListening();
    const failure =
      this.#failure ??
      new HotspareError(this.#handshake !== undefined ? 'RECEIVER_UNREACHABLE' : 'RECEIVER_LOST', `the connection to the receiver at ${this.address} ended${err === undefined ? '' : `: ${err.message}`}`, {
        hint: 'the agent reconnects and resumes from what the standby has made durable',
        ...(err === undefined ? {} : { cause: err }),
      });
    this.#failure = failure;
    this.#handshake?.reject(failure);
    this.#handshake = undefined;
    for (const [id, pending] of this.#requests) {
      clearTimeout(pending.timer);
      pending.reject(failure);
      this.#requests.delete(id);
    }
    if (this.#closing && err === undefined) this.#durable.complete();
    else this.#durable.error(failure);
  }
}

function splitAddress(address: string): { host: string; port: number } {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(address.slice(at + 1)) };
}

function tlsOptions(host: string, port: number, ca: string | undefined, servername: string | undefined): ConnectionOptions {
  const options: ConnectionOptions = { host, port, minVersion: 'TLSv1.2' };
  if (ca !== undefined) options.ca = ca;
  const name = servername ?? (isIp(host) ? undefined : host);
  if (name !== undefined && !isIp(name)) options.servername = name;
  // An address is no server name to send (RFC 6066; Node warns on stderr, outside the JSON log),
  // but the certificate is still checked against it.
  else if (name !== undefined) options.checkServerIdentity = (_host, cert) => checkServerIdentity(name, cert);
  return options;
}

/** A failure of TLS itself (the certificate, its name, the protocol), not of reaching the host. */
function isTlsFailure(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code ?? '';
  return /^(ERR_TLS_|ERR_SSL_)|CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|HOSTNAME_MISMATCH/.test(code) || /certificate|SSL routines|wrong version number/i.test(err.message);
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

async function readSecret(path: string, field: string): Promise<string> {
  try {
    return (await readFile(path, 'utf8')).trim();
  } catch (err) {
    throw new HotspareError('CONFIG_FILE_UNREADABLE', `cannot read ${field} ${path}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, {
      hint: `make ${path} readable by the agent`,
    });
  }
}
