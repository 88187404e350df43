/** The `hls` object in a video's JSON. */
import { t } from "elysia";
import { HLS_STATUSES, type VideoRow } from "../db/schema.ts";
import { Integer } from "./openapi.ts";

export const HlsSchema = t.Object(
  {
    status: t.UnionEnum([...HLS_STATUSES], {
      description:
        "`none` (not ready yet) → `queued` → `processing` → `ready`; `failed` after the last retry (see `error`); `skipped` when there is no video stream",
      examples: ["processing"],
    }),
    // A response field: the plain integer (src/schemas/openapi.ts), not t.Integer's string-or-integer.
    progress: Integer({ minimum: 0, maximum: 100, description: "Percent of the transcode done, from ffmpeg's progress output; 100 when ready", examples: [42] }),
    error: t.Nullable(
      t.String({
        description: "The last attempt's error (also while a retry is queued), or why there is no ladder (`skipped`); null otherwise",
        examples: ["Attempt 1 of 3 failed (ffmpeg took longer than 21600 s (TRANSCODE_TIMEOUT_MS) and was stopped); retrying in 30 s"],
      }),
    ),
    masterUrl: t.Nullable(t.String({ description: "The HLS master playlist, once ready", examples: ["/api/hls/q7cN0l1dQ5m0tS9xYk3eZA/master.m3u8"] })),
    storyboardUrl: t.Nullable(t.String({ description: "WebVTT of sprite-sheet thumbnails for scrubbing previews, once ready", examples: ["/api/hls/q7cN0l1dQ5m0tS9xYk3eZA/storyboard.vtt"] })),
  },
  { description: "The adaptive-streaming (HLS) ladder built from the video" },
);

export type HlsJson = typeof HlsSchema.static;

export function toHlsJson(row: Pick<VideoRow, "id" | "hlsStatus" | "hlsProgress" | "hlsError">): HlsJson {
  const ready = row.hlsStatus === "ready";
  return {
    status: row.hlsStatus,
    progress: row.hlsProgress,
    error: row.hlsError,
    masterUrl: ready ? `/api/hls/${row.id}/master.m3u8` : null,
    storyboardUrl: ready ? `/api/hls/${row.id}/storyboard.vtt` : null,
  };
}
