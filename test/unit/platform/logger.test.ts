import { describe, expect, it } from 'vitest';
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
