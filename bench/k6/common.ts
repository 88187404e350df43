/**
 * Shared settings for the k6 scenarios. Same knobs as bench/run.ts, passed with -e:
 *   BASE_URL   http://127.0.0.1:3000
 *   FILE_PATH  /api/stream/<id> (Spool), /media/main.mp4 (nginx), ...
 *   FILE_SIZE  size of that file in bytes
 *   VUS        concurrent connections (default 64)   DURATION  e.g. 10s (default 10s)
 *   SEED       PRNG seed (default 1000)
 */
import type { Options } from "k6/options";

export const BASE_URL = __ENV.BASE_URL ?? "http://127.0.0.1:3000";
export const FILE_PATH = __ENV.FILE_PATH ?? "/api/stream/REPLACE_ME";
export const FILE_SIZE = Number(__ENV.FILE_SIZE ?? "0");
export const URL = `${BASE_URL}${FILE_PATH}`;

export function options(extra: Partial<Options> = {}): Options {
  return {
    vus: Number(__ENV.VUS ?? "64"),
    duration: __ENV.DURATION ?? "10s",
    discardResponseBodies: true,
    summaryTrendStats: ["avg", "p(50)", "p(90)", "p(99)", "max"],
    thresholds: { checks: ["rate==1"] },
    ...extra,
  };
}

/**
 * Park-Miller PRNG (48271, 2^31-1), the same sequence as bench/lib/prng.ts and
 * bench/wrk/common.lua. Each VU gets its own stream (seed + VU number).
 */
export class ParkMiller {
  private state: number;
  constructor(seed: number) {
    this.state = (Math.abs(Math.floor(seed)) % 2147483646) + 1;
  }
  next(): number {
    this.state = (this.state * 48271) % 2147483647;
    return this.state;
  }
  below(span: number): number {
    const hi = this.next() - 1;
    const lo = this.next() - 1;
    const u = (hi + lo / 2147483646) / 2147483646;
    return Math.min(span - 1, Math.floor(u * span));
  }
}
