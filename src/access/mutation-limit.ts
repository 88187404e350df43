/**
 * Requests that change things are limited per client: MUTATION_RATE_LIMIT a minute, 429 with
 * Retry-After beyond. Reads are never limited (players make hundreds of range, HLS and
 * thumbnail requests), and neither are tus appends (PATCH of an upload URL: a large upload is
 * many of them, and its size is what bounds it).
 *
 * Hand-written on the same fixed-window counter as the failed-key limit rather than
 * elysia-rate-limit: that
 * plugin's hook runs on every route and asks Elysia for the cookies, which cost ~7 µs on each
 * read (measured with app.handle() on GET /api/videos); here a read costs one Set lookup.
 */
import { Elysia } from "elysia";
import { HttpError } from "../http/errors.ts";
import { requestPath } from "../http/path.ts";
import { WindowLimiter } from "./window-limiter.ts";
import type { AccessControl } from "./service.ts";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether a request counts toward the limit. Pure. */
export function isLimitedMutation(method: string, path: string): boolean {
  if (READS.has(method)) return false;
  if (method === "PATCH" && path.startsWith("/api/uploads/")) return false;
  return true;
}

export function mutationLimit(access: AccessControl, perMinute: number) {
  const plugin = new Elysia({ name: "spool.mutation-limit" });
  if (perMinute <= 0) return plugin;
  const counter = new WindowLimiter({ max: perMinute, windowMs: 60_000, maxClients: 10_000 });
  return plugin.onRequest(({ request, server }) => {
    if (READS.has(request.method) || !isLimitedMutation(request.method, requestPath(request.url))) return;
    const client = access.client(request, server);
    const wait = counter.blockedFor(client);
    // Thrown, not returned, so that the refusal is logged and counted (see src/access/plugin.ts).
    if (wait > 0) {
      throw new HttpError(429, "rate_limited", `Too many changes from this client: at most ${perMinute} a minute (MUTATION_RATE_LIMIT); try again in ${wait} s`, {
        "retry-after": String(wait),
      });
    }
    counter.record(client);
  });
}
