/**
 * Composes Spool's services (createContext) and this process's worker. Pure wiring: no
 * listening, no globals, so tests and the CLI build exactly what production runs. The Elysia app
 * over them is src/web.ts (createApp): this module loads no Elysia, so a WORKERS child that has
 * only streamed, the worker CLI and the ingest CLI do not hold it (issue 15).
 */
import { join } from "node:path";
import { errorFields, logger } from "./lib/log.ts";
import { clipHeaderCache, diskCache, registry } from "./metrics/metrics.ts";
import { AccessControl } from "./access/service.ts";
import type { Config } from "./config.ts";
import type { SpoolDb } from "./db/client.ts";
import { OpenFiles } from "./files/open-files.ts";
import { MemoryTier } from "./files/memory-tier.ts";
import { ClipStore } from "./files/clip-store.ts";
import { errorResponse } from "./http/errors.ts";
import { HlsService } from "./modules/hls/service.ts";
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
import { StreamCatalog } from "./modules/stream/catalog.ts";
import { streamCorsHeaders } from "./modules/stream/routes.ts";
import { Thumbnails } from "./modules/thumbnails/service.ts";
import { ResumableUploads } from "./modules/uploads/tus.ts";
import { DirectUploads } from "./modules/uploads/direct.ts";
import { VideoLibrary } from "./library/videos.ts";
import { DEFAULT_FAILED_RETENTION_MS, RetentionSweeper } from "./modules/videos/retention.ts";
import { Storage } from "./library/storage.ts";
import { createBlockCache, createObjectStore, defaultStorageConfig, type ObjectStore } from "./storage/index.ts";
import { ObjectServer } from "./storage/serve.ts";

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
  /** `draining` once the server stops; `drain` aborts then (long-lived answers such as event streams end). */
  lifecycle: { draining: boolean; readonly drain: AbortController };
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
  const thumbnails = new Thumbnails(library.storage, media, { concurrency: config.thumbnailConcurrency, queue: config.thumbnailQueue }, objects, (id) => library.ownsFiles(id));
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
  // Local files only: a bucket's bytes are not files this process opens.
  const descriptors = objects ? undefined : new OpenFiles();
  // Clips kept as files (whole clips by sendfile): shared by the processes of this DATA_DIR.
  const clipStore = config.clipCacheBytes ? new ClipStore({ dir: join(config.dataDir, "cache", "clips"), maxBytes: config.clipCacheBytes, memory }) : undefined;
  if (blockCache)
    diskCache("blocks", () => {
      const { blocks, bytes, evictions } = blockCache.stats();
      return { files: blocks, bytes, evictions };
    });
  if (clipStore) diskCache("clips", () => clipStore.stats());
  const catalog = new StreamCatalog(library, config.cacheTtlMs, {
    extraHeaders: streamCorsHeaders(config.corsOrigins ?? ["*"]),
    memory,
    descriptors,
    objects,
    clipStore,
    clipHeaderBytes: config.clipHeaderCacheBytes,
  });
  clipHeaderCache(() => catalog.clipCache.store.bytes);
  const access = new AccessControl(db, {
    apiKey: config.apiKey,
    signingSecret: config.signingSecret,
    ...(config.previousSigningSecret ? { previousSigningSecret: config.previousSigningSecret } : {}),
    trustProxy: config.trustProxy,
  });
  const retention = new RetentionSweeper(library, () => uploads.videoIds(), {
    retentionMs: config.failedRetentionMs ?? DEFAULT_FAILED_RETENTION_MS,
    uploadExpiryMs: uploads.expiryMs,
  });
  const metrics = { collect: () => registry.metrics() };
  const ctx: AppContext = { config, db, jobs, worker: undefined, library, catalog, media, ingest, imports, thumbnails, uploads, hls, access, retention, lifecycle: { draining: false, drain: new AbortController() }, metrics, store, objects };
  // A deleted video's jobs stop everywhere: its queue rows went with its row (ON DELETE CASCADE),
  // so a worker elsewhere sees its heartbeat refused; here they are aborted at once.
  library.onRemove(async (id) => {
    thumbnails.cancelVideo(id);
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
    new IngestJobs(ctx.library, ctx.media, ctx.thumbnails, ctx.jobs, settings, ctx.ingest.limits),
    new TranscodeJobs(ctx.library, ctx.jobs, ctx.media, settings),
    new ImportJobs(ctx.imports, ctx.library, ctx.jobs, settings),
  ].filter((h) => !kinds || kinds.includes(h.kind));
  const workerLog = logger("worker");
  ctx.worker = new JobRunner(ctx.jobs, handlers, settings, { info: (m) => workerLog.info(m), warn: (m) => workerLog.warn(m) });
  await ctx.worker.start();
  return ctx.worker;
}

/** Stops this process's worker: running jobs are aborted and handed back to the queue (or done, if they finish meanwhile). */
export async function stopWorker(ctx: AppContext): Promise<void> {
  const worker = ctx.worker;
  ctx.worker = undefined;
  await worker?.stop();
}

/**
 * Errors raised by Bun itself, after a handler returned: in practice a file that vanished
 * between the cached stat and sendfile. Drop the stale cache entry and answer like any 404.
 */
export function nativeError(ctx: AppContext, error: Error): Response {
  const { code, path } = error as NodeJS.ErrnoException;
  if (code === "ENOENT" && path) {
    // A kept clip removed by another process since this one last checked it: the clip is still
    // there to be had (its next request streams it), so not a 404.
    if (ctx.catalog.clips?.lost(path)) {
      log.warn({ path }, "kept clip vanished before it was sent; answering 503");
      return errorResponse(503, "clip_unavailable", "The clip is being prepared; try again", { "retry-after": "1" });
    }
    ctx.catalog.forgetPath(path);
    log.warn({ path }, "file vanished while cached; answering 404");
    return errorResponse(404, "not_found", "The file is no longer available");
  }
  log.error(errorFields(error), "error in the server");
  return errorResponse(500, "internal_error", "Something went wrong on our side");
}
