/**
 * The library's tables, SQLite dialect (the embedded default). Its twin for PostgreSQL is
 * ./pg.ts; test/unit/schema-parity.test.ts fails on any difference the application could see.
 * Migrations: drizzle/sqlite (drizzle.config.ts).
 */
import { sql } from "drizzle-orm";
import { index, integer, real, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";
import { ACTIVE_JOB_STATES, HLS_STATUSES, JOB_KINDS, JOB_STATES, PLAYBACK_POLICIES, VIDEO_STATUSES } from "./shared.ts";

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
    /** Hex SHA-256 and size of the bytes as received, before any faststart remux (null for older rows). */
    sourceSha256: text("source_sha256"),
    sourceSize: integer("source_size"),
    /**
     * While `uploading`: the process receiving the bytes (`<host>:<pid>:<random>`,
     * src/lib/process-identity.ts), so a restarting server fails only the uploads its own dead
     * processes were receiving, never another live node's (null for older rows).
     */
    uploadOwner: text("upload_owner"),
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


/**
 * The durable queue of background work (src/queue): ingest processing, HLS transcodes and URL
 * imports. Any number of workers claim jobs atomically; `heartbeat_at` lets another worker take
 * over a job whose worker died. At most one active (queued or running) job per video and kind.
 */
export const jobs = sqliteTable(
  "jobs",
  {
    id: integer("id").primaryKey({ autoIncrement: true }),
    kind: text("kind", { enum: JOB_KINDS }).notNull(),
    videoId: text("video_id")
      .notNull()
      .references(() => videos.id, { onDelete: "cascade" }),
    state: text("state", { enum: JOB_STATES }).notNull(),
    /** Claims so far, including the running one. */
    attempts: integer("attempts").notNull().default(0),
    /** Not claimed before this time (retry backoff). */
    runAfter: integer("run_after", { mode: "timestamp_ms" }).notNull(),
    /** The claiming worker: `<hostname>:<pid>:<random>`. */
    lockedBy: text("locked_by"),
    heartbeatAt: integer("heartbeat_at", { mode: "timestamp_ms" }),
    /** Kind-specific input, JSON (an import's URL, an upload's hash). */
    payload: text("payload"),
    /** The last failure's message. */
    error: text("error"),
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [
    index("jobs_claim_idx").on(t.state, t.runAfter),
    index("jobs_video_idx").on(t.videoId),
    uniqueIndex("jobs_active_idx")
      .on(t.videoId, t.kind)
      .where(sql.raw(`state in (${ACTIVE_JOB_STATES.map((s) => `'${s}'`).join(", ")})`)),
  ],
);

/**
 * Signed-in browser sessions (the `spool_session` cookie). Only a hash of the cookie's secret is
 * stored, so a copy of the database opens no session.
 */
export const sessions = sqliteTable(
  "sessions",
  {
    /** Hex HMAC-SHA-256 of the cookie value, keyed with the API key's digest (src/access/sessions.ts). */
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
    /** Set once that request made its upload, which it then never rolls back (tus.ts). */
    settledAt: integer("settled_at", { mode: "timestamp_ms" }),
  },
  (t) => [index("direct_uploads_expires_idx").on(t.expiresAt)],
);

/**
 * The library's identity: one row, made by the migration that created this table (with the
 * database, or on the upgrade of an existing one). Its id is written beside the media
 * (`library-id` in DATA_DIR or the bucket), so a database and media from different libraries
 * are told apart before anything is deleted as an orphan (src/library/ownership.ts).
 */
export const library = sqliteTable("library", {
  id: text("id").primaryKey(),
  /** Whether the database already held videos when the row was made (an upgrade, not a new database). */
  hadVideos: integer("had_videos", { mode: "boolean" }).notNull(),
  createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
});
