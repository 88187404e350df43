/**
 * Shared settings for the k6 scenarios. Same knobs as bench/run.ts, passed with -e:
 *   BASE_URL   http://127.0.0.1:3000
 *   FILE_PATH  /api/stream/<id> (Spool), /media/main.mp4 (nginx), ...
 *   FILE_SIZE  size of that file in bytes
 *   VUS        concurrent connections (default 64)   DURATION  e.g. 10s (default 10s)
 *   SEED       PRNG seed (default 1000)
 *   TOKEN      a playback token, appended as `?token=` (a Spool video with `playback: signed`;
 *              the `signed` workload: -e TOKEN=<JWT from POST /api/videos/<id>/tokens>)
 */
import type { Options } from "k6/options";

export const BASE_URL = __ENV.BASE_URL ?? "http://127.0.0.1:3000";
export const FILE_PATH = __ENV.FILE_PATH ?? "/api/stream/REPLACE_ME";
export const FILE_SIZE = Number(__ENV.FILE_SIZE ?? "0");
export const TOKEN = __ENV.TOKEN ?? "";
export const URL = `${BASE_URL}${FILE_PATH}${TOKEN ? `${FILE_PATH.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}` : ""}`;

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

// The suite's own PRNG (dependency-free, so k6 loads it like ./common.ts): every generator, wrk
// and autocannon included, requests the same ranges for the same seed. Each VU gets its own
// stream (seed + VU number).
export { ParkMiller } from "../lib/prng.ts";
