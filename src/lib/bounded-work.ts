/**
 * CPU work a client can ask for without limit (a clip's header for an interval nobody asked for
 * before: the interval has microsecond resolution, so every request can be new), made bounded:
 * - at most `concurrency` tasks at once, each started on a new turn of the event loop, so
 *   the requests that arrived meanwhile (streams, probes) are answered between two tasks
 *   instead of after a burst of them;
 * - at most `queue` more waiting; a task beyond that is refused at once with 503 `<code>_busy`;
 * - one client at most `perClient` of those places; beyond that 429 `<code>_rate_limited`.
 * Both refusals carry Retry-After. Work already cached never comes here.
 */
import { HttpError } from "../http/errors.ts";
import { Limiter } from "./limiter.ts";

export interface BoundedWorkLimits {
  concurrency: number;
  queue: number;
  /** Default: half of all places (rounded up), so one client never takes every one. */
  perClient?: number;
}

const RETRY_AFTER_S = "1";

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

export class BoundedWork {
  private readonly limiter: Limiter;
  private readonly byClient = new Map<string, number>();
  private admitted = 0;
  readonly perClient: number;

  constructor(
    /** The error codes' prefix and what the messages call the work (`clip`, "clip headers"). */
    private readonly code: string,
    private readonly what: string,
    readonly limits: BoundedWorkLimits,
  ) {
    this.limiter = new Limiter(limits.concurrency);
    this.perClient = limits.perClient ?? Math.max(1, Math.ceil((limits.concurrency + limits.queue) / 2));
  }

  /** Tasks running or waiting. */
  get pending(): number {
    return this.admitted;
  }

  /** Runs `task` in its turn, or throws the 503 or 429 that refuses it (synchronously, before anything starts). */
  run<T>(client: string | undefined, task: () => T | Promise<T>): Promise<T> {
    if (this.admitted >= this.limits.concurrency + this.limits.queue) {
      throw new HttpError(503, `${this.code}_busy`, `Too many ${this.what} are being made; try again in ${RETRY_AFTER_S} s`, { "retry-after": RETRY_AFTER_S });
    }
    const held = client === undefined ? 0 : (this.byClient.get(client) ?? 0);
    if (client !== undefined && held >= this.perClient) {
      throw new HttpError(429, `${this.code}_rate_limited`, `This client already has ${this.perClient} ${this.what} being made; try again in ${RETRY_AFTER_S} s`, { "retry-after": RETRY_AFTER_S });
    }
    this.admitted++;
    if (client !== undefined) this.byClient.set(client, held + 1);
    return this.limiter
      .run(async () => {
        await nextTurn();
        return task();
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
