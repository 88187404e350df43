/**
 * Configuration from the environment. Every variable is optional; defaults run Spool on one
 * machine with an embedded SQLite database under DATA_DIR.
 */
import { resolve } from "node:path";
import { availableParallelism } from "node:os";
import { PLAYBACK_POLICIES, type Playback } from "./db/schema.ts";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  staticDir: string;
  /** `file:<path>` / a bare path for SQLite (default `<DATA_DIR>/spool.db`). */
  databaseUrl: string;
  maxUploadBytes: number;
  seedDemo: boolean;
  /** How long file stats and library rows are trusted before being checked again. */
  cacheTtlMs: number;
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
  /** The HLS transcode worker (src/modules/hls); fields left out take TRANSCODE_DEFAULTS. */
  transcode?: Partial<TranscodeConfig>;
  /**
   * Origins that may read the streaming and HLS routes cross-origin (CORS_ORIGINS, comma
   * separated): ["*"] (the default) for any, [] ("none") to send no CORS headers.
   */
  corsOrigins?: string[];
  /** The management API's key (API_KEY); when unset, generated once and kept in DATA_DIR/api-key. */
  apiKey?: string;
  /** HS256 secret of playback tokens (SIGNING_SECRET); when unset, generated once into DATA_DIR/signing-secret. */
  signingSecret?: string;
  /** Playback policy of new videos when the upload names none (DEFAULT_PLAYBACK). Default "public". */
  defaultPlayback?: Playback;
  /**
   * TRUST_PROXY: Spool runs behind a reverse proxy that appends the client's address to
   * X-Forwarded-For; the last entry is then the client (for rate limits), not the socket's peer.
   */
  trustProxy?: boolean;
}

/** Shortest API_KEY accepted: anything shorter can be guessed despite the rate limit. */
export const MIN_API_KEY_LENGTH = 16;
/** Shortest SIGNING_SECRET accepted: an HS256 key of fewer than 256 bits weakens every token. */
export const MIN_SIGNING_SECRET_LENGTH = 32;

export const X264_PRESETS = ["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"] as const;

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

function integer(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  return !["0", "false", "no", "off"].includes(raw.toLowerCase());
}

function loadTranscodeConfig(): TranscodeConfig {
  const d = TRANSCODE_DEFAULTS;
  const preset = process.env.TRANSCODE_PRESET || d.preset;
  if (!(X264_PRESETS as readonly string[]).includes(preset)) throw new Error(`TRANSCODE_PRESET must be one of ${X264_PRESETS.join(", ")}, got "${preset}"`);
  return {
    inServer: flag("TRANSCODE_IN_SERVER", d.inServer),
    concurrency: integer("TRANSCODE_CONCURRENCY", d.concurrency, 1),
    maxAttempts: integer("TRANSCODE_MAX_ATTEMPTS", d.maxAttempts, 1),
    retryBaseMs: integer("TRANSCODE_RETRY_BASE_MS", d.retryBaseMs),
    retryMaxMs: integer("TRANSCODE_RETRY_MAX_MS", d.retryMaxMs),
    timeoutMs: integer("TRANSCODE_TIMEOUT_MS", d.timeoutMs, 1000),
    heartbeatMs: integer("TRANSCODE_HEARTBEAT_MS", d.heartbeatMs, 100),
    staleMs: integer("TRANSCODE_STALE_MS", d.staleMs, 500),
    pollMs: integer("TRANSCODE_POLL_MS", d.pollMs, 50),
    preset: preset as TranscodeConfig["preset"],
    segmentSeconds: integer("HLS_SEGMENT_SECONDS", d.segmentSeconds, 1),
    maxHeight: integer("HLS_MAX_HEIGHT", d.maxHeight, 144),
  };
}

/** "*" (default), "none", or a comma-separated list of origins. */
function corsOrigins(): string[] {
  const raw = (process.env.CORS_ORIGINS || "*").trim();
  if (raw.toLowerCase() === "none") return [];
  return raw
    .split(",")
    .map((o) => o.trim().replace(/\/+$/, ""))
    .filter(Boolean);
}

function secret(name: string, minLength: number): string | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return undefined;
  if (raw.trim() !== raw || raw.length < minLength) throw new Error(`${name} must be at least ${minLength} characters with no surrounding whitespace`);
  return raw;
}

function playback(): Playback {
  const raw = process.env.DEFAULT_PLAYBACK || "public";
  if (!(PLAYBACK_POLICIES as readonly string[]).includes(raw)) throw new Error(`DEFAULT_PLAYBACK must be one of ${PLAYBACK_POLICIES.join(", ")}, got "${raw}"`);
  return raw as Playback;
}

export function loadConfig(): Config {
  const dataDir = resolve(process.env.DATA_DIR || "./data");
  return {
    port: integer("PORT", 3000),
    host: process.env.HOST || "0.0.0.0",
    dataDir,
    staticDir: resolve(process.env.STATIC_DIR || "./static"),
    databaseUrl: process.env.DATABASE_URL || `file:${resolve(dataDir, "spool.db")}`,
    maxUploadBytes: integer("MAX_UPLOAD_BYTES", 8 * 1024 ** 3, 1),
    seedDemo: flag("SEED_DEMO", true),
    cacheTtlMs: integer("CACHE_TTL_MS", 1000),
    // One process per core by default; PORT=0 (any free port) cannot be shared, so it means one.
    workers: process.env.PORT === "0" ? 1 : integer("WORKERS", availableParallelism(), 1),
    production: process.env.NODE_ENV === "production",
    ffmpegPath: process.env.FFMPEG_PATH || "ffmpeg",
    ffprobePath: process.env.FFPROBE_PATH || "ffprobe",
    ffmpegTimeoutMs: integer("FFMPEG_TIMEOUT_MS", 30 * 60 * 1000, 1000),
    uploadExpiryMs: integer("UPLOAD_EXPIRY_MS", 24 * 60 * 60 * 1000, 1000),
    transcode: loadTranscodeConfig(),
    corsOrigins: corsOrigins(),
    apiKey: secret("API_KEY", MIN_API_KEY_LENGTH),
    signingSecret: secret("SIGNING_SECRET", MIN_SIGNING_SECRET_LENGTH),
    defaultPlayback: playback(),
    trustProxy: flag("TRUST_PROXY", false),
  };
}
