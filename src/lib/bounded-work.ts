/**
 * CPU work a client can ask for without limit (a clip's header for an interval nobody asked for
 * before: the interval has microsecond resolution, so every request can be new), made bounded:
 * - at most `concurrency` tasks at once, each started on a new turn of the event loop, so
 *   the requests that arrived meanwhile (streams, probes) are answered between two tasks
 *   instead of after a burst of them;
 * - at most `queue` more waiting; a task beyond that is refused at once with 503 `<code>_busy`;
 * - one client at most `perClient` of those places; beyond that 429 `<code>_rate_limited`.
 * Both refusals carry Retry-After: 1 s, or what the `retryAfter` option estimates (see
 * ./observed-retry-after.ts). Work already cached never comes here.
 */
import { HttpError } from "../http/errors.ts";
import { Limiter } from "./limiter.ts";

export interface BoundedWorkLimits {
  concurrency: number;
  queue: number;
  /** Default: half of all places (rounded up), so one client never takes every one. */
  perClient?: number;
}

/** Seconds a refused client is told to wait before asking again. */
export interface RetryAfter {
  /** `waiting`: the tasks queued now, which the refused one would have come after. */
  seconds(waiting: number, concurrency: number): number;
  /** A task ran to completion in `ms` (its time in the queue not counted). */
  ran?(ms: number): void;
}

export interface BoundedWorkOptions {
  /** Default: always 1 s (work that takes milliseconds). */
  retryAfter?: RetryAfter;
}

const ONE_SECOND: RetryAfter = { seconds: () => 1 };

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class BoundedWork {
  private readonly limiter: Limiter;
  private readonly byClient = new Map<string, number>();
  private admitted = 0;
  private started = 0;
  private readonly retryAfter: RetryAfter;
  readonly perClient: number;

  constructor(
    /** The error codes' prefix and what the messages call the work (`clip`, "clip headers"). */
    private readonly code: string,
    private readonly what: string,
    readonly limits: BoundedWorkLimits,
    options: BoundedWorkOptions = {},
  ) {
    this.retryAfter = options.retryAfter ?? ONE_SECOND;
    this.limiter = new Limiter(limits.concurrency);
    this.perClient = limits.perClient ?? Math.max(1, Math.ceil((limits.concurrency + limits.queue) / 2));
  }

  /** Tasks running or waiting. */
  get pending(): number {
    return this.admitted;
  }

  /** Tasks holding one of the `concurrency` slots (about to start, or started). */
  get running(): number {
    return this.started;
  }

  /** Tasks waiting for a slot. */
  get waiting(): number {
    return this.admitted - this.started;
  }

  /** Runs `task` in its turn, or throws the 503 or 429 that refuses it (synchronously, before anything starts). */
  run<T>(client: string | undefined, task: () => T | Promise<T>): Promise<T> {
    // Worked out only for a refusal.
    const wait = () => String(this.retryAfter.seconds(this.waiting, this.limits.concurrency));
    if (this.admitted >= this.limits.concurrency + this.limits.queue) {
      const seconds = wait();
      throw new HttpError(503, `${this.code}_busy`, `Too many ${this.what} are being made; try again in ${seconds} s`, { "retry-after": seconds });
    }
    const held = client === undefined ? 0 : (this.byClient.get(client) ?? 0);
    if (client !== undefined && held >= this.perClient) {
      const seconds = wait();
      throw new HttpError(429, `${this.code}_rate_limited`, `This client already has ${this.perClient} ${this.what} being made; try again in ${seconds} s`, { "retry-after": seconds });
    }
    this.admitted++;
    if (client !== undefined) this.byClient.set(client, held + 1);
    return this.limiter
      .run(async () => {
        this.started++;
        try {
          await nextTurn();
          const began = performance.now();
          const result = await task();
          this.retryAfter.ran?.(performance.now() - began);
          return result;
        } finally {
          this.started--;
        }
      })
      .finally(() => {
        this.admitted--;
        if (client === undefined) return;
        const left = (this.byClient.get(client) ?? 1) - 1;
        if (left > 0) this.byClient.set(client, left);
        else this.byClient.delete(client);
      });
  }
}
