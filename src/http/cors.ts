/**
 * CORS response headers for the media routes, so that hls.js and players served from other
 * origins can fetch playlists, segments and byte ranges. Pure: no I/O.
 * Allowed origins come from CORS_ORIGINS: "*" (default), a comma-separated list, or "none" (empty).
 */

/** Response headers a cross-origin script may read beyond the safelisted ones. */
export const EXPOSED_HEADERS = "Content-Range, Content-Length, Accept-Ranges, ETag";
const ALLOWED_HEADERS = "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since, Cache-Control";
const ALLOWED_METHODS = "GET, HEAD, OPTIONS";
const MAX_AGE = "86400";

export type CorsHeaders = Record<string, string>;

/**
 * The CORS response headers for a request from `origin` (null: not a cross-origin request), with
 * `exposed` the headers a script may read (the media routes' by default). Pure.
 */
export function corsHeaders(allowed: readonly string[], origin: string | null, exposed = EXPOSED_HEADERS): CorsHeaders | null {
  if (allowed.length === 0) return null;
  if (allowed.includes("*")) return { "access-control-allow-origin": "*", "access-control-expose-headers": exposed };
  // A list: the answer depends on Origin, so caches must key on it even when it is refused.
  if (origin === null || !allowed.includes(origin)) return { vary: "Origin" };
  return { "access-control-allow-origin": origin, "access-control-expose-headers": exposed, vary: "Origin" };
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

/**
 * The headers of the answer to a CORS preflight (an OPTIONS with Origin and
 * Access-Control-Request-Method), or null when the request is not one this policy answers.
 */
export function preflightFor(allowed: readonly string[], headers: Pick<Headers, "get" | "has">): CorsHeaders | null {
  const base = corsHeaders(allowed, headers.get("origin"));
  return base && headers.has("access-control-request-method") ? preflightHeaders(base) : null;
}

/** Sets `headers` on `response` (none when null). */
export function withCorsHeaders(response: Response, headers: CorsHeaders | null): Response {
  if (headers) for (const name in headers) response.headers.set(name, headers[name]!);
  return response;
}
