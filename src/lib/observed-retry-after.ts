/**
 * Retry-After worked out from how long tasks take (ffmpeg runs: hundreds of milliseconds to
 * seconds, depending on the video): the queue ahead drains `concurrency` tasks at a time, each
 * taking the moving average of recent runs. Never less than 1 s, never more than `maxSeconds`,
 * so a client is neither told to hammer nor to give up.
 */
import type { RetryAfter } from "./bounded-work.ts";

export class ObservedRetryAfter implements RetryAfter {
  constructor(
    /** The guess before any task has run. */
    private runMs = 500,
    private readonly maxSeconds = 30,
  ) {}

  ran(ms: number): void {
    this.runMs = this.runMs * 0.8 + ms * 0.2;
  }

  seconds(waiting: number, concurrency: number): number {
    return Math.min(this.maxSeconds, Math.max(1, Math.ceil(((waiting + 1) / concurrency) * (this.runMs / 1000))));
  }
}
