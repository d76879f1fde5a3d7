import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { childLogger } from '../../../src/platform/logger.js';
import { HotspareError } from '../../../src/core/errors.js';
import { captureLogger } from '../../support/capture-logger.js';

/**
 * Goal: a logged error says each thing once. An error that wraps another usually quotes its
 * message already; pino's own serializer appended every cause's message again.
 */
describe('logged errors', () => {
  it('quote a cause once: not again when the message holds it, appended when it does not', () => {
    const { logger, lines } = captureLogger();
    const idle = new HotspareError('WIRE_IDLE', 'nothing heard from 127.0.0.1:7654 for 15389 ms', { hint: 'the agent reconnects' });
    const lost = new HotspareError('RECEIVER_LOST', `the connection to the receiver at 127.0.0.1:7654 ended: ${idle.message}`, { hint: 'resumes', cause: idle });
    logger.warn({ err: lost }, 'replica stream failed');
    const silent = new HotspareError('ARCHIVE_IO', 'cannot write the archive', { hint: 'check the volume', cause: Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' }) });
    logger.warn({ err: silent }, 'replica stream failed');
    const [first, second] = lines().map((l) => l['err'] as { message: string; code: string; hint: string; stack: string });
    expect(first?.message).toBe('the connection to the receiver at 127.0.0.1:7654 ended: nothing heard from 127.0.0.1:7654 for 15389 ms');
    expect(first).toMatchObject({ code: 'RECEIVER_LOST', hint: 'resumes' });
    expect(first?.stack).toContain('caused by: HotspareError: nothing heard');
    expect(second?.message).toBe('cannot write the archive: EIO: i/o error, write');
  });
});

/**
 * Goal: a module's logger under a replica's writes each key once. pino writes a key bound at two
 * levels twice (`"component":"replica",...,"component":"spool"`), and log tools keep only one.
 */
describe('childLogger', () => {
  function rawLines(): { logger: import('pino').Logger; lines: string[] } {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    return { logger: pino({ base: undefined, timestamp: false }, sink), lines };
  }

  it('binds what is new only, and a component under another as its part', () => {
    const { logger, lines } = rawLines();
    const replica = childLogger(logger, { component: 'replica', replica: 'standby' });
    childLogger(childLogger(replica, { replica: 'standby' }), { component: 'spool', source: 'feeds' }).info('shipped');
    expect(lines).toEqual(['{"level":30,"component":"replica","replica":"standby","part":"spool","source":"feeds","msg":"shipped"}']);
    // Nothing new: the parent itself.
    expect(childLogger(replica, { replica: 'standby', component: 'replica' })).toBe(replica);
  });
});
