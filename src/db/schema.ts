/** The library's tables (SQLite dialect; see README "Scaling out" for PostgreSQL). */
import { index, integer, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const VIDEO_STATUSES = ["uploading", "processing", "ready", "failed"] as const;
export type VideoStatus = (typeof VIDEO_STATUSES)[number];

/** The adaptive-streaming (HLS) build of a video; see src/modules/hls. */
/**
 * Who may play a video: anyone (`public`), or holders of a playback token for it (`signed`).
 * See src/access/playback.ts.
 */
export const PLAYBACK_POLICIES = ["public", "signed"] as const;
export type Playback = (typeof PLAYBACK_POLICIES)[number];

export const HLS_STATUSES = ["none", "queued", "processing", "ready", "failed", "skipped"] as const;
export type HlsStatus = (typeof HLS_STATUSES)[number];

export const videos = sqliteTable(
  "videos",
  {
    /** Opaque, URL-safe, 128 random bits. */
    id: text("id").primaryKey(),
    title: text("title").notNull(),
    originalFilename: text("original_filename").notNull(),
    /** Relative to DATA_DIR, so the data directory can move. */
    storagePath: text("storage_path").notNull(),
    size: integer("size").notNull().default(0),
    contentType: text("content_type").notNull().default("application/octet-stream"),
    /** Hex SHA-256 of the stored bytes: the source of the strong, machine-independent ETag. */
    sha256: text("sha256"),
    status: text("status", { enum: VIDEO_STATUSES }).notNull(),
    error: text("error"),
    playback: text("playback", { enum: PLAYBACK_POLICIES }).notNull().default("public"),
    // Media metadata from ffprobe, recorded while `processing` (null until then, and for
    // properties the media does not have: an audio file has no width).
    /** Seconds. */
    duration: real("duration"),
    width: integer("width"),
    height: integer("height"),
    /** ffmpeg codec names, e.g. "h264", "vp9", "aac", "opus". */
    videoCodec: text("video_codec"),
    audioCodec: text("audio_codec"),
    /** Overall bits per second. */
    bitrate: integer("bitrate"),
    /** The detected container, e.g. "mp4", "mov", "webm", "mkv" (never the client's claim). */
    container: text("container"),
    // The HLS ladder: "none" until the video is ready and a transcode job is queued for it.
    hlsStatus: text("hls_status", { enum: HLS_STATUSES }).notNull().default("none"),
    /** 0-100, from ffmpeg's progress output while `processing`. */
    hlsProgress: integer("hls_progress").notNull().default(0),
    /** Why the last attempt failed (kept while a retry is queued). */
    hlsError: text("hls_error"),
    /** Which process runs the video's ingest job (`host:pid:random`), so a dead one's can be resumed. */
    processingOwner: text("processing_owner"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [
    // The library list: newest first, optionally by status, paged by (created_at, id).
    index("videos_created_idx").on(t.createdAt, t.id),
    index("videos_status_created_idx").on(t.status, t.createdAt, t.id),
    index("videos_status_hls_idx").on(t.status, t.hlsStatus),
  ],
);

export type VideoRow = typeof videos.$inferSelect;
export type NewVideoRow = typeof videos.$inferInsert;

export const TRANSCODE_JOB_STATES = ["queued", "running", "done", "failed", "cancelled"] as const;
export type TranscodeJobState = (typeof TRANSCODE_JOB_STATES)[number];

/**
 * The durable transcode queue (src/modules/hls/jobs.ts). Any number of worker processes claim
 * jobs atomically; `heartbeat_at` lets a live worker reclaim a job whose worker died.
 */
export const transcodeJobs = sqliteTable(
  "transcode_jobs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    videoId: text("video_id")
      .notNull()
      .references(() => videos.id, { onDelete: "cascade" }),
    state: text("state", { enum: TRANSCODE_JOB_STATES }).notNull(),
    /** Claims so far, including the running one. */
    attempts: integer("attempts").notNull().default(0),
    /** Not claimed before this time (retry backoff). */
    runAfter: integer("run_after", { mode: "timestamp_ms" }).notNull(),
    /** The claiming worker: `<hostname>:<pid>:<random>`. */
    lockedBy: text("locked_by"),
    heartbeatAt: integer("heartbeat_at", { mode: "timestamp_ms" }),
    /** The last failure's message (ffmpeg's error). */
    error: text("error"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("transcode_jobs_claim_idx").on(t.state, t.runAfter), index("transcode_jobs_video_idx").on(t.videoId)],
);

export type TranscodeJobRow = typeof transcodeJobs.$inferSelect;

/**
 * Signed-in browser sessions (the `spool_session` cookie). Only a hash of the cookie's secret is
 * stored, so a copy of the database opens no session.
 */
export const sessions = sqliteTable(
  "sessions",
  {
    /** Hex SHA-256 of the cookie value. */
    id: text("id").primaryKey(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("sessions_expires_idx").on(t.expiresAt)],
);

/**
 * One-time tus creation URLs for browsers without the API key (POST /api/uploads/direct).
 * The video id is chosen when the URL is issued; the row is consumed by the first upload.
 */
export const directUploads = sqliteTable(
  "direct_uploads",
  {
    /** Hex SHA-256 of the URL's secret. */
    id: text("id").primaryKey(),
    videoId: text("video_id").notNull(),
    title: text("title"),
    playback: text("playback", { enum: PLAYBACK_POLICIES }).notNull(),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    expiresAt: integer("expires_at", { mode: "timestamp_ms" }).notNull(),
    /** Set by the one creation request that used it. */
    usedAt: integer("used_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("direct_uploads_expires_idx").on(t.expiresAt)],
);

export type DirectUploadRow = typeof directUploads.$inferSelect;
