import { connect, type Socket } from 'node:net';
import type { PrimaryIdentity } from '../../src/archive/archive-identity.js';
import { DEFAULT_WIRE_FRAME_BYTES_MAX, WIRE_PROTOCOL_VERSION } from '../../src/config/defaults.js';
import { encodeFrame, FrameDecoder, FrameType, type Frame, type FrameTypeCode } from '../../src/wire/wire-frame.js';
import { decodeFileResponse, encodeFileRequest, encodeJson, type FileArgs, type FileOpCode, type FileResponse } from '../../src/wire/wire-messages.js';

/**
 * A peer of `hotspare receive` that speaks the wire protocol frame by frame, for tests that
 * send what no agent would (a flood, a write past a file's end, requests it never reads).
 */
export interface RawWirePeer {
  socket: Socket;
  /** The next frame received (in order). */
  next(): Promise<Frame>;
  send(type: FrameTypeCode, parts: Buffer[]): void;
  /** Sends a FILE_REQUEST without waiting. */
  request(id: number, op: FileOpCode, args: FileArgs, data?: Buffer): void;
  /** The next frame, which must be a FILE_RESPONSE. */
  answer(): Promise<FileResponse>;
  /** HELLO with the token; resolves with the receiver's answer frame (WELCOME or REFUSE). */
  hello(token: string, primary: PrimaryIdentity, agentId: string): Promise<Frame>;
}

export async function rawWirePeer(port: number): Promise<RawWirePeer> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  const decoder = new FrameDecoder(DEFAULT_WIRE_FRAME_BYTES_MAX);
  const frames: Frame[] = [];
  let wake: (() => void) | undefined;
  socket.on('data', (chunk: Buffer) => {
    frames.push(...decoder.push(chunk));
    wake?.();
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const next = async (): Promise<Frame> => {
    while (frames.length === 0) await new Promise<void>((r) => (wake = r));
    return frames.shift() as Frame;
  };
  const send = (type: FrameTypeCode, parts: Buffer[]): void => {
    for (const b of encodeFrame(type, parts)) socket.write(b);
  };
  return {
    socket,
    next,
    send,
    request: (id, op, args, data = Buffer.alloc(0)) => send(FrameType.FILE_REQUEST, encodeFileRequest({ id, op, args, data })),
    answer: async () => {
      const frame = await next();
      if (frame.type !== FrameType.FILE_RESPONSE) throw new Error(`expected FILE_RESPONSE, received frame type ${frame.type}`);
      return decodeFileResponse(frame.payload);
    },
    hello: async (token, primary, agentId) => {
      send(FrameType.HELLO, [encodeJson({ protocol: WIRE_PROTOCOL_VERSION, token, primary, agentId })]);
      return next();
    },
  };
}
