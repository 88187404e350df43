/**
 * Spool's JSON API: GET /api/videos. Workload `api` in bench/run.ts (there measured with autocannon).
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 bench/k6/api.ts
 */
import { check } from "k6";
import http from "k6/http";
import { BASE_URL, options as makeOptions } from "./common.ts";

export const options = makeOptions({ discardResponseBodies: false });

export default function (): void {
  const res = http.get(`${BASE_URL}/api/videos`, { headers: { Accept: "application/json" } });
  check(res, {
    "status 200": (r) => r.status === 200,
    "has items": (r) => Array.isArray((r.json() as { items?: unknown }).items),
  });
}
