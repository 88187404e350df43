/**
 * Whole-file downloads (throughput; read data_received / s in the summary). Workload `whole`.
 *   k6 run -e BASE_URL=... -e FILE_PATH=... -e FILE_SIZE=... -e VUS=16 bench/k6/whole.ts
 */
import { check } from "k6";
import http from "k6/http";
import { FILE_SIZE, URL, options as makeOptions } from "./common.ts";

export const options = makeOptions({ vus: Number(__ENV.VUS ?? "16") });

export default function (): void {
  const res = http.get(URL, { responseType: "none", timeout: "120s" });
  check(res, {
    "status 200": (r) => r.status === 200,
    "full length": (r) => Number(r.headers["Content-Length"]) === FILE_SIZE,
  });
}
