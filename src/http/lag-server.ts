import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { healthOf, type LagReport } from '../agent/lag-monitor.js';
import { HotspareError } from '../core/errors.js';
import type { Clock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { LagMetrics } from './lag-metrics.js';

export interface LagServerOptions {
  host: string;
  port: number;
  /** The current report, from memory: a request never waits for MySQL. */
  report: (nowMs: number) => LagReport;
  clock: Clock;
  logger: Logger;
}

/**
 * The agent's lag endpoint on plain node:http: GET /lag (JSON), GET /metrics (Prometheus
 * text) and GET /healthz (200, or 503 with the reasons). Read-only; anything else is 404 or
 * 405, and a failure inside a handler is a 500 that never stops the server.
 */
export class LagServer {
  readonly #server: Server;
  readonly #metrics = new LagMetrics();

  private constructor(private readonly options: LagServerOptions) {
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url }, 'lag endpoint request failed');
        if (!res.headersSent) send(res, 500, 'application/json', JSON.stringify({ error: 'internal error' }));
        else res.destroy();
      });
    });
    // Monitoring keeps connections open between scrapes; do not let them hold the agent at exit.
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Listens on host:port; rejects with HTTP_LISTEN (port in use, bad address). */
  static async listen(options: LagServerOptions): Promise<LagServer> {
    const server = new LagServer(options);
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        reject(
          new HotspareError('HTTP_LISTEN', `cannot listen on ${options.host}:${options.port} for the lag endpoint: ${err.code ?? err.message}`, {
            hint: 'choose a free address in http.listen, or stop what uses it',
            cause: err,
          }),
        );
      };
      server.#server.once('error', onError);
      server.#server.listen(options.port, options.host, () => {
        server.#server.off('error', onError);
        resolve();
      });
    });
    options.logger.info({ address: server.address }, 'lag endpoint listening');
    return server;
  }

  /** HOST:PORT actually bound (the port is chosen by the system when 0 was asked for). */
  get address(): string {
    const info = this.#server.address() as AddressInfo;
    return info.family === 'IPv6' ? `[${info.address}]:${info.port}` : `${info.address}:${info.port}`;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://agent').pathname;
    if (path !== '/lag' && path !== '/metrics' && path !== '/healthz') {
      send(res, 404, 'application/json', JSON.stringify({ error: 'not found', endpoints: ['/lag', '/metrics', '/healthz'] }));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, 'application/json', JSON.stringify({ error: 'method not allowed' }));
      return;
    }
    const report = this.options.report(this.options.clock.nowMs());
    if (path === '/lag') {
      send(res, 200, 'application/json', `${JSON.stringify(report, null, 2)}\n`);
    } else if (path === '/healthz') {
      const health = healthOf(report);
      const body = { status: health.healthy ? 'ok' : 'unhealthy', reasons: health.reasons };
      send(res, health.healthy ? 200 : 503, 'application/json', `${JSON.stringify(body, null, 2)}\n`);
    } else {
      send(res, 200, this.#metrics.contentType, await this.#metrics.render(report));
    }
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
