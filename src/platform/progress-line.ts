/** Redraw the line at most this often, so a fast restore does not spend its time on the terminal. */
const PROGRESS_REDRAW_INTERVAL_MS = 250;

/**
 * A one-line progress display on stderr, drawn only when stderr is a terminal (logs and
 * pipes get nothing). `update` is cheap to call per chunk.
 */
export class ProgressLine {
  #lastDrawMs = 0;
  readonly #enabled: boolean;

  constructor(
    readonly label: string,
    readonly totalBytes: number,
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly nowMs: () => number = () => Date.now(),
  ) {
    this.#enabled = stream.isTTY === true;
  }

  update(doneBytes: number): void {
    if (!this.#enabled) return;
    const now = this.nowMs();
    if (now - this.#lastDrawMs < PROGRESS_REDRAW_INTERVAL_MS) return;
    this.#lastDrawMs = now;
    const pct = this.totalBytes > 0 ? Math.min(100, (doneBytes / this.totalBytes) * 100) : 100;
    this.stream.write(`\r${this.label}: ${pct.toFixed(1)}% (${mib(doneBytes)} of ${mib(this.totalBytes)} MiB)\x1b[K`);
  }

  done(): void {
    if (!this.#enabled) return;
    this.stream.write(`\r${this.label}: done (${mib(this.totalBytes)} MiB)\x1b[K\n`);
  }
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
