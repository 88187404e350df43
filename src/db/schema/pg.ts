/**
 * The library's tables, PostgreSQL dialect: the twin of ./sqlite.ts, column for column (see
 * test/unit/schema-parity.test.ts). Sizes are bigint (files past 2 GiB, exact to 2^53), times
 * are `timestamp with time zone` at millisecond precision, ids are text: the application sees
 * the same numbers, Dates and strings from both. Migrations: drizzle/pg (drizzle.pg.config.ts).
 */
import { sql } from "drizzle-orm";
import { bigint, boolean, doublePrecision, index, integer, pgTable, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";
import { ACTIVE_JOB_STATES, HLS_STATUSES, JOB_KINDS, JOB_STATES, PLAYBACK_POLICIES, VIDEO_STATUSES } from "./shared.ts";

/** Milliseconds, like SQLite's timestamp_ms columns, so both round-trip the same Date. */
const at = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: "date" });
/** JavaScript numbers: exact up to 2^53, far past any file. */
const big = (name: string) => bigint(name, { mode: "number" });

export const videos = pgTable(
  "videos",
  {
    id: text("id").primaryKey(),
    title: text("title").notNull(),
    originalFilename: text("original_filename").notNull(),
    storagePath: text("storage_path").notNull(),
    size: big("size").notNull().default(0),
    contentType: text("content_type").notNull().default("application/octet-stream"),
    sha256: text("sha256"),
    status: text("status", { enum: VIDEO_STATUSES }).notNull(),
    error: text("error"),
    playback: text("playback", { enum: PLAYBACK_POLICIES }).notNull().default("public"),
    duration: doublePrecision("duration"),
    width: integer("width"),
    height: integer("height"),
    videoCodec: text("video_codec"),
    audioCodec: text("audio_codec"),
    bitrate: big("bitrate"),
    container: text("container"),
    hlsStatus: text("hls_status", { enum: HLS_STATUSES }).notNull().default("none"),
    hlsProgress: integer("hls_progress").notNull().default(0),
    hlsError: text("hls_error"),
    sourceSha256: text("source_sha256"),
    sourceSize: big("source_size"),
    /** See sqlite.ts. */
    uploadOwner: text("upload_owner"),
    createdAt: at("created_at").notNull(),
    updatedAt: at("updated_at").notNull(),
  },
  (t) => [
    index("videos_created_idx").on(t.createdAt, t.id),
    index("videos_status_created_idx").on(t.status, t.createdAt, t.id),
    index("videos_status_hls_idx").on(t.status, t.hlsStatus),
  ],
);

export const jobs = pgTable(
  "jobs",
  {
    id: integer("id").primaryKey().generatedByDefaultAsIdentity(),
    kind: text("kind", { enum: JOB_KINDS }).notNull(),
    videoId: text("video_id")
      .notNull()
      .references(() => videos.id, { onDelete: "cascade" }),
    state: text("state", { enum: JOB_STATES }).notNull(),
    attempts: integer("attempts").notNull().default(0),
    runAfter: at("run_after").notNull(),
    lockedBy: text("locked_by"),
    heartbeatAt: at("heartbeat_at"),
    payload: text("payload"),
    error: text("error"),
    createdAt: at("created_at").notNull(),
    updatedAt: at("updated_at").notNull(),
  },
  (t) => [
    index("jobs_claim_idx").on(t.state, t.runAfter),
    index("jobs_video_idx").on(t.videoId),
    uniqueIndex("jobs_active_idx")
      .on(t.videoId, t.kind)
      .where(sql.raw(`state in (${ACTIVE_JOB_STATES.map((s) => `'${s}'`).join(", ")})`)),
  ],
);

export const sessions = pgTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    createdAt: at("created_at").notNull(),
    expiresAt: at("expires_at").notNull(),
  },
  (t) => [index("sessions_expires_idx").on(t.expiresAt)],
);

export const directUploads = pgTable(
  "direct_uploads",
  {
    id: text("id").primaryKey(),
    videoId: text("video_id").notNull(),
    title: text("title"),
    playback: text("playback", { enum: PLAYBACK_POLICIES }).notNull(),
    createdAt: at("created_at").notNull(),
    expiresAt: at("expires_at").notNull(),
    usedAt: at("used_at"),
    settledAt: at("settled_at"),
  },
  (t) => [index("direct_uploads_expires_idx").on(t.expiresAt)],
);

/**
 * The library's identity: one row, made by the migration that created this table (with the
 * database, or on the upgrade of an existing one). Its id is written beside the media
 * (`library-id` in DATA_DIR or the bucket), so a database and media from different libraries
 * are told apart before anything is deleted as an orphan (src/library/ownership.ts).
 */
export const library = pgTable("library", {
  id: text("id").primaryKey(),
  /** Whether the database already held videos when the row was made (an upgrade, not a new database). */
  hadVideos: boolean("had_videos").notNull(),
  createdAt: at("created_at").notNull(),
});
