/**
 * Spool's JSON API: GET /api/videos. Workload `api` in bench/run.ts (there measured with autocannon).
 * Spool's management routes need its API key (API_KEY, or the one in DATA_DIR/api-key):
 *   k6 run -e BASE_URL=http://127.0.0.1:3000 -e API_KEY=<key> bench/k6/api.ts
 * (Without API_KEY no Authorization header is sent: for the bare Bun peer, which has no auth.)
 */
import { check } from "k6";
import http from "k6/http";
import { BASE_URL, options as makeOptions } from "./common.ts";

export const options = makeOptions({ discardResponseBodies: false });

const headers: Record<string, string> = { Accept: "application/json" };
if (__ENV.API_KEY) headers.Authorization = `Bearer ${__ENV.API_KEY}`;

export default function (): void {
  const res = http.get(`${BASE_URL}/api/videos`, { headers });
  check(res, {
    "status 200": (r) => r.status === 200,
    "has items": (r) => Array.isArray((r.json() as { items?: unknown }).items),
  });
}
