import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy for tests that cuts every connection through it on demand or at an interval,
 * as a flaky network would: both ends see their connection reset mid-stream. It can also
 * slow what goes towards the target to a given rate, as a thin WAN link would.
 */
export class CuttingProxy {
  #timer: NodeJS.Timeout | undefined;
  cuts = 0;

  private constructor(
    readonly server: Server,
    readonly port: number,
    private readonly sockets: Set<Socket>,
  ) {}

  /** Set by cutAfterBytes(): each connection is reset once it has carried this many bytes to the target. */
  bytesPerConnection: number | undefined;
  /** Set by throttle(): bytes per second carried towards the target, per connection. */
  bytesPerSecond: number | undefined;

  static async start(target: { host: string; port: number }): Promise<CuttingProxy> {
    const sockets = new Set<Socket>();
    // Assigned once the server listens; connections only come after that.
    let proxy!: CuttingProxy;
    const server = createServer((client) => {
      const upstream = connect(target.port, target.host);
      sockets.add(client);
      sockets.add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      // A connection that has carried its share of bytes towards the target is reset. Towards
      // the target the bytes are forwarded here, not piped: a pipe resumes the client on the
      // target's 'drain', which would undo a throttle's pause.
      let carried = 0;
      client.on('data', (chunk: Buffer) => {
        carried += chunk.length;
        if (proxy.bytesPerConnection !== undefined && carried > proxy.bytesPerConnection) {
          proxy.cuts += 1;
          client.resetAndDestroy();
          upstream.resetAndDestroy();
          drop();
          return;
        }
        const full = !upstream.write(chunk);
        const rate = proxy.bytesPerSecond;
        if (!full && rate === undefined) return;
        // The next read waits for the target to drain, and on a slow link for as long as this chunk takes at its rate.
        client.pause();
        let waits = 0;
        const done = (): void => {
          waits -= 1;
          if (waits === 0) client.resume();
        };
        if (full) {
          waits += 1;
          upstream.once('drain', done);
        }
        if (rate !== undefined) {
          waits += 1;
          setTimeout(done, (chunk.length * 1000) / rate).unref();
        }
      });
      client.on('end', () => upstream.end());
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      upstream.pipe(client);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    proxy = new CuttingProxy(server, (server.address() as AddressInfo).port, sockets);
    return proxy;
  }

  /** Resets every open connection now. */
  cutAll(): void {
    if (this.sockets.size > 0) this.cuts += 1;
    for (const socket of this.sockets) socket.resetAndDestroy();
    this.sockets.clear();
  }

  /** Resets every connection once it has carried `bytes` towards the target: a link that breaks by volume, not by time. */
  cutAfterBytes(bytes: number): void {
    this.bytesPerConnection = bytes;
  }

  /** Carries at most `bytesPerSecond` towards the target on each connection (undefined: full speed again). */
  throttle(bytesPerSecond: number | undefined): void {
    this.bytesPerSecond = bytesPerSecond;
  }

  cutEvery(intervalMs: number): void {
    this.#timer = setInterval(() => this.cutAll(), intervalMs);
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.cutAll();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}
