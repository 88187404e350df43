/**
 * Applies CORS to the media routes Elysia serves (/api/hls/*, and /api/stream/* under app.handle;
 * the live stream route is a native Bun route that applies the same headers itself).
 *
 * The headers are put on `set.headers` in onRequest, which Elysia merges into whatever the route
 * returns, error responses included (a player should be able to read a 404's JSON too).
 */
import { Elysia } from "elysia";
import { corsHeaders, preflightFor } from "../../http/cors.ts";
import { requestPath } from "../../http/path.ts";

export const CORS_PREFIXES = ["/api/stream/", "/api/hls/"] as const;

export function corsRoutes(allowed: readonly string[], prefixes: readonly string[] = CORS_PREFIXES) {
  return new Elysia({ name: "spool.cors" }).onRequest(({ request, set }) => {
    if (allowed.length === 0) return;
    const path = requestPath(request.url);
    if (!prefixes.some((p) => path.startsWith(p))) return;
    if (request.method === "OPTIONS") {
      const preflight = preflightFor(allowed, request.headers);
      if (preflight) return new Response(null, { status: 204, headers: preflight });
    }
    const headers = corsHeaders(allowed, request.headers.get("origin"));
    if (headers) Object.assign(set.headers, headers);
  });
}
