/**
 * OpenAPI path items for routes whose modules carry no schemas: the stream route (its 200/206/
 * 304/412/416 semantics come from the file engine, and its bodies are video bytes or
 * multipart/byteranges, which Elysia's `response` option cannot express) and the static
 * folder (a wildcard route, which OpenAPI can only template as one `{path}` parameter).
 * Built from `t` schemas like everything else, and merged over the generated spec.
 */
import { t } from "elysia";
import { CLIP_SECONDS, CLIP_SECONDS_MAX_LENGTH } from "../../files/clip.ts";
import { VIDEO_ID_PARAMETER } from "../../schemas/video.ts";
import { errorSchema } from "../../http/error-schemas.ts";
import { BYTERANGES_CONTENT, FILE_REQUEST_HEADERS, Integer, header, jsonContent, moreDocs } from "../../schemas/openapi.ts";
import { OPEN_SECURITY, PLAYBACK_OWNER_RESPONSES, PLAYBACK_SECURITY } from "../../access/plugin.ts";

const VideoBytes = t.String({ format: "binary", description: "The stored file's bytes (or the requested range)" });

const videoEtag = header(t.String({ description: "Strong validator: the first 32 hex digits of the stored file's SHA-256 (a clip's adds its interval)", examples: ['"5e8d2c0a3b7f41d69c1e0f2a4b6d8e0f"'] }), true);
const streamCacheControl = header(t.String({ description: "`public, max-age=86400`; `private` for a signed video", examples: ["public, max-age=86400"] }), true);

/** A 304 repeats ETag and Cache-Control only (RFC 9110 §15.4.5: Last-Modified is for tag-less answers). */
const notModifiedHeaders = { ETag: videoEtag, "Cache-Control": streamCacheControl };

const commonEntityHeaders = {
  "Accept-Ranges": header(t.Literal("bytes"), true),
  "Content-Length": header(Integer({ description: "Bytes in this response" }), true),
  "X-Content-Type-Options": header(t.Literal("nosniff"), true),
};

const entityHeaders = {
  ...notModifiedHeaders,
  "Last-Modified": header(t.String({ description: "When the video was created", examples: ["Sun, 22 Nov 2026 10:00:00 GMT"] }), true),
  ...commonEntityHeaders,
  // Bun sends a streamed body chunked, whatever length it is told.
  "Content-Length": header(Integer({ description: "Bytes in this response. Always on a HEAD; a GET whose body is streamed is sent chunked without it: a multipart/byteranges 206, a 200 for a Range that If-Range refused, a clip not yet kept as a file" })),
  "Content-Disposition": header(t.String({ description: "`inline`, or `attachment` with the title as file name for `?download=1`", examples: ['attachment; filename="Holiday 2026.mp4"'] }), true),
};

const staticNotModifiedHeaders = {
  ETag: header(t.String({ description: "Strong validator: the file's size (hex), then a digest of its modification and change times and inode", examples: ['"1f4c-3a9e0b7c5d2f8e61"'] }), true),
  "Cache-Control": header(t.String({ examples: ["public, max-age=3600"] }), true),
};

const staticEntityHeaders = {
  ...staticNotModifiedHeaders,
  "Last-Modified": header(t.String({ description: "The file's modification time", examples: ["Sun, 22 Nov 2026 10:00:00 GMT"] }), true),
  ...commonEntityHeaders,
};

const StreamParams = [
  VIDEO_ID_PARAMETER,
  {
    name: "download",
    in: "query",
    required: false,
    description: "`1` or `true`: Content-Disposition: attachment, named after the title (a clip's name adds its interval)",
    schema: t.String({ enum: ["1", "true"] }),
  },
  {
    name: "start",
    in: "query",
    required: false,
    description:
      "Seconds (decimals allowed, rounded to the microsecond): answer the MP4 clip that starts here, frame-exact (MP4/MOV only). The clip is its own entity: its own length, ranges and strong ETag. `start=0` alone is the whole file.",
    schema: t.String({ pattern: CLIP_SECONDS.source, maxLength: CLIP_SECONDS_MAX_LENGTH, examples: ["12.5"] }),
  },
  {
    name: "end",
    in: "query",
    required: false,
    description: "Seconds: the clip ends here (after the last frame before it); omitted, at the end of the video. Must be greater than `start`.",
    schema: t.String({ pattern: CLIP_SECONDS.source, maxLength: CLIP_SECONDS_MAX_LENGTH, examples: ["20"] }),
  },
  {
    name: "token",
    in: "query",
    required: false,
    description: "A playback token (JWT) for this video; needed when its `playback` is `signed`",
    schema: t.String({ examples: ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJxN2NOMGwxZFE1bTB0Uzl4WWszZVpBIiwiZXhwIjoxNzk1MzkxOTgwfQ.c2lnbmF0dXJl"] }),
  },
  ...FILE_REQUEST_HEADERS,
];

const streamErrors = {
  400: {
    description:
      "A bad clip interval: `start`/`end` not plain non-negative seconds, or `end <= start` (`bad_request`); `start` at or past the video's end (`clip_out_of_range`); a clip of a video that is not MP4/MOV (`clip_unsupported_container`)",
    content: jsonContent(errorSchema("Bad clip interval", "clip_out_of_range", "start 99 s is at or past the end of the video (30 s)")),
  },
  404: { description: "No such video, or it is not ready yet", content: jsonContent(errorSchema("No ready video", "not_found", "No ready video with id q7cN0l1dQ5m0tS9xYk3eZA")) },
  412: {
    description: "Precondition Failed: If-Match / If-Unmodified-Since did not hold",
    content: jsonContent(errorSchema("Precondition failed", "precondition_failed", "A precondition in the request did not hold")),
  },
  416: {
    description: "Range Not Satisfiable: no range-spec lies within the file (or too many range-specs)",
    headers: {
      "Content-Range": header(t.String({ description: "`bytes */<size>`", examples: ["bytes */48213344"] }), true),
      "Accept-Ranges": header(t.Literal("bytes"), true),
    },
    content: jsonContent(errorSchema("Range not satisfiable", "range_not_satisfiable", "No requested range is satisfiable for 48213344 bytes")),
  },
  422: {
    description: "A clip (`start`/`end`) of a stored MP4 that cannot be cut: fragmented, encrypted, a complex edit list, a malformed `moov`, composition offsets that reorder samples across more than 65,536 of them",
    content: jsonContent(errorSchema("Cannot be cut", "clip_unsupported", "This video cannot be cut into clips: fragmented MP4 (moof) is not supported")),
  },
  429: {
    description: "A clip (`start`/`end`) whose header is not made yet, from a client that already has its share of new clip headers being made (`clips_rate_limited`): try again after `Retry-After` seconds",
    headers: { "Retry-After": header(Integer({ description: "Seconds" }), true) },
    content: jsonContent(errorSchema("Too many new clips", "clips_rate_limited", "This client already has 33 clip headers being made; try again in 1 s")),
  },
  503: {
    description:
      "Try again after `Retry-After` seconds: the media storage (`storage_unavailable`) or the database (`database_unavailable`) is not answering, a clip kept as a file was replaced while being opened (`clip_unavailable`), or too many new clip headers are being made (`clips_busy`)",
    headers: { "Retry-After": header(Integer({ description: "Seconds" }), true) },
    content: jsonContent(errorSchema("Unavailable for now", "storage_unavailable", "The media storage is not answering; try again shortly")),
  },
};

function streamOperation() {
  return {
    security: PLAYBACK_SECURITY,
    operationId: "getStream",
    tags: ["stream"],
    summary: "Stream a video",
    description:
      "Serves the stored file of a `ready` video with exact RFC 9110 semantics: byte ranges give 206 (a single part, or multipart/byteranges for several), unsatisfiable ranges 416; validators give 304 (If-None-Match / If-Modified-Since) and 412 (If-Match / If-Unmodified-Since); If-Range is honoured. The body is sent with sendfile(2). `?start=&end=` (seconds) answer a time clip of an MP4/MOV video instead: a complete MP4 (rewritten `moov`, then the interval's media bytes from the stored file) whose first shown frame is the one at `start`. `/api/stream/{id}.mp4` (or the stored container's extension) is the same resource. A stored MP4 that cannot be cut (fragmented, encrypted, a complex edit list, a malformed `moov`) answers 422 `clip_unsupported`.",
    parameters: StreamParams,
    responses: {
      200: { description: "The whole file, with the stored container's type (video/mp4, video/webm, audio/mpeg...)", headers: entityHeaders, content: { "video/*": { schema: VideoBytes } } },
      206: {
        description: "Partial Content: one range (with Content-Range), or several as multipart/byteranges",
        headers: {
          ...entityHeaders,
          "Content-Range": header(t.String({ description: "For a single range", examples: ["bytes 0-1048575/48213344"] })),
        },
        content: { "video/*": { schema: VideoBytes }, ...BYTERANGES_CONTENT },
      },
      302: {
        description: "With `STORAGE=s3` and `S3_DELIVERY=redirect`: a presigned URL of the object, which answers the ranges itself",
        headers: { Location: header(t.String({ format: "uri" }), true) },
      },
      304: { description: "Not Modified: If-None-Match / If-Modified-Since matched", headers: notModifiedHeaders },
      ...PLAYBACK_OWNER_RESPONSES,
      403: {
        description: "The video is `signed` and the request has no valid `?token=` for it (nor the API key). `code`: `token_missing`, `token_malformed`, `token_invalid`, `token_wrong_video` or `token_expired`. Checked before any precondition.",
        content: jsonContent(errorSchema("No valid playback token", "token_expired", "The playback token has expired")),
      },
      ...streamErrors,
    },
    ...moreDocs({
      head: { operationId: "headStream", summary: "Stream headers only", description: "The same status and headers as GET (including Content-Length of the 200 or 206), without a body." },
    }),
  };
}

function staticOperation() {
  const body = { content: { "*/*": { schema: t.String({ format: "binary" }) } } };
  return {
    security: OPEN_SECURITY,
    operationId: "getStaticFile",
    tags: ["static"],
    summary: "A file from STATIC_DIR",
    description:
      "Any file under STATIC_DIR (the path may contain slashes; dotfiles, including ones reached through a symlink, `..`, symlinks leaving the folder and paths over 4096 characters are a 404), typed by the URL's extension, with the same range, validator and HEAD semantics as the stream.",
    parameters: [
      { name: "path", in: "path", required: true, description: "Path below /static/, percent-encoded once", schema: t.String({ examples: ["player/index.html"] }) },
      ...FILE_REQUEST_HEADERS,
    ],
    responses: {
      200: { description: "The file", headers: staticEntityHeaders, ...body },
      206: { description: "Partial Content", headers: { ...staticEntityHeaders, "Content-Range": header(t.String({ description: "For a single range", examples: ["bytes 0-1023/8012"] })) }, ...body },
      304: { description: "Not Modified", headers: staticNotModifiedHeaders },
      404: { description: "No such file", content: jsonContent(errorSchema("No such file", "not_found", "No such file")) },
      412: streamErrors[412],
      416: streamErrors[416],
    },
    ...moreDocs({ head: { operationId: "headStaticFile", summary: "A static file's headers only" } }),
  };
}

/** Path items merged over the generated ones (keys are OpenAPI templated paths). */
export const extraPaths = {
  "/api/stream/{id}": { get: streamOperation() },
  "/static/{path}": { get: staticOperation() },
};

/** Routes whose generated entries are replaced by `extraPaths` (Elysia path → OpenAPI path). */
export const replacedRoutes: Record<string, string> = {
  "/static/*": "/static/{path}",
};
