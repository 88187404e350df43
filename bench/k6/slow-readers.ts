/**
 * Many concurrent viewers that each watch for a while (a k6 approximation of the slow-reader
 * workload: k6 cannot throttle a single response's read rate, so each VU fetches the next 2 Mbit/s
 * segment-sized range every second, like an HLS/DASH-style player). The suite's own slow-reader
 * client (bench/lib/slow-readers.ts) holds 1,000 throttled sockets instead, and samples server RSS.
 *   k6 run -e BASE_URL=... -e FILE_PATH=... -e FILE_SIZE=... -e VUS=1000 -e DURATION=30s bench/k6/slow-readers.ts
 */
import { check, sleep } from "k6";
import http from "k6/http";
import { FILE_SIZE, ParkMiller, URL, options as makeOptions } from "./common.ts";

const BYTES_PER_SECOND = 250_000;
export const options = makeOptions({ vus: Number(__ENV.VUS ?? "1000"), duration: __ENV.DURATION ?? "30s" });

let offset = -1;

export default function (): void {
  if (offset < 0) offset = new ParkMiller(42 + __VU).below(Math.max(1, FILE_SIZE - 10 * BYTES_PER_SECOND));
  const end = Math.min(FILE_SIZE - 1, offset + BYTES_PER_SECOND - 1);
  const res = http.get(URL, { headers: { Range: `bytes=${offset}-${end}` }, responseType: "none" });
  check(res, { "status 206": (r) => r.status === 206 });
  offset = end + 1 >= FILE_SIZE ? 0 : end + 1;
  sleep(1);
}
