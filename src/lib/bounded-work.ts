/**
 * CPU work a client can ask for without limit (a clip's header for an interval nobody asked for
 * before: the interval has microsecond resolution, so every request can be new), made bounded:
 * - at most `concurrency` tasks at once, each started on a new turn of the event loop, so
 *   the requests that arrived meanwhile (streams, probes) are answered between two tasks
 *   instead of after a burst of them;
 * - at most `queue` more waiting; a task beyond that is refused at once with 503 `<code>_busy`;
 * - one client at most `perClient` of those places; beyond that 429 `<code>_rate_limited`.
 * Both refusals carry Retry-After: 1 s, or what the `retryAfter` option estimates (see
 * ./observed-retry-after.ts). A waiting task can be cancelled (its `signal`): it leaves the
 * queue at once. Work already cached never comes here.
 */
import { HttpError } from "../http/errors.ts";
import { Limiter, WaitAborted } from "./limiter.ts";

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
  /** What the 429's message calls one client's tasks (default: `what`). */
  clientWhat?: string;
}

export interface RunOptions {
  /**
   * Aborted before the task starts: it leaves the queue at once, freeing its place, and the run
   * rejects with WaitAborted. A task already started is not told: give it the signal too.
   */
  signal?: AbortSignal;
  /** Never refused (work with a bound of its own, such as ingest), though it takes a place. */
  unrefused?: boolean;
}

const ONE_SECOND: RetryAfter = { seconds: () => 1 };

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class BoundedWork {
  private readonly limiter: Limiter;
  private readonly byClient = new Map<string, number>();
  private admitted = 0;
  private started = 0;
  private readonly retryAfter: RetryAfter;
  private readonly clientWhat: string;
  readonly perClient: number;

  constructor(
    /** The error codes' prefix and what the messages call the work (`clips`, "clip headers"). */
    private readonly code: string,
    private readonly what: string,
    readonly limits: BoundedWorkLimits,
    options: BoundedWorkOptions = {},
  ) {
    this.retryAfter = options.retryAfter ?? ONE_SECOND;
    this.clientWhat = options.clientWhat ?? what;
    // No slot at all would admit tasks that never run.
    this.limiter = new Limiter(Math.max(1, limits.concurrency));
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
  run<T>(client: string | undefined, task: () => T | Promise<T>, options: RunOptions = {}): Promise<T> {
    if (!options.unrefused) this.admit(client);
    this.admitted++;
    if (client !== undefined) this.byClient.set(client, (this.byClient.get(client) ?? 0) + 1);
    return this.limiter
      .run(async () => {
        this.started++;
        try {
          await nextTurn();
          // Cancelled while it waited for this turn.
          if (options.signal?.aborted) throw new WaitAborted();
          const began = performance.now();
          const result = await task();
          this.retryAfter.ran?.(performance.now() - began);
          return result;
        } finally {
          this.started--;
        }
      }, options.signal)
      .finally(() => {
        this.admitted--;
        if (client === undefined) return;
        const left = (this.byClient.get(client) ?? 1) - 1;
        if (left > 0) this.byClient.set(client, left);
        else this.byClient.delete(client);
      });
  }

  /** Throws the 503 when every place is taken, or the 429 when `client` holds its share. */
  private admit(client: string | undefined): void {
    // Worked out only for a refusal.
    const wait = () => String(this.retryAfter.seconds(this.waiting, this.limits.concurrency));
    if (this.admitted >= this.limits.concurrency + this.limits.queue) {
      const seconds = wait();
      throw new HttpError(503, `${this.code}_busy`, `Too many ${this.what} are being made; try again in ${seconds} s`, { "retry-after": seconds });
    }
    const held = client === undefined ? 0 : (this.byClient.get(client) ?? 0);
    if (client !== undefined && held >= this.perClient) {
      const seconds = wait();
      throw new HttpError(429, `${this.code}_rate_limited`, `This client already has ${this.perClient} ${this.clientWhat} being made; try again in ${seconds} s`, { "retry-after": seconds });
    }
  }
}
