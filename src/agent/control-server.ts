import { chmod, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { DEFAULT_CONTROL_CLOSE_WAIT_MS, DEFAULT_CONTROL_CONNECTIONS_MAX, DEFAULT_CONTROL_MESSAGE_BYTES_MAX } from '../config/defaults.js';
import { HotspareError, errorMessage } from '../core/errors.js';
import type { Logger } from '../platform/logger.js';
import { within } from '../platform/within.js';
import { controlRequestSchema, UNIX_SOCKET_PATH_BYTES_MAX, type ControlRequest, type ControlResponse } from './control-protocol.js';

export interface ControlServerOptions {
  path: string;
  handle: (request: ControlRequest) => Promise<ControlResponse>;
  logger: Logger;
}

/**
 * The agent's end of the control socket (see control-protocol.ts). A socket file left by an
 * agent that died is replaced; one that another live process answers on is refused.
 */
export class ControlServer {
  readonly #sockets = new Set<Socket>();
  /** Answers being worked out or written: close() lets them reach their askers first. */
  readonly #answering = new Set<Promise<void>>();

  private constructor(
    private readonly server: Server,
    readonly path: string,
  ) {}

  /** Listens, or returns undefined (with a warning) when the path cannot hold a Unix socket. */
  static async listen(options: ControlServerOptions): Promise<ControlServer | undefined> {
    const { path, logger } = options;
    if (Buffer.byteLength(path) > UNIX_SOCKET_PATH_BYTES_MAX) {
      logger.warn({ path }, `the control socket path is longer than ${UNIX_SOCKET_PATH_BYTES_MAX} bytes; \`hotspare base\` cannot reach this agent (choose a shorter stateDir)`);
      return undefined;
    }
    if (await answers(path)) {
      throw new HotspareError('CONTROL_SOCKET_IN_USE', `another process answers on ${path}`, {
        hint: 'another agent runs with the same stateDir; stop it, or give each agent its own stateDir',
      });
    }
    await rm(path, { force: true });
    const server = createServer();
    const control = new ControlServer(server, path);
    server.maxConnections = DEFAULT_CONTROL_CONNECTIONS_MAX;
    server.on('connection', (socket) => control.#serve(socket, options));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    // Whoever can connect can start base backups on the primary: the agent's user only.
    await chmod(path, 0o600);
    server.on('error', (err) => logger.warn({ err }, 'control socket error'));
    logger.info({ path }, 'control socket listening');
    return control;
  }

  /**
   * Stops listening; answers in progress get up to DEFAULT_CONTROL_CLOSE_WAIT_MS to reach their
   * askers (the agent abandons its base backups first, so a `hotspare base` waiting on one hears
   * BASE_ABORTED instead of a dropped connection), then every connection is dropped.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    await within(Promise.all(this.#answering), DEFAULT_CONTROL_CLOSE_WAIT_MS);
    for (const socket of this.#sockets) socket.destroy();
    await closed;
    await rm(this.path, { force: true });
  }

  #serve(socket: Socket, options: ControlServerOptions): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
    socket.on('error', () => undefined);
    let received = '';
    const onData = (chunk: Buffer): void => {
      received += chunk.toString('utf8');
      const end = received.indexOf('\n');
      if (end < 0) {
        if (received.length > DEFAULT_CONTROL_MESSAGE_BYTES_MAX) socket.destroy();
        return;
      }
      socket.off('data', onData);
      const answering = this.#answer(received.slice(0, end), options).then(
        (response) =>
          new Promise<void>((resolve) => {
            if (socket.destroyed) return resolve();
            socket.once('close', () => resolve());
            socket.end(`${JSON.stringify(response)}\n`);
          }),
      );
      this.#answering.add(answering);
      void answering.finally(() => this.#answering.delete(answering));
    };
    socket.on('data', onData);
  }

  async #answer(line: string, options: ControlServerOptions): Promise<ControlResponse> {
    try {
      const parsed = controlRequestSchema.safeParse(JSON.parse(line));
      if (!parsed.success) {
        return { ok: false, error: { code: 'CONTROL_BAD_REQUEST', message: `not a control request: ${parsed.error.issues[0]?.message ?? ''}`, hint: 'use `hotspare base`' } };
      }
      options.logger.info({ request: parsed.data }, 'control request');
      return await options.handle(parsed.data);
    } catch (err) {
      if (err instanceof HotspareError) return { ok: false, error: { code: err.code, message: err.message, hint: err.hint } };
      options.logger.error({ err }, 'control request failed');
      return { ok: false, error: { code: 'INTERNAL', message: errorMessage(err), hint: 'see the agent log' } };
    }
  }
}

/** Whether a live process accepts connections on a Unix socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
