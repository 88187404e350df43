/**
 * Composes Spool's Elysia app from its feature modules. Pure wiring: no listening, no globals,
 * so tests and the CLI build exactly what production runs.
 */
import { access, constants } from "node:fs/promises";
import { join } from "node:path";
import { Elysia, ValidationError } from "elysia";
import { errorFields, logger } from "./lib/log.ts";
import { idOf, requestTelemetry } from "./lib/requests.ts";
import { methodTable } from "./http/allow.ts";
import { requestPath } from "./http/path.ts";
import { registry } from "./metrics/metrics.ts";
import { metricsRoutes } from "./metrics/routes.ts";
import { mutationLimit } from "./access/mutation-limit.ts";
import { accessRoutes } from "./access/plugin.ts";
import { AccessControl } from "./access/service.ts";
import type { Config } from "./config.ts";
import type { SpoolDb } from "./db/client.ts";
import { fileServer } from "./files/send-file.ts";
import { MemoryTier } from "./files/memory-tier.ts";
import { ClipStore } from "./files/clip-store.ts";
import { HttpError, errorResponse, httpErrorResponse } from "./http/errors.ts";
import { bodyLimits } from "./modules/body-limit/plugin.ts";
import { healthRoutes } from "./modules/health/routes.ts";
import { corsRoutes } from "./modules/cors/plugin.ts";
import { hlsRoutes } from "./modules/hls/routes.ts";
import { HlsService } from "./modules/hls/service.ts";
import { playerRoutes } from "./modules/player/routes.ts";
import { MediaTools } from "./media/tools.ts";
import { IngestJobs } from "./modules/ingest/job.ts";
import { ImportJobs } from "./modules/imports/job.ts";
import { ImportService } from "./modules/imports/service.ts";
import { TranscodeJobs } from "./modules/hls/worker.ts";
import { JobQueue } from "./queue/jobs.ts";
import { JobRunner, type JobHandler } from "./queue/runner.ts";
import { importConfig, transcodeConfig } from "./config.ts";
import { IngestPipeline } from "./modules/ingest/pipeline.ts";
import { DEFAULT_INGEST_LIMITS } from "./media/probe.ts";
import { openapiRoutes } from "./modules/openapi/plugin.ts";
import { staticRoutes } from "./modules/static/routes.ts";
import { StreamCatalog } from "./modules/stream/catalog.ts";
import { nativeStreamRoute, streamCorsHeaders, streamRoutes } from "./modules/stream/routes.ts";
import { thumbnailRoutes } from "./modules/thumbnails/routes.ts";
import { Thumbnails } from "./modules/thumbnails/service.ts";
import { uploadRoutes } from "./modules/uploads/routes.ts";
import { ResumableUploads } from "./modules/uploads/tus.ts";
import { DirectUploads } from "./modules/uploads/direct.ts";
import { videoRoutes } from "./modules/videos/routes.ts";
import { VideoLibrary } from "./library/videos.ts";
import { DEFAULT_FAILED_RETENTION_MS, RetentionSweeper } from "./modules/videos/retention.ts";
import { Storage } from "./library/storage.ts";
import { createBlockCache, createObjectStore, defaultStorageConfig, ObjectNotFound, StorageUnavailable, type ObjectStore } from "./storage/index.ts";
import { ObjectServer, storageErrorResponse } from "./storage/serve.ts";

const log = logger("http");

export interface AppContext {
  config: Config;
  db: SpoolDb;
  /** The durable queue of background work (ingest, transcode, import). */
  jobs: JobQueue;
  /** This process's worker, when it runs one (startWorker). */
  worker: JobRunner | undefined;
  library: VideoLibrary;
  catalog: StreamCatalog;
  /** ffmpeg/ffprobe; undefined when not installed (ingest off, streaming on). */
  media: MediaTools | undefined;
  ingest: IngestPipeline;
  /** URL imports: checks, the `import` jobs' download step. */
  imports: ImportService;
  thumbnails: Thumbnails;
  uploads: ResumableUploads;
  /** HLS ladder: transcode queue, (optional) worker, SSE progress. */
  hls: HlsService;
  /** The API key, sessions and playback tokens. */
  access: AccessControl;
  /** Deletes failed and abandoned videos after FAILED_RETENTION_MS (the primary process runs it). */
  retention: RetentionSweeper;
  /** Set when shutdown begins: /ready answers 503 from then on. */
  lifecycle: { draining: boolean };
  /** What GET /metrics answers: this process's registry, or (WORKERS > 1) every process's, summed. */
  metrics: { collect: () => Promise<string> };
  /** Where media objects live (STORAGE): DATA_DIR, or a bucket. */
  store: ObjectStore;
  /** STORAGE=s3: the bucket's HTTP engine over the block cache (`init()` before serving); undefined for local disk. */
  objects: ObjectServer | undefined;
}

/** A Config whose secrets are known (src/server.ts reads or generates them before the app is built). */
export type ResolvedConfig = Config & { apiKey: string; signingSecret: string };

export function createContext(config: ResolvedConfig, db: SpoolDb): AppContext {
  const storageConfig = config.storage ?? defaultStorageConfig(config.dataDir);
  const store = createObjectStore(config.dataDir, storageConfig);
  const blockCache = createBlockCache(store, storageConfig);
  // Local disk keeps its own engine (sendfile from DATA_DIR) untouched; only a bucket gets this.
  const objects = blockCache ? new ObjectServer(store, blockCache, storageConfig.delivery, config.cacheTtlMs) : undefined;
  const library = new VideoLibrary(db, new Storage(config.dataDir, objects ? store : null), config.defaultPlayback);
  const jobs = new JobQueue(db);
  const media = MediaTools.locate(config);
  const thumbnails = new Thumbnails(library.storage, media, { concurrency: config.thumbnailConcurrency, queue: config.thumbnailQueue }, objects);
  // Work queued here is looked at at once by this process's worker, if it runs one.
  const wake = () => ctx.worker?.wake();
  const ingest = new IngestPipeline(
    library,
    jobs,
    media,
    {
      maxDurationS: config.maxDurationS ?? DEFAULT_INGEST_LIMITS.maxDurationS,
      maxPixels: config.maxPixels ?? DEFAULT_INGEST_LIMITS.maxPixels,
      maxFps: config.maxFps ?? DEFAULT_INGEST_LIMITS.maxFps,
    },
    wake,
  );
  const imports = new ImportService(library, ingest, jobs, { ...importConfig(config), maxBytes: config.maxUploadBytes }, wake);
  const uploads = new ResumableUploads(library, ingest, new DirectUploads(db), {
    dataDir: config.dataDir,
    maxUploadBytes: config.maxUploadBytes,
    expiryMs: config.uploadExpiryMs,
    corsOrigins: config.corsOrigins ?? ["*"],
  });
  const hls = new HlsService(library, jobs, wake);
  const memory = config.memoryCacheBytes ? new MemoryTier({ maxBytes: config.memoryCacheBytes }) : undefined;
  // Clips kept as files (whole clips by sendfile): shared by the processes of this DATA_DIR.
  const clipStore = config.clipCacheBytes ? new ClipStore({ dir: join(config.dataDir, "cache", "clips"), maxBytes: config.clipCacheBytes, memory }) : undefined;
  const catalog = new StreamCatalog(library, config.cacheTtlMs, streamCorsHeaders(config.corsOrigins ?? ["*"]), undefined, memory, objects, clipStore);
  const access = new AccessControl(db, { apiKey: config.apiKey, signingSecret: config.signingSecret, trustProxy: config.trustProxy });
  const retention = new RetentionSweeper(library, () => uploads.videoIds(), {
    retentionMs: config.failedRetentionMs ?? DEFAULT_FAILED_RETENTION_MS,
    uploadExpiryMs: uploads.expiryMs,
  });
  const metrics = { collect: () => registry.metrics() };
  const ctx: AppContext = { config, db, jobs, worker: undefined, library, catalog, media, ingest, imports, thumbnails, uploads, hls, access, retention, lifecycle: { draining: false }, metrics, store, objects };
  // A deleted video's jobs stop everywhere: cancelled in the queue (a worker elsewhere sees its
  // heartbeat refused), and aborted at once here.
  library.onRemove(async (id) => {
    await jobs.cancelForVideo(id);
    await ctx.worker?.cancelVideo(id);
  });
  return ctx;
}

/**
 * Starts this process's worker: it claims every kind of job (undefined, with a warning, when
 * ffmpeg is missing: the jobs wait for a worker that has it).
 */
export async function startWorker(ctx: AppContext): Promise<JobRunner | undefined> {
  if (ctx.worker) return ctx.worker;
  if (!ctx.media) {
    log.warn("ffmpeg/ffprobe not found: no worker in this process (processing and HLS builds wait for one)");
    return undefined;
  }
  const settings = transcodeConfig(ctx.config);
  const kinds = ctx.config.jobKinds;
  const handlers: JobHandler[] = [
    new IngestJobs(ctx.library, ctx.media, ctx.thumbnails, ctx.jobs, settings),
    new TranscodeJobs(ctx.library, ctx.jobs, ctx.media, settings),
    new ImportJobs(ctx.imports, ctx.library, ctx.jobs, settings),
  ].filter((h) => !kinds || kinds.includes(h.kind));
  const workerLog = logger("worker");
  ctx.worker = new JobRunner(ctx.jobs, handlers, settings, { info: (m) => workerLog.info(m), warn: (m) => workerLog.warn(m) });
  await ctx.worker.start();
  return ctx.worker;
}

/** Stops this process's worker: running jobs are aborted and handed back to the queue. */
export async function stopWorker(ctx: AppContext): Promise<void> {
  const worker = ctx.worker;
  ctx.worker = undefined;
  await worker?.stop();
}

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

/**
 * Errors raised by Bun itself, after a handler returned: in practice a file that vanished
 * between the cached stat and sendfile. Drop the stale cache entry and answer like any 404.
 */
function nativeError(ctx: AppContext, error: Error): Response {
  const { code, path } = error as NodeJS.ErrnoException;
  if (code === "ENOENT" && path) {
    ctx.catalog.forgetPath(path);
    log.warn({ path }, "file vanished while cached; answering 404");
    return errorResponse(404, "not_found", "The file is no longer available");
  }
  log.error(errorFields(error), "error in the server");
  return errorResponse(500, "internal_error", "Something went wrong on our side");
}

/** What /ready checks: the database answers a query, and DATA_DIR can be written (or the bucket answers). */
async function readinessChecks(ctx: AppContext): Promise<Record<string, string>> {
  const check = async (probe: () => unknown): Promise<string> => {
    try {
      await probe();
      return "ok";
    } catch (error) {
      return error instanceof Error ? error.message : String(error);
    }
  };
  const [database, storage] = await Promise.all([
    check(() => ctx.db.ping()),
    check(() => (ctx.objects ? ctx.store.check() : access(ctx.config.dataDir, constants.W_OK))),
  ]);
  return { database, storage };
}

export function createApp(ctx: AppContext) {
  // Which methods a path supports, for 405 + Allow; built from the route table on first need.
  let methodsFor: ((path: string) => string[]) | undefined;
  /** The JSON error for anything a handler (or Elysia) throws. */
  const errorAnswer = ({ code, error, request }: { code: string | number; error: unknown; request: Request }): Response => {
    if (error instanceof HttpError) return httpErrorResponse(error);
    if (error instanceof StorageUnavailable || error instanceof ObjectNotFound) return storageErrorResponse(error);
    switch (code) {
      case "NOT_FOUND": {
        const path = requestPath(request.url);
        const allowed = (methodsFor ??= methodTable(app.routes))(path);
        if (allowed.length) return errorResponse(405, "method_not_allowed", `${request.method} is not allowed on ${path}`, { allow: allowed.join(", ") });
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
    // Anything else is our bug: log it in full (the path, never the query: it can hold a token),
    // tell the client nothing internal.
    log.error({ reqId: idOf(request), method: request.method, path: requestPath(request.url), ...errorFields(error) }, "unhandled error");
    return errorResponse(500, "internal_error", "Something went wrong on our side");
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
      routes: nativeStreamRoute(ctx.catalog, ctx.access, ctx.config.corsOrigins ?? ["*"], { metrics: ctx.config.metrics ?? true }),
    },
  })
    .onError((context) => {
      const response = errorAnswer(context);
      // The request log and metrics read the status from here (onAfterResponse).
      context.set.status = response.status;
      return response;
    })
    // Every answer gets its X-Request-Id and log line, refusals included.
    .use(requestTelemetry())
    // Credentials first: an unauthenticated request learns nothing, not even a size limit.
    .use(accessRoutes(ctx.access))
    .use(mutationLimit(ctx.access, ctx.config.mutationRateLimit ?? 120))
    .use(bodyLimits(ctx.config.maxUploadBytes))
    .use(corsRoutes(ctx.config.corsOrigins ?? ["*"]))
    .use(fileServer())
    .use(healthRoutes({ draining: () => ctx.lifecycle.draining, checks: () => readinessChecks(ctx) }))
    .use(ctx.config.metrics === false ? new Elysia({ name: "spool.metrics" }) : metricsRoutes(() => ctx.metrics.collect()))
    .use(streamRoutes(ctx.catalog, ctx.access))
    .use(hlsRoutes(ctx.hls, { catalog: ctx.catalog, access: ctx.access, downloads: ctx.imports.events, objects: ctx.objects }, ctx.config.cacheTtlMs))
    .use(playerRoutes(ctx.library, ctx.access, ctx.config.cacheTtlMs))
    .use(videoRoutes(ctx.library, ctx.ingest, ctx.access, ctx.config.maxUploadBytes, ctx.imports))
    .use(thumbnailRoutes(ctx.library, ctx.thumbnails, ctx.access, ctx.config.cacheTtlMs, ctx.objects))
    .use(uploadRoutes(ctx.uploads, ctx.ingest, ctx.config.defaultPlayback ?? "public"))
    .use(openapiRoutes())
    .use(staticRoutes(ctx.config.staticDir, ctx.config.cacheTtlMs, ctx.catalog.memory));
  return app;
}

export type App = ReturnType<typeof createApp>;
