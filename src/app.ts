/**
 * Composes Spool's Elysia app from its feature modules. Pure wiring: no listening, no globals,
 * so tests and the CLI build exactly what production runs.
 */
import { Elysia, ValidationError } from "elysia";
import type { Config } from "./config.ts";
import type { Db } from "./db/client.ts";
import { fileServer } from "./files/send-file.ts";
import { HttpError, errorResponse, httpErrorResponse } from "./http/errors.ts";
import { healthRoutes } from "./modules/health/routes.ts";
import { staticRoutes } from "./modules/static/routes.ts";
import { StreamCatalog } from "./modules/stream/catalog.ts";
import { streamRoutes } from "./modules/stream/routes.ts";
import { videoRoutes } from "./modules/videos/routes.ts";
import { VideoLibrary } from "./modules/videos/service.ts";
import { Storage } from "./modules/videos/storage.ts";

export interface AppContext {
  config: Config;
  db: Db;
  library: VideoLibrary;
  catalog: StreamCatalog;
}

export function createContext(config: Config, db: Db): AppContext {
  const library = new VideoLibrary(db, new Storage(config.dataDir));
  return { config, db, library, catalog: new StreamCatalog(library, config.cacheTtlMs) };
}

function validationMessage(error: Readonly<ValidationError>): string {
  const first = error.all[0];
  if (first && "path" in first) {
    const where = first.path ? `${error.type} ${first.path.replace(/^\//, "").replaceAll("/", ".")}` : error.type;
    return `${where}: ${first.message}`;
  }
  return `Invalid ${error.type}`;
}

export function createApp(ctx: AppContext) {
  return new Elysia({
    // Uploads are streamed to disk; let them be as large as MAX_UPLOAD_BYTES allows.
    serve: { maxRequestBodySize: ctx.config.maxUploadBytes + 1024 * 1024 },
  })
    .onError(({ code, error, request }) => {
      if (error instanceof HttpError) return httpErrorResponse(error);
      switch (code) {
        case "NOT_FOUND":
          return errorResponse(404, "not_found", `No route for ${request.method} ${new URL(request.url).pathname}`);
        case "VALIDATION":
          return errorResponse(400, "bad_request", validationMessage(error));
        case "PARSE":
          return errorResponse(400, "bad_request", "The request body could not be parsed");
        case "INVALID_COOKIE_SIGNATURE":
        case "INVALID_FILE_TYPE":
          return errorResponse(400, "bad_request", error.message);
      }
      // Anything else is our bug: log it in full, tell the client nothing internal.
      console.error(`[error] ${request.method} ${request.url}:`, error);
      return errorResponse(500, "internal_error", "Something went wrong on our side");
    })
    .use(fileServer())
    .use(healthRoutes())
    .use(streamRoutes(ctx.catalog))
    .use(videoRoutes(ctx.library, ctx.config.maxUploadBytes))
    .use(staticRoutes(ctx.config.staticDir, ctx.config.cacheTtlMs));
}

export type App = ReturnType<typeof createApp>;
