/**
 * Random fixed-length ranges at unaligned offsets (seeking). Same workload as `range64k` /
 * `range1m` / `c1` / `c256` in bench/run.ts, and `signed` with -e TOKEN=<JWT> on a signed video.
 *   k6 run -e BASE_URL=... -e FILE_PATH=... -e FILE_SIZE=... [-e RANGE_LEN=65536] [-e VUS=64] [-e TOKEN=...] bench/k6/ranges.ts
 */
import { check } from "k6";
import http from "k6/http";
import { FILE_SIZE, ParkMiller, URL, options as makeOptions } from "./common.ts";

const RANGE_LEN = Number(__ENV.RANGE_LEN ?? "65536");
export const options = makeOptions();

let rng: ParkMiller | null = null;

export default function (): void {
  rng ??= new ParkMiller(Number(__ENV.SEED ?? "1000") + __VU);
  const start = rng.below(FILE_SIZE - RANGE_LEN + 1);
  const end = start + RANGE_LEN - 1;
  const res = http.get(URL, { headers: { Range: `bytes=${start}-${end}` }, responseType: "none" });
  check(res, {
    "status 206": (r) => r.status === 206,
    "Content-Range matches": (r) => r.headers["Content-Range"] === `bytes ${start}-${end}/${FILE_SIZE}`,
  });
}
