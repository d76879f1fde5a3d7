import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** How long the reader may go on after the writer exited: it has at most a pipe's buffer left to read. */
const DRAIN_MS = 10_000;

/**
 * Runs `file args`, which writes the named pipes `pipes` one after the other (each opened, written
 * and closed before the next), while a reader (`cat`) reads them to their ends in the same order
 * and throws the bytes away. Resolves once both have ended; rejects, with neither left running,
 * when either fails or when a pipe was never opened for writing. A writer or reader that is gone
 * leaves the other blocked in open() on a pipe with no process at its other end, forever:
 * - the writer fails: the reader is killed;
 * - the reader ends first without having read every pipe (it failed): the writer is killed;
 * - the writer exits 0 and the reader still waits `drainMs` later (a pipe it never wrote): the
 *   reader is killed.
 * `reader` replaces `cat` (tests).
 */
export async function writeIntoPipes(pipes: string[], file: string, args: string[], options: { drainMs?: number; reader?: [string, ...string[]] } = {}): Promise<void> {
  const [readerFile, ...readerArgs] = options.reader ?? ['cat'];
  const reader = spawn(readerFile, [...readerArgs, ...pipes], { stdio: 'ignore' });
  const readerEnded = new Promise<string>((resolve) => {
    reader.once('exit', (code, signal) => resolve(code === 0 ? '' : `${readerFile} ended with ${signal ?? `code ${String(code)}`}`));
    reader.once('error', (err) => resolve(`${readerFile} did not run: ${err.message}`));
  });
  const writing = execFileAsync(file, args);
  let written = false;
  void readerEnded.then((failure) => {
    if (failure !== '' && !written) writing.child.kill('SIGKILL');
  });
  try {
    await writing;
    written = true;
  } catch (err) {
    reader.kill('SIGKILL');
    const failure = await readerEnded;
    throw new Error(`${file} failed${failure === '' ? '' : ` (${failure} first)`}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const deadline = setTimeout(() => reader.kill('SIGKILL'), options.drainMs ?? DRAIN_MS);
  const failure = await readerEnded;
  clearTimeout(deadline);
  if (failure !== '') throw new Error(`${file} exited 0 but ${failure}: a pipe it never opened, or the reader failed`);
}
