/**
 * Requests that change things are limited per client (elysia-rate-limit): MUTATION_RATE_LIMIT
 * per minute, 429 with Retry-After beyond. Reads are never limited (players make hundreds of
 * range, HLS and thumbnail requests), and neither are tus appends (PATCH of an upload URL:
 * a large upload is many of them, and its size is what bounds it).
 */
import { Elysia } from "elysia";
import { rateLimit } from "elysia-rate-limit";
import { errorResponse } from "../http/errors.ts";
import { requestPath } from "../http/path.ts";
import type { AccessControl } from "./service.ts";

const READS = new Set(["GET", "HEAD", "OPTIONS"]);

/** Whether a request counts toward the limit. Pure. */
export function isLimitedMutation(method: string, path: string): boolean {
  if (READS.has(method)) return false;
  if (method === "PATCH" && path.startsWith("/api/uploads/")) return false;
  return true;
}

export function mutationLimit(access: AccessControl, perMinute: number) {
  if (perMinute <= 0) return new Elysia({ name: "spool.mutation-limit" });
  return new Elysia({ name: "spool.mutation-limit" }).use(
    rateLimit({
      duration: 60_000,
      max: perMinute,
      scoping: "global",
      generator: (request, server) => access.client(request, server),
      skip: (request) => !isLimitedMutation(request.method, requestPath(request.url)),
      // Refused mutations count too: a client must not probe without bound.
      countFailedRequest: true,
      errorResponse: errorResponse(429, "rate_limited", `Too many changes from this client: at most ${perMinute} a minute (MUTATION_RATE_LIMIT); see Retry-After`),
    }),
  );
}
