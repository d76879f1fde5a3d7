import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { exitedWithOutput } from './agent-process.js';
import { trackChild } from './live-children.js';

const BIN = fileURLToPath(new URL('../../bin/hotspare.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;

/**
 * `node bin/hotspare.js receive ...` as a child process (needs a fresh `npm run build`), for
 * tests that kill it with SIGKILL. Its log lines (stderr) are kept for assertions.
 */
export class ReceiverProcess {
  #child: ChildProcess | undefined;
  stderr = '';

  constructor(readonly args: string[]) {}

  async start(): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'receive', ...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.#child = child;
    trackChild(child);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`receiver did not start: ${this.stderr.slice(-2000)}`)), START_TIMEOUT_MS);
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', (text: string) => {
        this.stderr += text;
        if (text.includes('receiver listening')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`receiver exited with ${String(code)}: ${this.stderr.slice(-2000)}`));
      });
    });
  }

  get running(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Sends a signal and waits for the exit; resolves with the exit code (null after a kill). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const child = this.#child;
    if (child === undefined || !this.running) return child?.exitCode ?? null;
    const exited = exitedWithOutput(child);
    child.kill(signal);
    return exited;
  }
}

export { runHotspare } from './agent-process.js';
