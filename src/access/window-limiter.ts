/**
 * A fixed-window counter per client: a client that has recorded `max` events within `windowMs`
 * is blocked (for the rest of that window) whatever it sends next. Two uses: failed key
 * attempts (so a right guess and a wrong one look the same while blocked) and changes
 * (MUTATION_RATE_LIMIT, src/access/mutation-limit.ts).
 *
 * Hand-written rather than a rate-limit plugin: the failure count must count only failures, and
 * the plugin measured ~7 µs on every read (see mutation-limit.ts). Memory is bounded: at most
 * `maxClients` entries, expired ones dropped first. Per process: with WORKERS=n a client gets up
 * to n times the attempts, still a handful per minute against 2^256 keys.
 */
export interface WindowLimits {
  /** Events a client may record per window before it is blocked. */
  max: number;
  windowMs: number;
  maxClients: number;
}

export const DEFAULT_FAILURE_LIMITS: WindowLimits = { max: 10, windowMs: 60_000, maxClients: 10_000 };

interface Entry {
  count: number;
  resetAt: number;
}

export class WindowLimiter {
  private readonly clients = new Map<string, Entry>();

  constructor(
    private readonly limits: WindowLimits = DEFAULT_FAILURE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** No client has recorded anything lately: nothing to look up (the common case, checked per request). */
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
    return entry.count >= this.limits.max ? Math.ceil((entry.resetAt - now) / 1000) : 0;
  }

  /** Counts an event of `client`; returns its count in the current window (`max` once it is blocked by this one). */
  record(client: string): number {
    const now = this.now();
    const entry = this.clients.get(client);
    if (entry && entry.resetAt > now) return ++entry.count;
    if (this.clients.size >= this.limits.maxClients) this.evict(now);
    this.clients.set(client, { count: 1, resetAt: now + this.limits.windowMs });
    return 1;
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
