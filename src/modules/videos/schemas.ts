/** The JSON a client sees for a video, and the request schemas of the library routes. */
import { t } from "elysia";
import { VIDEO_STATUSES, type VideoRow } from "../../db/schema.ts";

export const ErrorSchema = t.Object(
  {
    error: t.Object({
      code: t.String({ description: "Stable, machine-readable code", examples: ["not_found"] }),
      message: t.String({ description: "Human-readable explanation" }),
    }),
  },
  { description: "Every error Spool returns has this shape" },
);

export const VideoSchema = t.Object({
  id: t.String({ description: "Opaque, URL-safe id", examples: ["q7cN0l1dQ5m0tS9xYk3eZA"] }),
  title: t.String(),
  originalFilename: t.String(),
  size: t.Integer({ description: "Bytes" }),
  contentType: t.String({ examples: ["video/mp4"] }),
  sha256: t.Nullable(t.String({ description: "Hex SHA-256 of the stored file" })),
  status: t.UnionEnum([...VIDEO_STATUSES]),
  error: t.Nullable(t.String()),
  createdAt: t.String({ format: "date-time" }),
  updatedAt: t.String({ format: "date-time" }),
  streamUrl: t.String({ examples: ["/api/stream/q7cN0l1dQ5m0tS9xYk3eZA"] }),
});

export const VideoListSchema = t.Object({
  items: t.Array(VideoSchema),
  nextCursor: t.Nullable(t.String({ description: "Pass as `cursor` for the next page" })),
});

export const ListQuerySchema = t.Object({
  limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
  cursor: t.Optional(t.String({ maxLength: 200 })),
  // A plain string checked by the route: Elysia fills an optional enum with its first member.
  status: t.Optional(t.String({ enum: [...VIDEO_STATUSES], description: "Only videos in this state" })),
});

export type VideoJson = typeof VideoSchema.static;

export function toVideoJson(row: VideoRow): VideoJson {
  return {
    id: row.id,
    title: row.title,
    originalFilename: row.originalFilename,
    size: row.size,
    contentType: row.contentType,
    sha256: row.sha256,
    status: row.status,
    error: row.error,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    streamUrl: `/api/stream/${row.id}`,
  };
}
