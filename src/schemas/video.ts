/** The JSON a client sees for a video, and the request schemas of the library routes. */
import { t } from "elysia";
import { PLAYBACK_POLICIES, VIDEO_STATUSES, type Playback, type VideoRow } from "../db/schema.ts";
import { badRequest } from "../http/errors.ts";
import { Integer } from "./openapi.ts";
import { VIDEO_ID_PATTERN } from "../library/ids.ts";
import { MAX_TITLE_LENGTH, TITLE_SCHEMA_MAX_LENGTH } from "../library/videos.ts";
import { HlsSchema, toHlsJson } from "./hls.ts";
import { errorSchema } from "../http/error-schemas.ts";
import { withToken } from "../http/path.ts";

export const BadRequest = errorSchema("Malformed id, query parameter or body", "bad_request", "query limit: Expected integer");
export const NotFound = errorSchema("No such video", "not_found", "No video with id q7cN0l1dQ5m0tS9xYk3eZA");

export const PlaybackSchema = t.UnionEnum([...PLAYBACK_POLICIES], {
  description:
    "`public`: anyone with the URL plays it. `signed`: the stream, HLS files, thumbnails, the watch page and this JSON need `?token=<JWT>` (HS256 with SIGNING_SECRET, `sub` = the video id, `exp`), or the API key. New videos get DEFAULT_PLAYBACK.",
  examples: ["public"],
  default: undefined,
});

/**
 * A playback value from a request body or form, checked: TypeBox's `t.String({ enum })` only
 * documents the enum (String checks length, pattern and format), so routes call this.
 */
export function parsePlayback(value: string | undefined, field: string): Playback | undefined {
  if (value === undefined) return undefined;
  if (!(PLAYBACK_POLICIES as readonly string[]).includes(value)) throw badRequest(`${field}: must be ${PLAYBACK_POLICIES.join(" or ")}`);
  return value as Playback;
}

/** The `{id}` of a video's paths, as OpenAPI documents it (src/schemas/openapi.ts, moreDocs). */
export const VIDEO_ID_PARAMETER = {
  name: "id",
  in: "path",
  required: true,
  description: "Video id: 4-64 characters of A-Z a-z 0-9 _ - (generated ids are 22)",
  schema: t.String({ pattern: VIDEO_ID_PATTERN.source, examples: ["q7cN0l1dQ5m0tS9xYk3eZA"] }),
};

export const VideoIdParams = t.Object({
  id: t.String({
    pattern: VIDEO_ID_PATTERN.source,
    description: "Video id: 4-64 characters of A-Z a-z 0-9 _ - (generated ids are 22)",
    examples: ["q7cN0l1dQ5m0tS9xYk3eZA"],
    error: "params id: not a video id (4-64 characters of A-Z a-z 0-9 _ -)",
  }),
});

const EXAMPLE_ID = "q7cN0l1dQ5m0tS9xYk3eZA";

export const VideoSchema = t.Object(
  {
    id: t.String({ description: "Opaque, URL-safe id", examples: [EXAMPLE_ID] }),
    title: t.String({ description: "Display title (defaults to the uploaded file's name without extension)", examples: ["Holiday 2026"] }),
    originalFilename: t.String({ description: "The file name the client sent; informative only, never trusted", examples: ["holiday.mov"] }),
    size: Integer({ description: "Bytes of the stored file (0 until ready)", examples: [48213344] }),
    contentType: t.String({ description: "Media type of the stored file, from the detected container", examples: ["video/mp4"] }),
    sha256: t.Nullable(t.String({ description: "Hex SHA-256 of the stored bytes (after a remux); null until ready", examples: ["5e8d2c0a3b7f41d69c1e0f2a4b6d8e0f1a3c5e7092b4d6f8a0c2e4f6081a3c5e"] })),
    sourceSha256: t.Nullable(
      t.String({
        description: "Hex SHA-256 of the bytes as received (the upload, or the import's download), for a client to check what it sent; differs from `sha256` when a remux rewrote the file (faststart, or a recording's WebM given its duration). Null until known",
        examples: ["0f3b9d1c2a4e6f8091b3d5e7f9a1c3e5072b4d6f8a0c2e4f6081a3c5e7f90b1d"],
      }),
    ),
    sourceSize: t.Nullable(Integer({ description: "Bytes received (differs from `size` after a remux); null until known", examples: [48213120] })),
    status: t.UnionEnum([...VIDEO_STATUSES], {
      description: "`uploading` (or `importing`, for a URL import) → `processing` → `ready`, or `failed` (see `error`)",
      examples: ["ready"],
      // t.UnionEnum defaults to its first member, which a response has no use for.
      default: undefined,
    }),
    error: t.Nullable(t.String({ description: "Why processing failed; null otherwise. Why an import failed (its host, what it resolved to) is told only to the key or a session; anyone else reads `The import from a URL failed`", examples: ["Processing failed: no video frame could be decoded"] })),
    playback: PlaybackSchema,
    duration: t.Nullable(t.Number({ description: "Seconds (millisecond precision); null until processed or when unknown", examples: [12.48] })),
    width: t.Nullable(Integer({ description: "Display width in pixels, as players show it (pixel aspect and rotation applied); null for audio", examples: [1920] })),
    height: t.Nullable(Integer({ description: "Display height in pixels (rotation applied); null for audio", examples: [1080] })),
    videoCodec: t.Nullable(t.String({ description: "ffmpeg codec name of the video stream", examples: ["h264"] })),
    audioCodec: t.Nullable(t.String({ description: "ffmpeg codec name of the audio stream", examples: ["aac"] })),
    bitrate: t.Nullable(Integer({ description: "Overall bits per second", examples: [2500000] })),
    container: t.Nullable(t.String({ description: "Detected container: mp4, mov, m4a, 3gp, webm, mkv, ogv, ogg, mp3, flac, wav, aac, avi or ts", examples: ["mp4"] })),
    createdAt: t.String({ format: "date-time", description: "When the upload started", examples: ["2026-11-22T10:00:00.000Z"] }),
    updatedAt: t.String({ format: "date-time", description: "Last change of status, title or metadata", examples: ["2026-11-22T10:00:05.000Z"] }),
    streamUrl: t.String({ description: "Where the stored file streams (ranges, validators) once ready", examples: [`/api/stream/${EXAMPLE_ID}`] }),
    thumbnailUrl: t.Nullable(t.String({ description: "The poster (accepts `t` and `width`); null for audio and until ready", examples: [`/api/videos/${EXAMPLE_ID}/thumbnail.jpg`] })),
    hls: HlsSchema,
  },
  { description: "A video in the library" },
);

export const VideoListSchema = t.Object(
  {
    items: t.Array(VideoSchema, { description: "Newest first" }),
    nextCursor: t.Nullable(t.String({ description: "Pass as `cursor` for the next page; null on the last page", examples: ["MTc5NTM4ODM4MDkyMTpxN2NOMGwxZFE1bTB0Uzl4WWszZVpB"] })),
  },
  { description: "A page of videos" },
);

export const ListQuerySchema = t.Object({
  limit: t.Optional(
    t.Integer({ minimum: 1, maximum: 200, default: 50, description: "Page size (1-200)", examples: [20], error: "query limit: must be an integer from 1 to 200" }),
  ),
  cursor: t.Optional(t.String({ maxLength: 200, description: "`nextCursor` of the previous page", error: "query cursor: not a cursor this API returned" })),
  // A plain string checked by the route: Elysia fills an optional enum with its first member.
  status: t.Optional(t.String({ enum: [...VIDEO_STATUSES], description: "Only videos in this state", examples: ["ready"] })),
});

export const VideoChangesBody = t.Object(
  {
    title: t.Optional(
      t.String({
        minLength: 1,
        // A bound in UTF-16 units; the limit, in characters, is checked on the trimmed title.
        maxLength: TITLE_SCHEMA_MAX_LENGTH,
        description: `New title: 1-${MAX_TITLE_LENGTH} characters once surrounding whitespace is trimmed, no control characters`,
        examples: ["Holiday 2026, edited"],
        error: `body title: must be a string of 1-${MAX_TITLE_LENGTH} characters`,
      }),
    ),
    playback: t.Optional(t.String({ enum: [...PLAYBACK_POLICIES], description: "New playback policy", examples: ["signed"], error: "body playback: must be public or signed" })),
  },
  { description: "The fields to change (at least one)", additionalProperties: false, examples: [{ title: "Holiday 2026, edited" }, { playback: "signed" }] },
);

export const UploadForm = t.Object(
  {
    file: t.File({ description: "The video or audio file. Its name and type are informative only: the bytes decide." }),
    title: t.Optional(t.String({ maxLength: TITLE_SCHEMA_MAX_LENGTH, description: `Title: at most ${MAX_TITLE_LENGTH} characters once surrounding whitespace is trimmed, no control characters (defaults to the file name without extension)` })),
    playback: t.Optional(t.UnionEnum([...PLAYBACK_POLICIES], { description: "`public` or `signed` (default: DEFAULT_PLAYBACK)", default: undefined })),
  },
  { description: "multipart/form-data" },
);

export type VideoJson = typeof VideoSchema.static;
export type VideoListJson = typeof VideoListSchema.static;

export function toVideoJson(row: VideoRow): VideoJson {
  return {
    id: row.id,
    title: row.title,
    originalFilename: row.originalFilename,
    size: row.size,
    contentType: row.contentType,
    sha256: row.sha256,
    sourceSha256: row.sourceSha256,
    sourceSize: row.sourceSize,
    status: row.status,
    error: row.error,
    playback: row.playback,
    duration: row.duration,
    width: row.width,
    height: row.height,
    videoCodec: row.videoCodec,
    audioCodec: row.audioCodec,
    bitrate: row.bitrate,
    container: row.container,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
    streamUrl: `/api/stream/${row.id}`,
    thumbnailUrl: row.width && row.status === "ready" ? `/api/videos/${row.id}/thumbnail.jpg` : null,
    hls: toHlsJson(row),
  };
}

/** What a viewer is told of a failure whose details are the owner's. */
export const VIEWER_IMPORT_FAILURE = "The import from a URL failed";
export const VIEWER_HLS_FAILURE = "The adaptive (HLS) version could not be built";
/** How an import's failure begins (src/modules/imports/service.ts). */
const IMPORT_FAILURE = /^Import from /;

/**
 * The video's JSON as a viewer (anyone without the key or a session) sees it. Why an import
 * failed stays with the owner, who started it: the message names the source's host and what
 * it resolved to (an internal address, for a refused one). So does an HLS build's, which quotes
 * ffmpeg; why there is no ladder at all (`skipped`: no video stream) is ours to say. Why an
 * upload was refused or failed processing is said to everyone: a browser uploading through a
 * direct upload URL has no key, and those messages are Spool's own. Pure.
 */
export function viewerJson(video: VideoJson): VideoJson {
  const error = video.error !== null && IMPORT_FAILURE.test(video.error) ? VIEWER_IMPORT_FAILURE : video.error;
  const hlsError = video.hls.error === null || video.hls.status === "skipped" ? video.hls.error : VIEWER_HLS_FAILURE;
  if (error === video.error && hlsError === video.hls.error) return video;
  return { ...video, error, hls: { ...video.hls, error: hlsError } };
}

/** Whether `viewerJson` would change the video's JSON: only then does it matter who asks. */
export function hasFailureDetails(video: VideoJson): boolean {
  return viewerJson(video) !== video;
}

/** The video's JSON with every playback URL carrying the token (for a signed video's page). */
export function tokenizedJson(video: VideoJson, token: string): VideoJson {
  const sign = (url: string | null) => (url === null ? null : withToken(url, token));
  return {
    ...video,
    streamUrl: withToken(video.streamUrl, token),
    thumbnailUrl: sign(video.thumbnailUrl),
    hls: { ...video.hls, masterUrl: sign(video.hls.masterUrl), storyboardUrl: sign(video.hls.storyboardUrl) },
  };
}
