import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { writeIntoPipes } from '../../../scripts/bench/write-into-pipes.js';

// Goal: the remote suite's reference into named pipes (mariadb-binlog writing, cat reading) ends
// whatever happens to either side: a writer or a reader that is gone leaves the other blocked
// opening a pipe forever, and the bench process with it. Method: sh as the writer, failing or
// leaving a pipe unwritten, and a reader that fails at once.

/** Writes "x" into each pipe named in turn. */
const WRITE_ALL = 'for p in "$@"; do printf x > "$p"; done';

describe('writeIntoPipes', () => {
  let dir = '';
  let pipes: string[] = [];
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pipes-'));
    pipes = ['a', 'b', 'c'].map((n) => join(dir, n));
    for (const p of pipes) execFileSync('mkfifo', [p]);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('resolves once the writer has written every pipe and cat has read them', async () => {
    await writeIntoPipes(pipes, 'sh', ['-c', WRITE_ALL, 'sh', ...pipes]);
  });

  it('rejects when the writer fails before opening a pipe, cat killed', async () => {
    await expect(writeIntoPipes(pipes, 'sh', ['-c', 'exit 3'])).rejects.toThrow(/sh failed/);
  });

  it('rejects when the writer fails halfway', async () => {
    await expect(writeIntoPipes(pipes, 'sh', ['-c', `printf x > "$1"; exit 3`, 'sh', ...pipes])).rejects.toThrow(/sh failed/);
  });

  it('rejects when the writer exits 0 with a pipe never opened, cat killed after the drain time', async () => {
    await expect(writeIntoPipes(pipes, 'sh', ['-c', WRITE_ALL, 'sh', ...pipes.slice(0, 2)], { drainMs: 300 })).rejects.toThrow(/exited 0 but cat ended with SIGKILL/);
  });

  it('rejects when the reader fails before the writer is done, the writer killed', async () => {
    await expect(writeIntoPipes(pipes, 'sh', ['-c', WRITE_ALL, 'sh', ...pipes], { reader: ['sh', '-c', 'exit 1', 'sh'] })).rejects.toThrow(/sh ended with code 1 first/);
  });
});
