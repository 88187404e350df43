/**
 * The routes Bun's own router answers, with no Elysia per request: the stream (the hot path) and
 * the static folder. Used by the Elysia app (src/web.ts, as `serve.routes`) and by a WORKERS
 * child before it builds that app (src/server.ts), so this module loads no Elysia.
 */
import type { AppContext } from "./app.ts";
import { nativeStaticRoute, staticHandler, type StaticHandler } from "./modules/static/native.ts";
import { nativeStreamRoute } from "./modules/stream/routes.ts";

export function nativeRoutes(ctx: AppContext): { routes: ReturnType<typeof nativeStreamRoute> & ReturnType<typeof nativeStaticRoute>; statics: StaticHandler } {
  const statics = staticHandler(ctx.config.staticDir, ctx.config.cacheTtlMs, ctx.catalog.memory, ctx.catalog.descriptors);
  const stream = nativeStreamRoute(ctx.catalog, ctx.access, ctx.config.corsOrigins ?? ["*"], { metrics: ctx.config.metrics ?? true });
  return { routes: { ...stream, ...nativeStaticRoute(statics) }, statics };
}
