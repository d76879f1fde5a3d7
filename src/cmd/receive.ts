import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { DEFAULT_RECEIVE_PORT } from '../config/defaults.js';
import { HotspareError } from '../core/errors.js';
import { systemClock } from '../platform/clock.js';
import type { Logger } from '../platform/logger.js';
import { startReceiver } from '../standby/receiver/receiver.js';
import { UsageError } from './cli-failure.js';
import { listenForStop } from './stop-signal.js';
import { exitOnceSettled } from './exit-once-settled.js';
import { childLogger } from '../platform/logger.js';

/**
 * `hotspare receive --archive DIR --token-file FILE [--listen HOST:PORT] [--tls-cert F --tls-key F]
 * [--http HOST:PORT] [--allow-plaintext]` (--listen defaults to 127.0.0.1:DEFAULT_RECEIVE_PORT): runs until SIGTERM/SIGINT, then makes what it
 * received durable, releases the archive and exits 0.
 */
export async function receiveCommand(argv: string[], logger: Logger): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      archive: { type: 'string' },
      listen: { type: 'string' },
      'token-file': { type: 'string' },
      'tls-cert': { type: 'string' },
      'tls-key': { type: 'string' },
      http: { type: 'string' },
      'allow-plaintext': { type: 'boolean', default: false },
    },
  });
  if (values.archive === undefined) throw new UsageError('receive needs --archive DIR');
  if (values['token-file'] === undefined) throw new UsageError('receive needs --token-file FILE');
  const listen = parseHostPort(values.listen ?? `127.0.0.1:${DEFAULT_RECEIVE_PORT}`, '--listen');
  const http = values.http === undefined ? undefined : parseHostPort(values.http, '--http');
  if ((values['tls-cert'] === undefined) !== (values['tls-key'] === undefined)) throw new UsageError('--tls-cert and --tls-key go together');
  const tlsOn = values['tls-cert'] !== undefined;
  const token = (await readRequired(values['token-file'], '--token-file')).toString('utf8').trim();
  if (token.length === 0) throw new UsageError(`--token-file ${values['token-file']} is empty`);
  const tls = tlsOn
    ? { cert: await readRequired(values['tls-cert'] as string, '--tls-cert'), key: await readRequired(values['tls-key'] as string, '--tls-key') }
    : undefined;

  const log = childLogger(logger, { component: 'receive' });
  // Without TLS the binlog and the token would cross that network in clear: a network
  // address needs TLS, or the operator's word that plaintext is intended (--allow-plaintext,
  // for a trusted network or a VPN). Loopback needs neither.
  if (!tlsOn && !isLoopback(listen.host)) {
    if (values['allow-plaintext'] !== true) {
      throw new HotspareError('PLAINTEXT_LISTEN', `refusing to listen on ${listen.host}:${listen.port} without TLS: the binlog and the token would cross the network in clear`, {
        hint: 'give --tls-cert and --tls-key, or --allow-plaintext if the network is trusted (a VPN, a private link)',
      });
    }
    log.warn({ code: 'PLAINTEXT_LISTEN', listen: `${listen.host}:${listen.port}` }, `listening on ${listen.host} without TLS, as --allow-plaintext asks`);
  }
  const stop = listenForStop(log);
  const receiver = await startReceiver({ archive: values.archive, listen, token, tls, http, logger, clock: systemClock });
  if (receiver.httpAddress !== undefined) log.info({ http: `${receiver.httpAddress.host}:${receiver.httpAddress.port}` }, 'status on GET /status');
  await stop.received;
  await receiver.close();
  exitOnceSettled(log);
  return 0;
}

function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const match = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):(\d{1,5})$/.exec(text);
  const port = Number(match?.[2]);
  if (match === null || !(port >= 0 && port <= 65535)) throw new UsageError(`${flag} expects HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: (match[1] as string).replace(/^\[(.*)\]$/, '$1'), port };
}

function isLoopback(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

async function readRequired(path: string, flag: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw new HotspareError('FILE_UNREADABLE', `cannot read ${flag} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, {
      hint: `make ${path} readable by the receiver`,
    });
  }
}
