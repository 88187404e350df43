/**
 * The routes Bun's own router answers, with no Elysia per request: the stream (the hot path), the
 * HLS ladder's files, the static folder, and the operations probes (`/health`, `/ready`, `/metrics`), which load
 * balancers and Prometheus send to every process. Used by the Elysia app (src/web.ts, as
 * `serve.routes`) and by a WORKERS child before it builds that app (src/server.ts), so this
 * module loads no Elysia.
 */
import { access, constants } from "node:fs/promises";
import type { AppContext } from "./app.ts";
import { libraryPaths } from "./config.ts";
import { nativeMetricsRoute } from "./metrics/native.ts";
import { readiness, type Readiness } from "./modules/health/answers.ts";
import { nativeHealthRoutes } from "./modules/health/native.ts";
import { ladderServer } from "./modules/hls/files.ts";
import { nativeHlsRoutes } from "./modules/hls/native.ts";
import { nativeStaticRoute, staticHandler } from "./modules/static/native.ts";
import { nativeStreamRoute } from "./modules/stream/routes.ts";

/** What /ready checks: the database answers a query, and DATA_DIR can be written (or the bucket answers). */
function readinessOf(ctx: AppContext): Readiness {
  return readiness(() => ctx.lifecycle.draining, {
    database: () => ctx.db.ping(),
    storage: () => (ctx.objects ? ctx.store.check() : access(ctx.config.dataDir, constants.W_OK)),
  });
}

export function nativeRoutes(ctx: AppContext) {
  const excluded = libraryPaths(ctx.config).map(({ path }) => path);
  const statics = staticHandler(ctx.config.staticDir, ctx.config.cacheTtlMs, {
    excluded,
    sandbox: ctx.config.staticSandbox ?? true,
    ...(ctx.catalog.memory ? { memory: ctx.catalog.memory } : {}),
    ...(ctx.catalog.descriptors ? { descriptors: ctx.catalog.descriptors } : {}),
  });
  const metrics = ctx.config.metrics ?? true;
  const origins = ctx.config.corsOrigins ?? ["*"];
  const stream = nativeStreamRoute(ctx.catalog, ctx.access, origins, { metrics });
  const ladder = ladderServer(ctx.hls, { catalog: ctx.catalog, access: ctx.access, ...(ctx.objects ? { objects: ctx.objects } : {}) }, ctx.config.cacheTtlMs);
  const ready = readinessOf(ctx);
  // `collect` is read per scrape: src/index.ts replaces it with the cluster's sum.
  const operations = { ...nativeHealthRoutes(ready), ...nativeMetricsRoute(ctx.access, metrics ? () => ctx.metrics.collect() : null) };
  return { routes: { ...stream, ...nativeHlsRoutes(ladder, origins), ...nativeStaticRoute(statics), ...operations }, statics, readiness: ready, ladder };
}

export type NativeRoutes = ReturnType<typeof nativeRoutes>;
