import type { Socket } from 'node:net';
import { HotspareError } from '../core/errors.js';
import { systemClock, type Clock } from '../platform/clock.js';
import { encodeFrame, FrameDecoder, FrameType, type Frame, type FrameTypeCode } from './wire-frame.js';

export interface WireSocketOptions {
  /** The limit before the handshake; raised with setLimit() once the peer is known. */
  frameBytesMax: number;
  heartbeatIntervalMs: number;
  idleTimeoutMs: number;
  /** Called for every frame but PING (which only proves the peer alive). A throw drops the connection. */
  onFrame(frame: Frame): void;
  /** Called once, when the connection is gone: `err` undefined for an orderly end. */
  onClose(err: Error | undefined): void;
  /** Dates the last frame sent and received (heartbeats, idle timeout); the system clock by default. */
  clock?: Clock;
  /** Told each PING's payload when it has one (the receiver's volume). A throw drops the connection, so it must not throw. */
  onPing?: (payload: Buffer) => void;
  /**
   * Drop the peer when what was sent to it has not drained for this long (it stopped
   * reading); no limit when absent (the agent's side: its receiver pauses reading while its
   * disk catches up, for as long as that takes).
   */
  writeStallMs?: number;
}

/**
 * A framed, heartbeated connection (TCP or TLS), used by both the agent and the receiver.
 * It sends a PING whenever it has been quiet for a heartbeat interval and drops the peer
 * after an idle timeout without any frame; any decoding error drops the connection.
 */
export class WireSocket {
  readonly #decoder: FrameDecoder;
  readonly #timer: NodeJS.Timeout;
  readonly #clock: Clock;
  #lastSentMs: number;
  #lastReceivedMs: number;
  /** When the last tick ran, and the ticks' interval: a gap far longer means this process did not run. */
  #lastTickMs: number;
  readonly #tickMs: number;
  #paused = false;
  /** Since when the socket's send buffer has been full without a drain (undefined while it is not). */
  #stalledSinceMs: number | undefined;
  #closed = false;
  #closeError: Error | undefined;

  constructor(
    readonly socket: Socket,
    private readonly options: WireSocketOptions,
  ) {
    this.#clock = options.clock ?? systemClock;
    this.#lastSentMs = this.#lastReceivedMs = this.#clock.nowMs();
    this.#decoder = new FrameDecoder(options.frameBytesMax);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err) => this.close(err));
    socket.on('end', () => this.close(undefined));
    socket.on('close', () => this.#finish());
    socket.on('drain', () => (this.#stalledSinceMs = undefined));
    const tick = Math.max(50, Math.min(options.heartbeatIntervalMs, options.idleTimeoutMs) / 4);
    this.#tickMs = tick;
    this.#lastTickMs = this.#lastSentMs;
    this.#timer = setInterval(() => this.#onTick(), tick);
    this.#timer.unref();
  }

  get closed(): boolean {
    return this.#closed;
  }

  get remote(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? '?'}`;
  }

  setLimit(frameBytesMax: number): void {
    this.#decoder.setLimit(frameBytesMax);
  }

  /** Sends one frame; false when the socket's buffer is full (the caller's flow control decides). */
  send(type: FrameTypeCode, parts: readonly Buffer[] = []): boolean {
    if (this.#closed) return false;
    this.#lastSentMs = this.#clock.nowMs();
    const buffers = encodeFrame(type, parts);
    this.socket.cork();
    let ok = true;
    for (const buffer of buffers) if (buffer.length > 0) ok = this.socket.write(buffer);
    this.socket.uncork();
    return ok;
  }

  /** Resolves once the socket's send buffer is below its mark again (or the connection is gone). */
  drained(): Promise<void> {
    if (this.#closed || !this.socket.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        this.socket.off('drain', done);
        this.socket.off('close', done);
        resolve();
      };
      this.socket.on('drain', done);
      this.socket.on('close', done);
    });
  }

  /** Reading is paused (receiver backpressure). */
  get readingPaused(): boolean {
    return this.#paused;
  }

  /** Stops reading (receiver backpressure); the idle clock stops too. */
  pauseReading(): void {
    if (this.#paused) return;
    this.#paused = true;
    this.socket.pause();
  }

  resumeReading(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#lastReceivedMs = this.#clock.nowMs();
    this.socket.resume();
  }

  /** Sends what is queued, then closes; with an error, destroys at once. */
  close(err: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = err;
    clearInterval(this.#timer);
    if (err === undefined) this.socket.end();
    else this.socket.destroy();
    // A socket that never connected may not emit 'close' after end(); make sure it finishes.
    setImmediate(() => this.#finish());
  }

  #finishCalled = false;
  #finish(): void {
    clearInterval(this.#timer);
    if (this.#finishCalled) return;
    if (!this.#closed) {
      this.#closed = true;
      this.#closeError = new HotspareError('WIRE_CLOSED', `connection to ${this.remote} closed`, { hint: 'the peer went away; the agent reconnects' });
    }
    this.#finishCalled = true;
    this.socket.destroy();
    this.options.onClose(this.#closeError);
  }

  #onData(chunk: Buffer): void {
    if (this.#closed) return;
    this.#lastReceivedMs = this.#clock.nowMs();
    try {
      for (const frame of this.#decoder.push(chunk)) {
        if (this.#closed) return;
        if (frame.type === FrameType.PING) {
          if (frame.payload.length > 0) this.options.onPing?.(frame.payload);
          continue;
        }
        this.options.onFrame(frame);
      }
    } catch (err) {
      this.close(err instanceof Error ? err : new Error(String(err)));
    }
  }

  #onTick(): void {
    if (this.#closed) return;
    const now = this.#clock.nowMs();
    const gapMs = now - this.#lastTickMs;
    this.#lastTickMs = now;
    if (gapMs > 4 * this.#tickMs) {
      // This process did not run for that long (stopped with SIGSTOP, a VM paused, a swap
      // storm): whatever the peer sent meanwhile waits in the socket, read after this timer.
      // The time away is not the peer's silence: blamed on it, a frozen receiver logged that the
      // agent went quiet.
      this.#lastReceivedMs += gapMs - this.#tickMs;
      this.#stalledSinceMs = this.#stalledSinceMs === undefined ? undefined : this.#stalledSinceMs + gapMs - this.#tickMs;
    }
    if (!this.#paused && now - this.#lastReceivedMs > this.options.idleTimeoutMs) {
      this.close(
        new HotspareError('WIRE_IDLE', `nothing heard from ${this.remote} for ${now - this.#lastReceivedMs} ms`, {
          hint: 'the peer or the network between is dead; the agent reconnects',
        }),
      );
      return;
    }
    const stallMs = this.options.writeStallMs;
    if (stallMs !== undefined && this.socket.writableNeedDrain) {
      this.#stalledSinceMs ??= now;
      if (now - this.#stalledSinceMs > stallMs) {
        this.close(
          new HotspareError('WIRE_STALLED', `${this.remote} has taken nothing sent to it for ${now - this.#stalledSinceMs} ms`, {
            hint: 'the peer stopped reading (or the network between stalled); an agent reconnects',
          }),
        );
        return;
      }
    } else this.#stalledSinceMs = undefined;
    if (now - this.#lastSentMs >= this.options.heartbeatIntervalMs) this.send(FrameType.PING);
  }
}
