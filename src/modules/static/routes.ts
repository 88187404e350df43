/**
 * Every file under STATIC_DIR at /static/..., through the same file engine as the stream route.
 *
 * Served as a native Bun route (`nativeStaticRoute`), like the stream: Elysia 1.4.30 routes a
 * wildcard path itself, and finds the path with `url.indexOf("/", 11)`, so a request whose Host
 * is three characters or fewer (`Host: web`, a compose service) got the wrong path and a 405;
 * and its automatic HEAD ran the GET and read the whole body to count it (2 GiB read for a HEAD,
 * a Content-Length of 0 on a multipart or 304 HEAD). The Elysia route (`staticRoutes`) serves
 * the same handler for `app.handle()` and documents it in OpenAPI.
 */
import { Elysia } from "elysia";
import { FileCache } from "../../files/cache.ts";
import type { MemoryTier } from "../../files/memory-tier.ts";
import { serveFile } from "../../files/send-file.ts";
import { errorResponse } from "../../http/errors.ts";
import { requestPath } from "../../http/path.ts";
import { withTelemetry } from "../../lib/requests.ts";
import { StaticRoot } from "./resolve.ts";

const PREFIX = "/static/";
const ROUTE = "/static/*";

/** The still-encoded path after /static/, taken from the raw URL so it is decoded only once. */
function rawRelativePath(url: string): string {
  const path = requestPath(url);
  const hash = path.indexOf("#");
  return path.slice(PREFIX.length, hash < 0 ? undefined : hash);
}

export type StaticHandler = (request: Request) => Promise<Response>;

/** `memory`: the RAM tier the stream route uses (small files and heads of large ones). */
export function staticHandler(staticDir: string, cacheTtlMs: number, memory?: MemoryTier): StaticHandler {
  const root = new StaticRoot(staticDir, cacheTtlMs);
  const cache = new FileCache(cacheTtlMs);
  const options = memory ? { memory } : {};
  return async (request) => {
    const path = await root.resolve(rawRelativePath(request.url));
    if (!path) return errorResponse(404, "not_found", "No such file");
    return serveFile(request, path, options, cache);
  };
}

/** The Bun route table entry (see the module's comment); other methods get 405 with Allow. */
export function nativeStaticRoute(handler: StaticHandler) {
  const serve = withTelemetry(ROUTE, handler);
  const notAllowed = withTelemetry(ROUTE, (request) =>
    errorResponse(405, "method_not_allowed", `${request.method} is not allowed on ${requestPath(request.url)}`, { allow: "GET, HEAD" }),
  );
  return { [ROUTE]: { GET: serve, HEAD: serve, POST: notAllowed, PUT: notAllowed, PATCH: notAllowed, DELETE: notAllowed, OPTIONS: notAllowed } };
}

export function staticRoutes(handler: StaticHandler) {
  return new Elysia({ name: "spool.static" }).get(ROUTE, ({ request }) => handler(request), {
    detail: { summary: "A file from STATIC_DIR, with range and conditional support" },
  });
}
