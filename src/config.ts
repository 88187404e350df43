/**
 * Spool's configuration: its shape, the defaults of its groups, and what is derived from it.
 * Read from the environment by src/load-config.ts (which loads src/env.ts's TypeBox schemas);
 * a WORKERS child gets it from its primary instead and never loads them (issue 15).
 */
import { resolve } from "node:path";
import type { JobKind, Playback } from "./db/schema.ts";
import { sqlitePath } from "./db/url.ts";
import type { X264_PRESETS } from "./env.ts";
import type { LogFormat, LogLevel } from "./lib/log.ts";
import type { StorageConfig } from "./storage/index.ts";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  staticDir: string;
  /** STATIC_SANDBOX: HTML, SVG and XML under /static run sandboxed (src/modules/static/native.ts); default true. */
  staticSandbox?: boolean;
  /** `file:<path>` / a bare path for SQLite (default `<DATA_DIR>/spool.db`). */
  databaseUrl: string;
  /** PostgreSQL: the longest a service's query may take (DATABASE_QUERY_TIMEOUT_MS); unset: 10 s. */
  databaseQueryTimeoutMs?: number;
  /** PostgreSQL: connections per process (DATABASE_POOL_SIZE); unset: 10. */
  databasePoolSize?: number;
  maxUploadBytes: number;
  seedDemo: boolean;
  /** How long file stats and library rows are trusted before being checked again. */
  cacheTtlMs: number;
  /** The RAM tier's bound per serving process (MEMORY_CACHE_BYTES); 0 or unset: off. */
  memoryCacheBytes?: number;
  /** Disk bound of clips kept as files (CLIP_CACHE_BYTES, under DATA_DIR/cache/clips); 0 or unset: off. */
  clipCacheBytes?: number;
  /** Memory per process for parsed `moov`s and clip headers (CLIP_HEADER_CACHE_BYTES); default 64 MiB. */
  clipHeaderCacheBytes?: number;
  /** Processes serving the same port (SO_REUSEPORT). */
  workers: number;
  production: boolean;
  /** ffmpeg / ffprobe binaries (names looked up on PATH, or paths). Default "ffmpeg" / "ffprobe". */
  ffmpegPath?: string;
  ffprobePath?: string;
  /** Wall-clock limit for one ffmpeg run on an upload (remux); probes and frames get at most 60 s. */
  ffmpegTimeoutMs?: number;
  /** Resumable uploads not completed this long after creation are deleted. Default 24 h. */
  uploadExpiryMs?: number;
  /** Ingest limits (MAX_DURATION_S, MAX_PIXELS, MAX_FPS; 0: none); unset, DEFAULT_INGEST_LIMITS. */
  maxDurationS?: number;
  maxPixels?: number;
  maxFps?: number;
  /** Failed and abandoned videos are deleted this long after their last change (FAILED_RETENTION_MS; 0: never). Default 7 days. */
  failedRetentionMs?: number;
  /** The HLS transcode worker (src/modules/hls); fields left out take TRANSCODE_DEFAULTS. */
  transcode?: Partial<TranscodeConfig>;
  /** ffmpeg runs making thumbnails at once, per process (THUMBNAIL_CONCURRENCY). Default 2. */
  thumbnailConcurrency?: number;
  /** Thumbnails that may wait for a run before new ones get 503 (THUMBNAIL_QUEUE). Default 16. */
  thumbnailQueue?: number;
  /**
   * Origins that may read the streaming and HLS routes cross-origin (CORS_ORIGINS, comma
   * separated): ["*"] (the default) for any, [] ("none") to send no CORS headers.
   */
  corsOrigins?: string[];
  /** The management API's key (API_KEY); when unset, generated once and kept in DATA_DIR/api-key. */
  apiKey?: string;
  /** HS256 secret of playback tokens (SIGNING_SECRET); when unset, generated once into DATA_DIR/signing-secret. */
  signingSecret?: string;
  /** A former signing secret whose tokens are still accepted (SIGNING_SECRET_PREVIOUS); it signs nothing. */
  previousSigningSecret?: string;
  /** Playback policy of new videos when the upload names none (DEFAULT_PLAYBACK). Default "public". */
  defaultPlayback?: Playback;
  /**
   * TRUST_PROXY: Spool runs behind a reverse proxy that appends the client's address to
   * X-Forwarded-For; the last entry is then the client (for rate limits), not the socket's peer.
   */
  trustProxy?: boolean;
  /** LOG_LEVEL / LOG_FORMAT (format undefined: pretty on a terminal, else JSON). */
  logLevel?: LogLevel;
  logFormat?: LogFormat;
  /** SHUTDOWN_GRACE_MS: how long in-flight responses may take to finish on SIGTERM. */
  shutdownGraceMs?: number;
  /** METRICS: serve /metrics and count on the stream route (default true). */
  metrics?: boolean;
  /** MUTATION_RATE_LIMIT: changes per client per minute (0: unlimited). */
  mutationRateLimit?: number;
  /** URL imports (IMPORT_*): what they may reach and how long they wait; unset, IMPORT_DEFAULTS. */
  imports?: Partial<ImportConfig>;
  /** Where media objects live (STORAGE, S3_*, S3_DELIVERY, CACHE_DIR, CACHE_MAX_BYTES); unset: local disk under DATA_DIR. */
  storage?: StorageConfig;
  /**
   * The kinds of jobs this process's worker claims (all by default). Not an environment
   * variable: for embedders and tests that want, say, processing without HLS builds.
   */
  jobKinds?: readonly JobKind[];
}

export interface ImportConfig {
  /** IMPORT_ALLOW_PRIVATE: non-public addresses too. */
  allowPrivate: boolean;
  /** IMPORT_ALLOWED_NETWORKS: non-public networks (CIDR) reachable anyway. */
  allowedNetworks: string[];
  /** IMPORT_ALLOWED_HOSTS: when non-empty, only these host names. */
  allowedHosts: string[];
  /** IMPORT_CONNECT_TIMEOUT_MS, IMPORT_IDLE_TIMEOUT_MS, IMPORT_MIN_BYTES_PER_SECOND, IMPORT_MAX_DURATION_MS, IMPORT_MAX_REDIRECTS. */
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  minBytesPerSecond: number;
  maxDurationMs: number;
  maxRedirects: number;
}

export const IMPORT_DEFAULTS: Readonly<ImportConfig> = {
  allowPrivate: false,
  allowedNetworks: [],
  allowedHosts: [],
  connectTimeoutMs: 30_000,
  idleTimeoutMs: 30_000,
  minBytesPerSecond: 1024,
  maxDurationMs: 6 * 60 * 60 * 1000,
  maxRedirects: 5,
};

/** The effective import settings: defaults overlaid with what the config sets. */
export function importConfig(config: Pick<Config, "imports">): ImportConfig {
  const set = Object.fromEntries(Object.entries(config.imports ?? {}).filter(([, v]) => v !== undefined));
  return { ...IMPORT_DEFAULTS, ...set };
}

export interface TranscodeConfig {
  /** Run the worker inside the server's primary process (TRANSCODE_IN_SERVER); else use `bun run worker`. */
  inServer: boolean;
  /** ffmpeg processes at once per worker process (TRANSCODE_CONCURRENCY). */
  concurrency: number;
  /** Attempts before a video's HLS state becomes failed (TRANSCODE_MAX_ATTEMPTS). */
  maxAttempts: number;
  /** Retry backoff: base·2^(failures-1), capped (TRANSCODE_RETRY_BASE_MS, TRANSCODE_RETRY_MAX_MS). */
  retryBaseMs: number;
  retryMaxMs: number;
  /** Wall-clock limit for one transcode (TRANSCODE_TIMEOUT_MS). */
  timeoutMs: number;
  /** How often a worker proves it is alive (TRANSCODE_HEARTBEAT_MS)... */
  heartbeatMs: number;
  /** ...and how old a heartbeat may get before another worker takes the job over (TRANSCODE_STALE_MS). */
  staleMs: number;
  /** How often an idle worker looks for work (TRANSCODE_POLL_MS). */
  pollMs: number;
  /** x264 preset (TRANSCODE_PRESET). */
  preset: (typeof X264_PRESETS)[number];
  /** Target segment length in seconds (HLS_SEGMENT_SECONDS). */
  segmentSeconds: number;
  /** Tallest rendition, as the short side in pixels (HLS_MAX_HEIGHT). */
  maxHeight: number;
}

export const TRANSCODE_DEFAULTS: Readonly<TranscodeConfig> = {
  inServer: true,
  concurrency: 1,
  maxAttempts: 3,
  retryBaseMs: 30_000,
  retryMaxMs: 30 * 60_000,
  timeoutMs: 6 * 60 * 60_000,
  heartbeatMs: 2000,
  staleMs: 30_000,
  pollMs: 1000,
  preset: "veryfast",
  segmentSeconds: 4,
  maxHeight: 1080,
};

/** The effective transcode settings: defaults overlaid with what the config sets. */
export function transcodeConfig(config: Pick<Config, "transcode">): TranscodeConfig {
  const set = Object.fromEntries(Object.entries(config.transcode ?? {}).filter(([, v]) => v !== undefined));
  return { ...TRANSCODE_DEFAULTS, ...set };
}

/**
 * The library's own files, which /static must never serve: DATA_DIR (the API key, the signing
 * secret, media, uploads, SQLite's files by default), SQLite's files, and with STORAGE=s3 the
 * block cache (video bytes, signed ones among them). Absolute paths, named by their variable.
 */
export function libraryPaths(config: Pick<Config, "dataDir" | "databaseUrl" | "storage">): { variable: string; path: string }[] {
  const paths = [{ variable: "DATA_DIR", path: config.dataDir }];
  const sqlite = sqlitePath(config.databaseUrl);
  // With its write-ahead log, shared memory and rollback journal.
  if (sqlite !== null) for (const suffix of ["", "-wal", "-shm", "-journal"]) paths.push({ variable: "DATABASE_URL", path: resolve(sqlite) + suffix });
  if (config.storage?.kind === "s3") paths.push({ variable: "CACHE_DIR", path: config.storage.cacheDir });
  return paths;
}
