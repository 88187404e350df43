/** Retry delays for failed transcodes: exponential, capped, with optional jitter. Pure. */

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** 0..1: the delay is drawn from [d·(1-jitter), d]. Default 0. */
  jitter?: number;
}

/** The delay before attempt `failedAttempts + 1`, after `failedAttempts` (≥ 1) failures. */
export function backoffMs(failedAttempts: number, options: BackoffOptions, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.floor(failedAttempts) - 1);
  const delay = Math.min(options.maxMs, options.baseMs * 2 ** Math.min(exponent, 52));
  const jitter = Math.min(1, Math.max(0, options.jitter ?? 0));
  return Math.round(delay * (1 - jitter * random()));
}
