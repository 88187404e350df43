/**
 * If-None-Match revalidations answered 304. Workload `revalidate` in bench/run.ts.
 * The ETag is fetched once in setup() (or pass -e ETAG='"..."').
 *   k6 run -e BASE_URL=... -e FILE_PATH=... bench/k6/revalidate.ts
 */
import { check, fail } from "k6";
import http from "k6/http";
import { URL, options as makeOptions } from "./common.ts";

export const options = makeOptions();

export function setup(): { etag: string } {
  if (__ENV.ETAG) return { etag: __ENV.ETAG };
  const res = http.get(URL, { headers: { Range: "bytes=0-0" }, responseType: "none" });
  const etag = res.headers.Etag ?? res.headers.ETag;
  if (!etag) fail(`no ETag from ${URL}`);
  return { etag: String(etag) };
}

export default function (data: { etag: string }): void {
  const res = http.get(URL, { headers: { "If-None-Match": data.etag }, responseType: "none" });
  check(res, { "status 304": (r) => r.status === 304 });
}
