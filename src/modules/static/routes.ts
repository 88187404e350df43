/**
 * Every file under STATIC_DIR at /static/..., through the same file engine as the stream route.
 *
 * Served as a native Bun route (`nativeStaticRoute`), like the stream: Elysia 1.4.30 routes a
 * wildcard path itself, and finds the path with `url.indexOf("/", 11)`, so a request whose Host
 * is three characters or fewer (`Host: web`, a compose service) got the wrong path and a 405;
 * and its automatic HEAD ran the GET and read the whole body to count it (2 GiB read for a HEAD,
 * a Content-Length of 0 on a multipart or 304 HEAD). The Elysia route (`staticRoutes`) serves
 * the same handler for `app.handle()` and documents it in OpenAPI. The handler and the native
 * route are in ./native.ts, which loads no Elysia: a WORKERS child serves static files before
 * (and without) building the app.
 */
import { Elysia } from "elysia";
import { STATIC_ROUTE, type StaticHandler } from "./native.ts";

export function staticRoutes(handler: StaticHandler) {
  return new Elysia({ name: "spool.static" }).get(STATIC_ROUTE, ({ request }) => handler(request), {
    detail: { summary: "A file from STATIC_DIR, with range and conditional support" },
  });
}
