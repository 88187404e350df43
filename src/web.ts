/**
 * Spool's Elysia app over the services of src/app.ts (createContext): every route but the native
 * stream route's fast path, OpenAPI, pages. A separate module so that a process loads Elysia,
 * TypeBox's compiled schemas and the route modules only when it serves them: src/server.ts
 * imports it at start in the primary, and in a WORKERS child on its first request that is not
 * a stream (issue 15: every loaded module costs resident memory and marking time).
 */
import { Elysia, ValidationError } from "elysia";
import { nativeError, type AppContext } from "./app.ts";
import { requestTelemetry } from "./lib/requests.ts";
import { unhandledError } from "./lib/telemetry.ts";
import { methodTable } from "./http/allow.ts";
import { requestPath } from "./http/path.ts";
import { metricsRoutes } from "./metrics/routes.ts";
import { mutationLimit } from "./access/mutation-limit.ts";
import { accessRoutes } from "./access/plugin.ts";
import { fileServer } from "./files/send-file.ts";
import { errorResponse, methodNotAllowed } from "./http/errors.ts";
import { bodyLimits } from "./modules/body-limit/plugin.ts";
import { healthRoutes } from "./modules/health/routes.ts";
import { corsRoutes } from "./modules/cors/plugin.ts";
import { hlsRoutes } from "./modules/hls/routes.ts";
import { playerRoutes } from "./modules/player/routes.ts";
import { openapiRoutes } from "./modules/openapi/plugin.ts";
import { staticRoutes } from "./modules/static/routes.ts";
import { streamRoutes } from "./modules/stream/plugin.ts";
import { thumbnailRoutes } from "./modules/thumbnails/routes.ts";
import { uploadRoutes } from "./modules/uploads/routes.ts";
import { videoRoutes } from "./modules/videos/routes.ts";
import { nativeRoutes, type NativeRoutes } from "./native-routes.ts";
import { expectedErrorResponse } from "./modules/expected-errors.ts";

function validationMessage(error: Readonly<ValidationError>): string {
  // A schema's own `error` text (e.g. the video id's) says it better than the generic one.
  if (typeof error.customError === "string") return error.customError;
  const first = error.all[0];
  if (first && "path" in first) {
    const where = first.path ? `${error.type} ${first.path.replace(/^\//, "").replaceAll("/", ".")}` : error.type;
    return `${where}: ${first.message}`;
  }
  return `Invalid ${error.type}`;
}

/** `native`: the process's native routes, when it listened with them before building the app (src/server.ts). */
export function createApp(ctx: AppContext, native: NativeRoutes = nativeRoutes(ctx)) {
  // Which methods a path supports, for 405 + Allow; built from the route table on first need.
  let methodsFor: ((path: string) => string[]) | undefined;
  /** The JSON error for anything a handler (or Elysia) throws. */
  const errorAnswer = ({ code, error, request }: { code: string | number; error: unknown; request: Request }): Response => {
    const expected = expectedErrorResponse(error);
    if (expected !== null) return expected;
    switch (code) {
      case "NOT_FOUND": {
        const path = requestPath(request.url);
        const allowed = (methodsFor ??= methodTable(app.routes))(path);
        if (allowed.length) return methodNotAllowed(request.method, `on ${path}`, allowed.join(", "));
        return errorResponse(404, "not_found", `No route for ${request.method} ${path}`);
      }
      case "VALIDATION":
        return errorResponse(400, "bad_request", validationMessage(error as ValidationError));
      case "PARSE":
        return errorResponse(400, "bad_request", "The request body could not be parsed");
      case "INVALID_COOKIE_SIGNATURE":
      case "INVALID_FILE_TYPE":
        return errorResponse(400, "bad_request", (error as Error).message);
    }
    return unhandledError(request, error);
  };
  const app = new Elysia({
    serve: {
      // Bun's own limit would answer a large Content-Length with a bare 413 before any handler
      // runs; bodyLimits() below enforces the real limits with JSON errors instead.
      maxRequestBodySize: Number.MAX_SAFE_INTEGER,
      // Never Bun's HTML error page with a stack trace, whatever NODE_ENV says.
      development: false,
      error: (error) => nativeError(ctx, error),
      // The hot path as a native Bun route; Bun prefers it over Elysia's route of the same path.
      // /static/* too: Elysia's own wildcard routing is wrong for short Host names (see there).
      routes: native.routes,
    },
    // Elysia 1.4 finds the path from character 11 of the URL by default, assuming a host of at
    // least 4 characters ("http://a.bc/"): with `Host: web` or `api` (compose service names) a
    // request its own router answers (a WORKERS child's first, which builds the app) was
    // routed by the wrong path, `/api/videos` read as `/videos` (405).
    handler: { standardHostname: false },
  })
    .onError((context) => {
      const response = errorAnswer(context);
      // The request log and metrics read the status from here (onAfterResponse).
      context.set.status = response.status;
      return response;
    })
    // What a route returns as a value (its JSON) is what its Content-Type says. Answers made as
    // Responses set their own (errorResponse, the file engine, the pages), as the native routes do.
    .onAfterHandle({ as: "global" }, ({ response, set }) => {
      if (!(response instanceof Response)) set.headers["x-content-type-options"] = "nosniff";
    })
    // Every answer gets its X-Request-Id and log line, refusals included.
    .use(requestTelemetry())
    // Before the guard and the limit: their refusals carry CORS too, so a page can read them.
    .use(corsRoutes(ctx.config.corsOrigins ?? ["*"]))
    // Credentials first: an unauthenticated request learns nothing, not even a size limit.
    .use(accessRoutes(ctx.access))
    .use(mutationLimit(ctx.access, ctx.config.mutationRateLimit ?? 120))
    .use(bodyLimits(ctx.config.maxUploadBytes))
    .use(fileServer())
    .use(healthRoutes(native.readiness))
    .use(ctx.config.metrics === false ? new Elysia({ name: "spool.metrics" }) : metricsRoutes(() => ctx.metrics.collect()))
    .use(streamRoutes(ctx.catalog, ctx.access))
    .use(hlsRoutes(ctx.hls, native.ladder, { downloads: ctx.imports.events, access: ctx.access, drain: ctx.lifecycle.drain.signal }))
    .use(playerRoutes(ctx.library, ctx.access, ctx.config.cacheTtlMs, ctx.objects?.delivery === "redirect" ? ctx.objects.mediaOrigin() : undefined))
    .use(videoRoutes(ctx.library, ctx.ingest, ctx.access, ctx.config.maxUploadBytes, ctx.imports, ctx.lifecycle.drain.signal))
    .use(thumbnailRoutes(ctx.library, ctx.thumbnails, ctx.access, ctx.config.cacheTtlMs, ctx.objects))
    .use(uploadRoutes(ctx.uploads, ctx.ingest, ctx.config.defaultPlayback ?? "public"))
    .use(openapiRoutes())
    .use(staticRoutes(native.statics));
  return app;
}

export type App = ReturnType<typeof createApp>;
