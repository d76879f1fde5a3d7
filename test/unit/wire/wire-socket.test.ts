import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WireSocket } from '../../../src/wire/wire-socket.js';

/** The parts of a socket WireSocket uses; nothing is ever received on it here (a silent peer). */
function silentSocket(): Socket {
  const socket = Object.assign(new EventEmitter(), {
    remoteAddress: '127.0.0.1',
    remotePort: 40000,
    writableNeedDrain: false,
    setNoDelay: () => socket,
    cork: () => undefined,
    uncork: () => undefined,
    write: () => true,
    pause: () => socket,
    resume: () => socket,
    end: () => socket,
    destroy: () => socket,
  });
  return socket as unknown as Socket;
}

/**
 * Goal: a process that did not run for a while (SIGSTOP, a paused VM) does not blame its peer
 * for the silence; a peer that is really silent while the process runs is still dropped after the
 * idle timeout. Method: the tick timer driven by fake timers, the clock by the test.
 */
describe('WireSocket idle timeout', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('a jump of the clock between two ticks (this process stopped) is not the peer\'s silence; silence while it runs is', () => {
    let nowMs = 1_000_000;
    const closed: Array<Error | undefined> = [];
    const wire = new WireSocket(silentSocket(), {
      frameBytesMax: 1024,
      heartbeatIntervalMs: 2_000,
      idleTimeoutMs: 15_000,
      clock: { nowMs: () => nowMs },
      onFrame: () => undefined,
      onClose: (err) => closed.push(err),
    });
    // Ticks every 500 ms; the process stops for 60 s, then runs again.
    for (let i = 0; i < 4; i++) {
      nowMs += 500;
      vi.advanceTimersByTime(500);
    }
    nowMs += 60_000;
    vi.advanceTimersByTime(500);
    expect(wire.closed).toBe(false);
    // Then the peer is silent for longer than the idle timeout while this process runs: dropped.
    for (let i = 0; i < 32 && !wire.closed; i++) {
      nowMs += 500;
      vi.advanceTimersByTime(500);
    }
    expect(wire.closed).toBe(true);
    (wire.socket as unknown as EventEmitter).emit('close');
    expect(closed[0]?.message).toMatch(/^nothing heard from 127\.0\.0\.1:40000 for 1[5-6]\d\d\d ms$/);
  });
});
