/**
 * Applies CORS to the media routes Elysia serves (/api/hls/*, and /api/stream/* under app.handle;
 * the live stream route is a native Bun route that applies the same headers itself), and to
 * what Spool answers on tus routes before @tus/server does.
 *
 * The headers are put on `set.headers` in onRequest, which Elysia merges into whatever the route
 * returns, error responses included (a player should be able to read a 404's JSON too). It runs
 * before the access guard and the mutation limit (src/web.ts), so their 401 and 429 carry them.
 */
import { Elysia } from "elysia";
import { corsHeaders, preflightFor } from "../../http/cors.ts";
import { requestPath } from "../../http/path.ts";
import { DIRECT_UPLOADS_PATH } from "../uploads/direct.ts";
import { TUS_EXPOSED_HEADERS, UPLOADS_PATH } from "../uploads/tus.ts";

export const CORS_PREFIXES = ["/api/stream/", "/api/hls/"] as const;

/**
 * A tus route (not the key holder's `POST /api/uploads/direct`, which issues a URL). @tus/server
 * answers CORS itself, preflights included (with the Tus-* discovery headers), and a header it
 * sets wins over these; what Spool answers before it (401, 429, a used or expired direct upload
 * URL, a malformed header) gets the same policy, readable by the page that uploads, and the
 * Tus-Resumable that tus 1.0.0 puts on every answer.
 */
function isTusPath(path: string): boolean {
  return path === UPLOADS_PATH || (path.startsWith(`${UPLOADS_PATH}/`) && path !== DIRECT_UPLOADS_PATH);
}

export function corsRoutes(allowed: readonly string[], prefixes: readonly string[] = CORS_PREFIXES) {
  return new Elysia({ name: "spool.cors" }).onRequest(({ request, set }) => {
    const path = requestPath(request.url);
    const tus = isTusPath(path);
    if (tus) {
      if (request.method === "OPTIONS") return;
      set.headers["tus-resumable"] = "1.0.0";
    } else {
      if (!prefixes.some((p) => path.startsWith(p))) return;
      if (request.method === "OPTIONS" && allowed.length > 0) {
        const preflight = preflightFor(allowed, request.headers);
        if (preflight) return new Response(null, { status: 204, headers: preflight });
      }
    }
    const headers = allowed.length > 0 ? corsHeaders(allowed, request.headers.get("origin"), tus ? TUS_EXPOSED_HEADERS : undefined) : null;
    if (headers) Object.assign(set.headers, headers);
  });
}
