import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { reportFailure, UsageError } from '../../../src/cmd/cli-failure.js';
import { HotspareError } from '../../../src/core/errors.js';

function captured(err: unknown): { code: number; lines: string[] } {
  let text = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  const code = reportFailure(err, sink);
  return { code, lines: text.replace(/\n$/, '').split('\n') };
}

describe('reportFailure', () => {
  it('prints exactly two lines, error then hint, even when the message carries a tool\'s multi-line stderr', () => {
    const err = new HotspareError('REPLAY_FAILED', 'mariadb exited with 1: ERROR 1146 (42S02) at line 12: Table missing\nERROR at line 40\n\n  more', {
      hint: 'see the log\nand the tool output',
    });
    const { code, lines } = captured(err);
    expect(code).toBe(1);
    expect(lines).toEqual([
      'error REPLAY_FAILED: mariadb exited with 1: ERROR 1146 (42S02) at line 12: Table missing | ERROR at line 40 | more',
      'hint: see the log | and the tool output',
    ]);
  });

  it('an unexpected error is INTERNAL, on two lines too', () => {
    const { code, lines } = captured(new Error('boom\nat somewhere'));
    expect(code).toBe(1);
    expect(lines).toEqual(['error INTERNAL: boom | at somewhere', 'hint: this is a bug in hotspare; please report it with the log']);
  });

  it('a usage error exits 2 with the pointer to help', () => {
    const { code, lines } = captured(new UsageError('--archive is required'));
    expect(code).toBe(2);
    expect(lines).toEqual(['usage error: --archive is required', 'run `hotspare help` for the commands and their options']);
  });
});
