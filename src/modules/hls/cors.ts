/**
 * CORS for the media routes (/api/stream/*, /api/hls/*), so that hls.js and players served from
 * other origins can fetch playlists, segments and byte ranges. CORS_ORIGINS: "*" (default), a
 * comma-separated list of origins, or "none".
 *
 * The headers are put on `set.headers` in onRequest, which Elysia merges into whatever the route
 * returns, error responses included (a player should be able to read a 404's JSON too).
 */
import { Elysia } from "elysia";

export const CORS_PREFIXES = ["/api/stream/", "/api/hls/"] as const;
/** Response headers a cross-origin script may read beyond the safelisted ones. */
export const EXPOSED_HEADERS = "Content-Range, Content-Length, Accept-Ranges, ETag";
const ALLOWED_HEADERS = "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since, Cache-Control";
const ALLOWED_METHODS = "GET, HEAD, OPTIONS";
const MAX_AGE = "86400";

export type CorsHeaders = Record<string, string>;

/** The CORS response headers for a request from `origin` (null: not a cross-origin request). Pure. */
export function corsHeaders(allowed: readonly string[], origin: string | null): CorsHeaders | null {
  if (allowed.length === 0) return null;
  if (allowed.includes("*")) return { "access-control-allow-origin": "*", "access-control-expose-headers": EXPOSED_HEADERS };
  // A list: the answer depends on Origin, so caches must key on it even when it is refused.
  if (origin === null || !allowed.includes(origin)) return { vary: "Origin" };
  return { "access-control-allow-origin": origin, "access-control-expose-headers": EXPOSED_HEADERS, vary: "Origin" };
}

/** The preflight answer's extra headers. Pure. */
export function preflightHeaders(base: CorsHeaders): CorsHeaders {
  if (!base["access-control-allow-origin"]) return base;
  return {
    ...base,
    "access-control-allow-methods": ALLOWED_METHODS,
    "access-control-allow-headers": ALLOWED_HEADERS,
    "access-control-max-age": MAX_AGE,
  };
}

function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  return start < 0 ? "/" : url.slice(start);
}

export function corsRoutes(allowed: readonly string[], prefixes: readonly string[] = CORS_PREFIXES) {
  return new Elysia({ name: "spool.cors" }).onRequest(({ request, set }) => {
    if (allowed.length === 0) return;
    const path = pathOf(request.url);
    if (!prefixes.some((p) => path.startsWith(p))) return;
    const headers = corsHeaders(allowed, request.headers.get("origin"));
    if (!headers) return;
    if (request.method === "OPTIONS" && request.headers.has("access-control-request-method")) {
      return new Response(null, { status: 204, headers: preflightHeaders(headers) });
    }
    Object.assign(set.headers, headers);
  });
}
