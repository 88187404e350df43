/**
 * Configuration from the environment. Every variable is optional; defaults run Spool on one
 * machine with an embedded SQLite database under DATA_DIR. src/env.ts declares and checks each
 * variable; src/config.ts is the Config they make.
 */
import { resolve } from "node:path";
import { availableParallelism } from "node:os";
import type { Playback } from "./db/schema.ts";
import { readEnv } from "./env.ts";
import { libraryPaths, type Config, type TranscodeConfig } from "./config.ts";
import { ConfigError } from "./lib/config-error.ts";
import type { LogLevel } from "./lib/log.ts";
import { isWithin } from "./lib/within.ts";
import { parseNetwork } from "./media/import/addresses.ts";
import { storageFromEnv } from "./storage/index.ts";

export { ConfigError };

/** CIDR texts checked (the env pattern lets "10.0.0.0/99" through). */
function networks(values: string[]): string[] {
  for (const value of values) {
    try {
      parseNetwork(value);
    } catch {
      throw new ConfigError(`IMPORT_ALLOWED_NETWORKS must be a comma-separated list of CIDR networks like 192.168.1.0/24, got ${JSON.stringify(value)}`);
    }
  }
  return values;
}

/**
 * The configuration from the environment (src/env.ts declares and checks every variable).
 * Throws a ConfigError, whose message is one line naming the variable, for a value it cannot use.
 */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const e = readEnv(env);
  const dataDir = resolve(e.DATA_DIR!);
  const config: Config = {
    port: e.PORT!,
    host: e.HOST!,
    dataDir,
    staticDir: resolve(e.STATIC_DIR!),
    staticSandbox: e.STATIC_SANDBOX!,
    databaseUrl: e.DATABASE_URL ?? `file:${resolve(dataDir, "spool.db")}`,
    databaseQueryTimeoutMs: e.DATABASE_QUERY_TIMEOUT_MS!,
    databasePoolSize: e.DATABASE_POOL_SIZE!,
    maxUploadBytes: e.MAX_UPLOAD_BYTES!,
    seedDemo: e.SEED_DEMO!,
    cacheTtlMs: e.CACHE_TTL_MS!,
    memoryCacheBytes: e.MEMORY_CACHE_BYTES!,
    clipCacheBytes: e.CLIP_CACHE_BYTES!,
    clipHeaderCacheBytes: e.CLIP_HEADER_CACHE_BYTES!,
    // One process per core by default; PORT=0 (any free port) cannot be shared, so it means one.
    workers: e.PORT === 0 ? 1 : (e.WORKERS ?? availableParallelism()),
    production: e.NODE_ENV === "production",
    ffmpegPath: e.FFMPEG_PATH!,
    ffprobePath: e.FFPROBE_PATH!,
    ffmpegTimeoutMs: e.FFMPEG_TIMEOUT_MS!,
    uploadExpiryMs: e.UPLOAD_EXPIRY_MS!,
    maxDurationS: e.MAX_DURATION_S!,
    maxPixels: e.MAX_PIXELS!,
    maxFps: e.MAX_FPS!,
    failedRetentionMs: e.FAILED_RETENTION_MS!,
    transcode: {
      inServer: e.TRANSCODE_IN_SERVER!,
      concurrency: e.TRANSCODE_CONCURRENCY!,
      maxAttempts: e.TRANSCODE_MAX_ATTEMPTS!,
      retryBaseMs: e.TRANSCODE_RETRY_BASE_MS!,
      retryMaxMs: e.TRANSCODE_RETRY_MAX_MS!,
      timeoutMs: e.TRANSCODE_TIMEOUT_MS!,
      heartbeatMs: e.TRANSCODE_HEARTBEAT_MS!,
      staleMs: e.TRANSCODE_STALE_MS!,
      pollMs: e.TRANSCODE_POLL_MS!,
      preset: e.TRANSCODE_PRESET as TranscodeConfig["preset"],
      segmentSeconds: e.HLS_SEGMENT_SECONDS!,
      maxHeight: e.HLS_MAX_HEIGHT!,
    },
    thumbnailConcurrency: e.THUMBNAIL_CONCURRENCY!,
    thumbnailQueue: e.THUMBNAIL_QUEUE!,
    corsOrigins: e.CORS_ORIGINS!,
    apiKey: e.API_KEY,
    signingSecret: e.SIGNING_SECRET,
    ...(e.SIGNING_SECRET_PREVIOUS ? { previousSigningSecret: e.SIGNING_SECRET_PREVIOUS } : {}),
    defaultPlayback: e.DEFAULT_PLAYBACK as Playback,
    trustProxy: e.TRUST_PROXY!,
    logLevel: e.LOG_LEVEL as LogLevel,
    logFormat: e.LOG_FORMAT,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS!,
    mutationRateLimit: e.MUTATION_RATE_LIMIT!,
    metrics: e.METRICS!,
    storage: storageFromEnv(e, dataDir),
    imports: {
      allowPrivate: e.IMPORT_ALLOW_PRIVATE!,
      allowedNetworks: networks(e.IMPORT_ALLOWED_NETWORKS ?? []),
      allowedHosts: e.IMPORT_ALLOWED_HOSTS ?? [],
      connectTimeoutMs: e.IMPORT_CONNECT_TIMEOUT_MS!,
      idleTimeoutMs: e.IMPORT_IDLE_TIMEOUT_MS!,
      minBytesPerSecond: e.IMPORT_MIN_BYTES_PER_SECOND!,
      maxDurationMs: e.IMPORT_MAX_DURATION_MS!,
      maxRedirects: e.IMPORT_MAX_REDIRECTS!,
    },
  };
  checkStaticDir(config);
  return config;
}

/**
 * STATIC_DIR must not overlap the library's own files, either way: `STATIC_DIR=.` beside the
 * default `DATA_DIR=./data` would serve `/static/data/api-key` to anyone, and a STATIC_DIR inside
 * DATA_DIR would serve signed videos without a token. (src/modules/static/resolve.ts refuses
 * them by real path too, for a STATIC_DIR that reaches them through a symlink.)
 */
function checkStaticDir(config: Config): void {
  for (const { variable, path } of libraryPaths(config)) {
    if (isWithin(path, config.staticDir) || isWithin(config.staticDir, path)) {
      throw new ConfigError(`STATIC_DIR (${config.staticDir}) and ${variable} (${path}) overlap: /static/ would serve Spool's own files (its API key, signing secret, database or videos); give STATIC_DIR a folder of its own`);
    }
  }
}

/** For the commands: a bad variable stops start-up with one line naming it (exit code 2), not a stack trace. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(`spool: ${error.message}`);
    process.exit(2);
  }
}
