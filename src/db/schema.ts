/** The library's tables (SQLite dialect; see README "Scaling out" for PostgreSQL). */
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

export const VIDEO_STATUSES = ["uploading", "processing", "ready", "failed"] as const;
export type VideoStatus = (typeof VIDEO_STATUSES)[number];

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
    createdAt: integer("created_at", { mode: "timestamp_ms" }).notNull(),
    updatedAt: integer("updated_at", { mode: "timestamp_ms" }).notNull(),
  },
  (t) => [index("videos_status_created_idx").on(t.status, t.createdAt)],
);

export type VideoRow = typeof videos.$inferSelect;
export type NewVideoRow = typeof videos.$inferInsert;
