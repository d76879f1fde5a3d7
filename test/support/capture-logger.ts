import { Writable } from 'node:stream';
import { pino } from 'pino';
import { LOG_SERIALIZERS, type Logger } from '../../src/platform/logger.js';

/** A pino logger whose JSON lines are kept in memory, for asserting on what a component logs. */
export function captureLogger(): { logger: Logger; lines: () => { msg: string; code?: string; [k: string]: unknown }[] } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return { logger: pino({ level: 'debug', serializers: LOG_SERIALIZERS }, sink), lines: () => lines.map((l) => JSON.parse(l) as { msg: string }) };
}
