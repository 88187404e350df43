/** At most `concurrency` tasks at once; the rest wait in FIFO order. */
export class Limiter {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly concurrency: number) {}

  /**
   * Runs `task` once a slot is free. A `signal` that aborts while the task is still waiting
   * takes it out of the queue at once (rejecting with `WaitAborted`): a cancelled job must not
   * wait for the jobs ahead of it to finish.
   */
  async run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (signal?.aborted) throw new WaitAborted();
    if (this.active >= this.concurrency) {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => {
          const index = this.waiting.indexOf(wake);
          if (index >= 0) this.waiting.splice(index, 1);
          reject(new WaitAborted());
        };
        const wake = () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        this.waiting.push(wake);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
    }
    this.active++;
    try {
      return await task();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

/** A task left the queue because its signal aborted before it could start. */
export class WaitAborted extends Error {
  override name = "WaitAborted";
  constructor() {
    super("cancelled while waiting for a free slot");
  }
}
