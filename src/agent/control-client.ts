import { connect } from 'node:net';
import { DEFAULT_CONTROL_MESSAGE_BYTES_MAX } from '../config/defaults.js';
import { HotspareError } from '../core/errors.js';
import { controlResponseSchema, type ControlRequest, type ControlResponse } from './control-protocol.js';

/** Socket errors that mean no agent is listening (none runs, or one died and left the file). */
const NO_AGENT_CODES = new Set(['ENOENT', 'ECONNREFUSED', 'ENOTSOCK']);

/**
 * Sends one request to a running agent's control socket and waits for its answer (a base
 * backup can take as long as it takes; the wait ends with the answer or with the agent).
 * Resolves undefined when no agent listens there.
 */
export function askAgent(path: string, request: ControlRequest): Promise<ControlResponse | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    let connected = false;
    let received = '';
    socket.once('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(request)}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('utf8');
      if (received.length > DEFAULT_CONTROL_MESSAGE_BYTES_MAX) socket.destroy(new Error('answer too long'));
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (!connected && NO_AGENT_CODES.has(err.code ?? '')) resolve(undefined);
      else reject(gone(path, err.message));
    });
    socket.once('end', () => {
      const line = received.split('\n')[0] ?? '';
      try {
        resolve(controlResponseSchema.parse(JSON.parse(line)) as ControlResponse);
      } catch {
        reject(gone(path, 'the connection ended without an answer'));
      }
    });
  });
}

function gone(path: string, why: string): HotspareError {
  return new HotspareError('AGENT_GONE', `the agent on ${path} did not answer: ${why}`, {
    hint: 'the agent may have stopped; see its log, and `hotspare status --archive DIR` of each replica for the bases that completed before it did; then run `hotspare base` again',
  });
}
