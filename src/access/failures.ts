/**
 * Slows down key guessing: a client (by address) that fails authentication `maxFailures`
 * times within `windowMs` is answered 429 with Retry-After until the window ends, whatever
 * it sends (so a right guess and a wrong one look the same while blocked).
 *
 * Hand-written rather than a rate-limit plugin: those count requests, and this must count only
 * failures and let a blocked client's every request through the same check. Memory is bounded:
 * at most `maxClients` entries, expired ones dropped first. Per process: with WORKERS=n a
 * client gets up to n times the attempts, still a handful per minute against 2^256 keys.
 */
export interface FailureLimits {
  maxFailures: number;
  windowMs: number;
  maxClients: number;
}

export const DEFAULT_FAILURE_LIMITS: FailureLimits = { maxFailures: 10, windowMs: 60_000, maxClients: 10_000 };

interface Entry {
  failures: number;
  resetAt: number;
}

export class FailureLimiter {
  private readonly clients = new Map<string, Entry>();

  constructor(
    private readonly limits: FailureLimits = DEFAULT_FAILURE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** No client has failed lately: nothing to look up (the common case, checked per request). */
  get empty(): boolean {
    return this.clients.size === 0;
  }

  /** Seconds until `client` may try again, or 0 when it is not blocked. */
  blockedFor(client: string): number {
    const entry = this.clients.get(client);
    if (!entry) return 0;
    const now = this.now();
    if (entry.resetAt <= now) {
      this.clients.delete(client);
      return 0;
    }
    return entry.failures >= this.limits.maxFailures ? Math.ceil((entry.resetAt - now) / 1000) : 0;
  }

  recordFailure(client: string): void {
    const now = this.now();
    const entry = this.clients.get(client);
    if (entry && entry.resetAt > now) {
      entry.failures++;
      return;
    }
    if (this.clients.size >= this.limits.maxClients) this.evict(now);
    this.clients.set(client, { failures: 1, resetAt: now + this.limits.windowMs });
  }

  private evict(now: number): void {
    for (const [client, entry] of this.clients) if (entry.resetAt <= now) this.clients.delete(client);
    // Still full: drop the oldest windows (Map order is insertion order).
    for (const client of this.clients.keys()) {
      if (this.clients.size < this.limits.maxClients) break;
      this.clients.delete(client);
    }
  }
}
