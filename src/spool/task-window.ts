/**
 * Runs tasks with at most `limit` under way at once: run() waits for room, then starts the task
 * without waiting for it; drain() waits for all. The first failure is thrown by the next run()
 * or drain(), and the tasks already started still finish (a spool pass queues its file reads
 * through one, so the reader always has the next files in hand).
 */
export class TaskWindow {
  #active = 0;
  #freed: (() => void) | undefined;
  #failure: { err: unknown } | undefined;

  constructor(private readonly limit: number) {}

  async run(task: () => Promise<void>): Promise<void> {
    while (this.#active >= this.limit) await new Promise<void>((resolve) => (this.#freed = resolve));
    this.#throwFailure();
    this.#active++;
    task()
      .catch((err: unknown) => {
        this.#failure ??= { err };
      })
      .finally(() => {
        this.#active--;
        const freed = this.#freed;
        this.#freed = undefined;
        freed?.();
      });
  }

  async drain(): Promise<void> {
    while (this.#active > 0) await new Promise<void>((resolve) => (this.#freed = resolve));
    this.#throwFailure();
  }

  #throwFailure(): void {
    if (this.#failure !== undefined) throw this.#failure.err;
  }
}
