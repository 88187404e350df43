/**
 * `bytes=0-1` probes (players and crawlers sniffing a file). Workload `probe` in bench/run.ts.
 *   k6 run -e BASE_URL=... -e FILE_PATH=... -e FILE_SIZE=... bench/k6/probe.ts
 */
import { check } from "k6";
import http from "k6/http";
import { FILE_SIZE, URL, options as makeOptions } from "./common.ts";

export const options = makeOptions();

export default function (): void {
  const res = http.get(URL, { headers: { Range: "bytes=0-1" }, responseType: "none" });
  check(res, {
    "status 206": (r) => r.status === 206,
    "Content-Range 0-1": (r) => r.headers["Content-Range"] === `bytes 0-1/${FILE_SIZE}`,
  });
}
