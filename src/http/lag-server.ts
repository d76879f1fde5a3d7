import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { healthOf, type LagReport } from '../agent/lag-monitor.js';
import { DEFAULT_LAG_HTTP_CONNECTIONS_MAX, DEFAULT_LAG_HTTP_REQUEST_TIMEOUT_MS, DEFAULT_LAG_RENDER_INTERVAL_MS, DEFAULT_METRICS_RENDER_INTERVAL_MS } from '../config/defaults.js';
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
  /** /lag and /healthz are rendered at most this often (DEFAULT_LAG_RENDER_INTERVAL_MS). */
  renderIntervalMs?: number;
  /** /metrics is rendered at least this often while the lag figures stay the same. */
  metricsRenderIntervalMs?: number;
  /** Connections at once (DEFAULT_LAG_HTTP_CONNECTIONS_MAX). */
  connectionsMax?: number;
}

/** One rendering of the report, served as is until the next one. */
interface Snapshot {
  renderedAtMs: number;
  report: LagReport;
  lagText: string;
  lagBody: Buffer;
  healthStatus: 200 | 503;
  healthBody: Buffer;
}

const JSON_TYPE = 'application/json';

/**
 * The agent's lag endpoint on plain node:http: GET /lag (JSON), GET /metrics (Prometheus
 * text) and GET /healthz (200, or 503 with the reasons). Read-only; anything else is 404 or
 * 405, and a failure inside a handler is a 500 that never stops the server.
 *
 * Bodies are rendered ahead of the requests that read them: /lag and /healthz at most once
 * per render interval (a request within it gets the same bytes, so the figures are at most
 * that old), /metrics when the lag figures changed or its own interval passed. Whatever the
 * request rate, the agent renders at most a bounded number of bodies per second, and a
 * request costs a lookup and a socket write.
 */
export class LagServer {
  readonly #server: Server;
  readonly #metrics = new LagMetrics();
  readonly #renderIntervalMs: number;
  readonly #metricsRenderIntervalMs: number;
  #snapshot: Snapshot | undefined;
  /** /metrics as last rendered, for the snapshot it was rendered from. */
  #metricsBody: { from: Snapshot; renderedAtMs: number; body: Promise<Buffer> } | undefined;

  private constructor(private readonly options: LagServerOptions) {
    this.#renderIntervalMs = options.renderIntervalMs ?? DEFAULT_LAG_RENDER_INTERVAL_MS;
    this.#metricsRenderIntervalMs = options.metricsRenderIntervalMs ?? DEFAULT_METRICS_RENDER_INTERVAL_MS;
    // Bounded: each connection holds a descriptor of the process that also holds the dump
    // connections, the archive files and the spool reads; idle ones by the thousand (a scanner,
    // a client that leaks them) would use them all up. A request must come whole within the
    // timeout, so a slow one cannot hold its slot.
    this.#server = createServer({ requestTimeout: DEFAULT_LAG_HTTP_REQUEST_TIMEOUT_MS, headersTimeout: DEFAULT_LAG_HTTP_REQUEST_TIMEOUT_MS }, (req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        options.logger.error({ err, url: req.url }, 'lag endpoint request failed');
        if (!res.headersSent) send(res, 500, JSON_TYPE, Buffer.from(JSON.stringify({ error: 'internal error' })));
        else res.destroy();
      });
    });
    // Monitoring keeps connections open between scrapes; do not let them hold the agent at exit.
    this.#server.keepAliveTimeout = 5_000;
    this.#server.maxConnections = options.connectionsMax ?? DEFAULT_LAG_HTTP_CONNECTIONS_MAX;
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
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://agent').pathname;
    } catch {
      // A target URL can not parse (`//`, say): the client's mistake, not the agent's failure,
      // so no error line in the log for each one.
      send(res, 400, JSON_TYPE, Buffer.from(JSON.stringify({ error: 'bad request target', endpoints: ['/lag', '/metrics', '/healthz'] })));
      return;
    }
    if (path !== '/lag' && path !== '/metrics' && path !== '/healthz') {
      send(res, 404, JSON_TYPE, Buffer.from(JSON.stringify({ error: 'not found', endpoints: ['/lag', '/metrics', '/healthz'] })));
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.setHeader('allow', 'GET, HEAD');
      send(res, 405, JSON_TYPE, Buffer.from(JSON.stringify({ error: 'method not allowed' })));
      return;
    }
    const nowMs = this.options.clock.nowMs();
    const snapshot = this.#current(nowMs);
    if (path === '/lag') {
      send(res, 200, JSON_TYPE, snapshot.lagBody);
    } else if (path === '/healthz') {
      send(res, snapshot.healthStatus, JSON_TYPE, snapshot.healthBody);
    } else {
      send(res, 200, this.#metrics.contentType, await this.#metricsFor(snapshot, nowMs));
    }
  }

  /** The snapshot to serve now: the last one while it is younger than the render interval. */
  #current(nowMs: number): Snapshot {
    const last = this.#snapshot;
    const age = last === undefined ? Infinity : nowMs - last.renderedAtMs;
    if (last !== undefined && age >= 0 && age < this.#renderIntervalMs) return last;
    const report = this.options.report(nowMs);
    const lagText = `${JSON.stringify(report, null, 2)}\n`;
    if (last !== undefined && last.lagText === lagText) {
      // Nothing changed: keep the same snapshot, so that /metrics rendered from it stays valid.
      last.renderedAtMs = nowMs;
      return last;
    }
    const health = healthOf(report);
    const snapshot: Snapshot = {
      renderedAtMs: nowMs,
      report,
      lagText,
      lagBody: Buffer.from(lagText),
      healthStatus: health.healthy ? 200 : 503,
      // The contract's body: a JSON list of reasons (empty when healthy), each naming its replica.
      healthBody: Buffer.from(`${JSON.stringify(health.reasons, null, 2)}\n`),
    };
    this.#snapshot = snapshot;
    return snapshot;
  }

  /**
   * /metrics from `snapshot`, so that its lag figures are those /lag serves at this moment;
   * rendered again when the snapshot changed or the process metrics are older than their
   * interval. Concurrent requests share one rendering.
   */
  #metricsFor(snapshot: Snapshot, nowMs: number): Promise<Buffer> {
    const last = this.#metricsBody;
    if (last !== undefined && last.from === snapshot && nowMs - last.renderedAtMs < this.#metricsRenderIntervalMs && nowMs >= last.renderedAtMs) {
      return last.body;
    }
    const body = this.#metrics.render(snapshot.report).then((text) => Buffer.from(text));
    const entry = { from: snapshot, renderedAtMs: nowMs, body };
    this.#metricsBody = entry;
    // A failed rendering is not kept: the next request tries again.
    body.catch(() => {
      if (this.#metricsBody === entry) this.#metricsBody = undefined;
    });
    return body;
  }
}

function send(res: ServerResponse, status: number, contentType: string, body: Buffer): void {
  res.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': body.length });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
