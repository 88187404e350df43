/**
 * Starts Spool: opens the database, prepares storage, seeds the demo video, listens.
 * Used by src/index.ts and by the tests (which pass PORT=0 for an ephemeral port).
 */
import { DEMO_FIXTURE } from "./paths.ts";
import { API_KEY_FILE, MIN_API_KEY_LENGTH, MIN_SIGNING_SECRET_LENGTH, SIGNING_SECRET_FILE, describeApiKey, generateApiKey, generateSigningSecret, resolveSecret } from "./access/secrets.ts";
import type { Server } from "bun";
import { lookup } from "node:dns/promises";
import type { StatsFs } from "node:fs";
import { statfs } from "node:fs/promises";
import { isIP } from "node:net";
import { createContext, nativeError, startWorker, stopWorker, type AppContext, type ResolvedConfig } from "./app.ts";
import { transcodeConfig, type Config } from "./config.ts";
import { StartupError } from "./lib/startup.ts";
import { openDatabase } from "./db/client.ts";
import { LocalHousekeeping } from "./library/housekeeping.ts";
import { prepareDataDir } from "./library/storage.ts";
import { errorFields, logger } from "./lib/log.ts";
import { gauge } from "./metrics/metrics.ts";
import { nativeRoutes } from "./native-routes.ts";
import { OrphanSweeper, bucketOrphans } from "./storage/orphans.ts";
import { libraryOwnership } from "./library/ownership.ts";
import { DEMO_VIDEO_ID } from "./library/ids.ts";
import type { App } from "./web.ts";

export { DEMO_VIDEO_ID };

export interface RunningSpool {
  url: string;
  port: number;
  ctx: AppContext;
  /** Where the API key comes from and how to read it (never the key itself). */
  apiKeyNotice: string;
  /**
   * Stops everything. `graceMs` > 0 drains first: /ready turns 503, the listener closes, and
   * responses in flight (a long download too) get up to `graceMs` to finish; then connections
   * are closed, a running transcode is handed back to the queue, and the database is closed.
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  /**
   * A process that received uploads for this one died (a WORKERS child): its multipart uploads
   * in progress are marked failed now, as a restart would, not left `uploading` for days.
   */
  receiverExited(): Promise<void>;
  /** The primary's orphan sweep (src/storage/orphans.ts), guarded by the library's ownership of the store. */
  orphans?: OrphanSweeper;
}

/** Marks failed the `uploading` videos whose receiving process is gone (tus uploads resume, so they stay). */
async function failInterruptedUploads(ctx: AppContext): Promise<number> {
  return ctx.library.failInterrupted(await ctx.uploads.videoIds());
}

/**
 * SO_REUSEPORT lets any process join a port that another one serves with it, so a second Spool
 * started by mistake would silently share the first one's traffic (and alternate between two
 * libraries). The primary therefore binds once without it first: that fails while anyone holds
 * the port. (The window between this probe and the real bind is a few microseconds.) With
 * PORT=0 it checks HOST alone; either way before any housekeeping touches DATA_DIR.
 */
async function assertPortFree(port: number, hostname: string): Promise<void> {
  try {
    bindOnce(port, hostname);
  } catch (error) {
    throw await listenError(error, port, hostname);
  }
}

function bindOnce(port: number, hostname: string): void {
  Bun.serve({ port, hostname, reusePort: false, fetch: () => new Response(null, { status: 503 }) }).stop(true);
}

/**
 * Why Spool cannot listen, told as what to fix. A HOST that is not this machine's (192.0.2.1) or
 * does not resolve (not-a-host) used to be reported as "port in use", sending the operator after
 * the wrong setting. Bun's error code cannot tell them apart: for a name that does not resolve it
 * is whatever errno was left over (EINVAL, EADDRNOTAVAIL, even EADDRINUSE). So HOST is tried
 * alone first; only when it is fine does the code speak about the port.
 */
async function listenError(error: unknown, port: number, hostname: string): Promise<StartupError> {
  const hostProblem = await unusableHost(hostname);
  if (hostProblem) return new StartupError(`HOST=${hostname}: cannot listen there (${hostProblem}): set HOST to an address of this machine, or 0.0.0.0 for all`, 2);
  const code = (error as { code?: unknown } | undefined)?.code;
  const cause = error instanceof Error ? error.message : String(error);
  if (code === "EADDRINUSE") return new StartupError(`port ${port} on ${hostname} is already in use (another Spool, or another program): stop it or set PORT`);
  if (code === "EACCES") return new StartupError(`PORT=${port}: not allowed to listen on it (${cause}): ports below 1024 need privileges`, 2);
  return new StartupError(`cannot listen on ${hostname}:${port} (${cause})`);
}

/** Why nothing can listen on `hostname` (on any port), or undefined when something can. */
async function unusableHost(hostname: string): Promise<string | undefined> {
  if (isIP(hostname) === 0) {
    try {
      await lookup(hostname);
    } catch (error) {
      return `the name does not resolve: ${error instanceof Error ? error.message : String(error)}`;
    }
  }
  try {
    bindOnce(0, hostname);
    return undefined;
  } catch (error) {
    // A resolved name or an address that is not this machine's: EADDRNOTAVAIL.
    return error instanceof Error ? error.message : String(error);
  }
}

/** The config with its API key and signing secret: from the environment, else from DATA_DIR (made once). */
export async function resolveSecrets(config: Config): Promise<{ config: ResolvedConfig; apiKeyNotice: string }> {
  // The first thing every entry point (server, `bun run worker`, `bun run ingest`) does with
  // DATA_DIR: it is created owner-only here, before the secrets and the database go in.
  if (prepareDataDir(config.dataDir) === "open") {
    log.warn({ dataDir: config.dataDir }, "DATA_DIR can be entered by other users of this machine (signed videos, uploads and the database are inside): chmod 700 it");
  }
  const apiKey = await resolveSecret("API_KEY", config.apiKey, config.dataDir, API_KEY_FILE, generateApiKey, MIN_API_KEY_LENGTH);
  const signing = await resolveSecret("SIGNING_SECRET", config.signingSecret, config.dataDir, SIGNING_SECRET_FILE, generateSigningSecret, MIN_SIGNING_SECRET_LENGTH);
  return { config: { ...config, apiKey: apiKey.value, signingSecret: signing.value }, apiKeyNotice: describeApiKey(apiKey) };
}

/** What ffprobe says about fixtures/demo.mp4, for servers without ffmpeg. */
const DEMO_MEDIA = {
  contentType: "video/mp4",
  container: "mp4",
  duration: 8,
  width: 640,
  height: 360,
  videoCodec: "h264",
  audioCodec: "aac",
  bitrate: 280571,
};

/** How long start-up waits for the demo's processing (a second or two when nothing is wrong). */
const SEED_WAIT_MS = 10_000;

/** Whether this process runs ingest jobs itself (its worker takes them). */
function ingestsHere(ctx: AppContext): boolean {
  return ctx.worker?.kinds.includes("ingest") ?? false;
}

async function seedDemo(ctx: AppContext): Promise<void> {
  if (await ctx.library.get(DEMO_VIDEO_ID)) return;
  // Public whatever DEFAULT_PLAYBACK says: the README's first curl commands play it.
  const meta = { id: DEMO_VIDEO_ID, title: "Spool demo (test pattern)", originalFilename: "spool-demo.mp4", playback: "public" as const };
  // With ffmpeg the demo goes through the real pipeline (probe, poster); without, known values.
  // (Spool's own fixture: the ingest limits, which may be set below its 8 s, do not apply to it.)
  // Processed by this process's worker before the server listens (the README's first curl
  // plays it); with TRANSCODE_IN_SERVER=0 (or a worker here that takes no ingest jobs), queued
  // for the workers elsewhere.
  if (ctx.ingest.available && ingestsHere(ctx)) {
    const row = await ctx.ingest.ingestFile(DEMO_FIXTURE, meta, { trusted: true });
    // Not waited for past SEED_WAIT_MS: a bucket that does not answer keeps its job waiting for
    // as long as the outage lasts, and the server must listen meanwhile.
    await Promise.race([ctx.ingest.settled(row.id), Bun.sleep(SEED_WAIT_MS)]);
  }
  else if (ctx.ingest.available) await ctx.ingest.ingestFile(DEMO_FIXTURE, meta, { trusted: true });
  else await ctx.ingest.ingestTrusted(DEMO_FIXTURE, meta, DEMO_MEDIA);
}

export interface StartOptions {
  /**
   * The primary process owns start-up housekeeping (sweeping tmp/, failing interrupted uploads,
   * seeding the demo). Extra `WORKERS` processes only serve: they must not touch uploads in flight.
   */
  primary?: boolean;
}

const log = logger("spool");

/** Queue depths on /metrics, from the shared queue (every worker's jobs, not this process's). */
function jobGauges(ctx: AppContext): void {
  const count = async (kind: string, states: string[]) =>
    (await ctx.jobs.activeCounts()).filter((c) => c.kind === kind && states.includes(c.state)).reduce((n, c) => n + c.n, 0);
  // Every process reads the same queue: not added up across a WORKERS cluster.
  const shared = { shared: true };
  gauge("spool_ingest_jobs", "Videos waiting for or in processing (probe, faststart, poster)", () => count("ingest", ["queued", "running"]), shared);
  gauge("spool_transcode_jobs_queued", "HLS transcodes waiting for a worker", () => count("transcode", ["queued"]), shared);
  gauge("spool_transcode_jobs_running", "HLS transcodes running", () => count("transcode", ["running"]), shared);
}

/**
 * The file system DATA_DIR is on (uploads, tmp/, processing, HLS ladders and, unless moved, the
 * caches): what to alert on before uploads start answering 507. Every process of a machine reads
 * the same disk, so a WORKERS cluster reports it once.
 */
function diskGauges(dataDir: string): void {
  const shared = { shared: true };
  // One statfs per scrape for both: prom-client collects a scrape's gauges concurrently.
  let reading: Promise<StatsFs> | undefined;
  const read = () => (reading ??= statfs(dataDir).finally(() => (reading = undefined)));
  gauge("spool_data_dir_available_bytes", "Bytes Spool may still write on the file system of DATA_DIR (statfs f_bavail)", async () => {
    const fs = await read();
    return fs.bavail * fs.bsize;
  }, shared);
  gauge("spool_data_dir_size_bytes", "Size of the file system of DATA_DIR", async () => {
    const fs = await read();
    return fs.blocks * fs.bsize;
  }, shared);
}

/**
 * A WORKERS child listens with Bun's router holding only the native routes (the stream, static
 * files: src/native-routes.ts), and builds the
 * Elysia app (src/web.ts: every other route, TypeBox's compiled schemas, OpenAPI, the pages) on
 * its first request that is not a stream, once: requests arriving meanwhile wait for the same
 * build. Until then the child does not hold Elysia or the route modules (issue 15; measured
 * with bench/heap.ts). The options are those Elysia's listen() would give (createApp's `serve`
 * and Elysia's defaults), and once built the app takes over the server through its own listen()
 * (`adopt`), so from then on the child is exactly what the primary is.
 */
function serveLean(ctx: AppContext, listen: { port: number; hostname: string; reusePort: boolean }, adopted: (app: App) => void): Server<undefined> {
  let building: Promise<App> | undefined;
  // One set for the process: the app built later serves the same ones (their caches, the ladder's
  // invalidation listener and /ready's check in flight are not made twice).
  const native = nativeRoutes(ctx);
  const build = async (): Promise<App> => {
    const { createApp } = await import("./web.ts");
    const app = createApp(ctx, native);
    adopt(app, server, listen);
    adopted(app);
    log.debug("first request that is not a stream: the Elysia app is built");
    return app;
  };
  const server: Server<undefined> = Bun.serve({
    ...listen,
    maxRequestBodySize: Number.MAX_SAFE_INTEGER,
    development: false,
    idleTimeout: 30,
    error: (error) => nativeError(ctx, error),
    routes: native.routes,
    fetch(request) {
      // A failed build (it should not fail) is retried by the next request; this one gets a 500.
      building ??= build().catch((error: unknown) => {
        building = undefined;
        throw error;
      });
      return building.then((app) => app.fetch(request));
    },
  });
  return server;
}

/**
 * Elysia's listen(), against the server that already listens: its Bun.serve call becomes a
 * `reload` of that server with the same options (routes, fetch, error handler), so the sockets
 * and connections in flight stay, and `app.server`, `app.stop()` and Elysia's own later reload
 * work as if the app had listened itself.
 */
function adopt(app: App, server: Server<undefined>, listen: { port: number; hostname: string; reusePort: boolean }): void {
  const bun = Bun as unknown as { serve: unknown };
  const serve = bun.serve;
  bun.serve = (options: Parameters<Server<undefined>["reload"]>[0]) => {
    server.reload(options);
    return server;
  };
  try {
    app.listen(listen);
  } finally {
    bun.serve = serve;
  }
}

export async function startSpool(given: Config, { primary = true }: StartOptions = {}): Promise<RunningSpool> {
  let housekeeping: LocalHousekeeping | undefined;
  // Before any housekeeping: a second instance must not touch the first one's uploads or jobs.
  if (primary) await assertPortFree(given.port, given.host);
  const { config, apiKeyNotice } = await resolveSecrets(given);
  const handle = await openDatabase(config.databaseUrl, { queryTimeoutMs: config.databaseQueryTimeoutMs, poolSize: config.databasePoolSize });
  const ctx = createContext(config, handle);
  await ctx.library.listen();
  await ctx.imports.listen();
  await ctx.library.storage.init(primary);
  await ctx.objects?.init();
  await ctx.catalog.clips?.init();
  // Files whose video is gone (a removal while the bucket was down, or cut short by a crash) are deleted later.
  const orphanFiles = ctx.objects ? bucketOrphans(ctx.store) : ctx.library.storage.orphanSource();
  // ...but only from a store that is this library's (a DATA_DIR or bucket of another library's is left alone).
  const ownership = libraryOwnership(ctx.library, ctx.store, config.storage?.kind === "s3" ? `the bucket ${config.storage.s3?.bucket ?? ""}` : `DATA_DIR ${config.dataDir}`);
  const orphans = primary ? new OrphanSweeper(orphanFiles, (id) => ctx.library.ownsFiles(id), {}, ownership) : undefined;
  orphans?.start();
  if (primary) {
    if (!ctx.media) {
      log.warn("ingest needs ffmpeg/ffprobe, which were not found (install ffmpeg, or set FFMPEG_PATH/FFPROBE_PATH): uploads answer 503; ready videos stream as usual");
    }
    await ctx.uploads.init();
    // A tus upload whose last byte was stored before a crash cut its hand-over short.
    const completed = await ctx.uploads.resumeCompleted();
    if (completed) log.warn({ completed }, "uploads completed before the last shutdown were handed to processing");
    // Resumable (tus) uploads survive a restart; anything else still `uploading` was cut off.
    const interrupted = await failInterruptedUploads(ctx);
    if (interrupted) log.warn({ interrupted }, "uploads interrupted by the last shutdown were marked failed");
    ctx.uploads.startSweeper();
    // Failed and abandoned videos go after FAILED_RETENTION_MS.
    ctx.retention.start();
    // The worker (processing, HLS) runs in the primary only, or elsewhere (`bun run worker`).
    // Started before the demo is seeded: its processing is a job like any other.
    if (transcodeConfig(config).inServer) await startWorker(ctx);
    else log.info("TRANSCODE_IN_SERVER=0: no worker in this process; uploads are processed, and HLS ladders built, by `npm run worker` against the same database and storage");
    if (config.seedDemo) await seedDemo(ctx);
    housekeeping = new LocalHousekeeping(ctx.library, () => ingestsHere(ctx));
    housekeeping.start();
  }

  // With several workers, each process binds the same port and the kernel spreads connections.
  const listen = { port: config.port, hostname: config.host, reusePort: config.workers > 1 };
  let app: App | undefined;
  let server: Server<undefined>;
  try {
    if (primary) {
      const { createApp } = await import("./web.ts");
      app = createApp(ctx).listen(listen);
      server = app.server!;
    } else {
      server = serveLean(ctx, listen, (built) => (app = built));
    }
  } catch (error) {
    await stopWorker(ctx);
    await handle.close();
    throw await listenError(error, config.port, config.host);
  }
  // Kept descriptors are closed only when nothing is in flight (src/files/open-files.ts).
  const descriptors = ctx.catalog.descriptors;
  descriptors?.attach(() => server.pendingRequests === 0);
  // The registry is the process's: with METRICS=0 nothing reads it, and a second Spool in the
  // same process (the tests) must not point the first one's gauges at its own server and database.
  if (config.metrics !== false) {
    gauge("spool_http_requests_in_flight", "Requests being answered by this process (streams included)", () => server.pendingRequests);
    if (descriptors) {
      gauge("spool_open_files", "Descriptors this process keeps open for short ranges of hot files", () => descriptors.openCount);
      gauge("spool_open_files_retired", "Kept descriptors no longer used, waiting for a moment with no request in flight to be closed", () => descriptors.retiredCount);
    }
    jobGauges(ctx);
    diskGauges(config.dataDir);
  }
  const host = config.host === "0.0.0.0" || config.host === "::" ? "localhost" : config.host;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${server.port}`,
    port: server.port!,
    ctx,
    apiKeyNotice,
    ...(orphans ? { orphans } : {}),
    async receiverExited() {
      const interrupted = await failInterruptedUploads(ctx).catch((error: unknown) => (log.warn(errorFields(error), "uploads of a process that exited were not marked failed; the next start does it"), 0));
      if (interrupted) log.warn({ interrupted }, "uploads the exited process was receiving were marked failed");
    },
    async stop({ graceMs = 0 } = {}) {
      ctx.lifecycle.draining = true;
      // Event streams never finish by themselves: they end now (their clients reconnect).
      ctx.lifecycle.drain.abort();
      housekeeping?.stop();
      orphans?.stop();
      ctx.uploads.stopSweeper();
      ctx.retention.stop();
      if (graceMs > 0) {
        // Stop accepting; let what is in flight finish, up to the grace period.
        const drained = await Promise.race([server.stop(false).then(() => true), Bun.sleep(graceMs).then(() => false)]);
        if (!drained) log.warn({ graceMs, inFlight: server.pendingRequests }, "grace period over: closing the connections still open");
      }
      if (app) await app.stop(true);
      else await server.stop(true);
      descriptors?.close();
      // Running jobs are stopped and handed back to the queue (staged bytes stay for the next
      // run); one that finishes meanwhile is done.
      await stopWorker(ctx);
      await ctx.library.storage.close();
      await handle.close();
    },
  };
}
