/** `GET`/`HEAD /api/videos/:id/thumbnail.jpg[?t=&width=]`: frames through the file engine. */
import { Elysia, t } from "elysia";
import { PLAYBACK_OWNER_BAD_ID_401, PLAYBACK_OWNER_RESPONSES, PLAYBACK_SECURITY } from "../../access/plugin.ts";
import type { AccessControl } from "../../access/service.ts";
import { FileCache } from "../../files/cache.ts";
import { serveFile } from "../../files/send-file.ts";
import { HttpError } from "../../http/errors.ts";
import type { ObjectServer } from "../../storage/serve.ts";
import { BYTERANGES_CONTENT, FILE_REQUEST_HEADERS, Integer, header, jsonContent, moreDocs, numericQueryParameter } from "../../schemas/openapi.ts";
import { assertVideoId } from "../../library/ids.ts";
import { errorSchema } from "../../http/error-schemas.ts";
import { BadRequest, VIDEO_ID_PARAMETER, VideoIdParams } from "../../schemas/video.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { MAX_TIME_STEPS, TIME_STEP_MS, WIDTH_LADDER } from "./grid.ts";
import { MAX_WIDTH, MIN_WIDTH, type Thumbnails } from "./service.ts";

export const THUMBNAIL_CACHE_CONTROL = "public, max-age=86400";

const STEP = TIME_STEP_MS / 1000;
const ThumbnailQuery = t.Object({
  t: t.Optional(
    t.Numeric({
      minimum: 0,
      description: `Seconds into the video (at most its duration), snapped to the nearest point of the video's grid: every ${STEP} s, or for videos longer than ${(TIME_STEP_MS * MAX_TIME_STEPS) / 1000} s the smallest multiple of ${STEP} s that makes at most ${MAX_TIME_STEPS} steps. Default: the poster time.`,
      examples: [3.5],
      error: "query t: must be a number of seconds >= 0",
    }),
  ),
  width: t.Optional(
    t.Integer({
      minimum: MIN_WIDTH,
      maximum: MAX_WIDTH,
      description: `Width in pixels, snapped up to the next of ${WIDTH_LADDER.join(", ")}, and never wider than the video; the height keeps the aspect ratio (rounded to even). Default: the video's width (posters at most 1280).`,
      examples: [320],
      error: `query width: must be an integer from ${MIN_WIDTH} to ${MAX_WIDTH}`,
    }),
  ),
});

const Jpeg = t.String({ format: "binary", description: "A JPEG image" });

const jpegHeaders = {
  ETag: header(t.String({ description: "Strong validator of the cached JPEG", examples: ['"6760f1a2-5b3c"'] }), true),
  "Last-Modified": header(t.String({ description: "When the JPEG was generated", examples: ["Sun, 22 Nov 2026 10:00:00 GMT"] }), true),
  "Cache-Control": header(t.String({ examples: [THUMBNAIL_CACHE_CONTROL] }), true),
  "Accept-Ranges": header(t.Literal("bytes")),
  "Content-Length": header(Integer({ description: "Bytes in this response" })),
};

const TokenRefused = errorSchema("The video is `signed` and the request has no valid `?token=` for it (nor the API key); `code` says why", "token_missing", "This video needs a playback token: add ?token=<JWT>");
const NotReady = errorSchema("The video is still uploading or processing, or failed", "not_ready", "Video q7cN0l1dQ5m0tS9xYk3eZA is processing; thumbnails exist once it is ready");
const NoPicture = errorSchema("No such video, or it is audio only", "no_video_stream", "Video q7cN0l1dQ5m0tS9xYk3eZA is audio only: it has no picture");
const ThumbnailFailed = errorSchema("ffmpeg could not extract a frame", "thumbnail_failed", "No frame could be extracted from video q7cN0l1dQ5m0tS9xYk3eZA at that time");
const Unavailable = errorSchema("The frame is not cached and ffmpeg is not installed", "ingest_unavailable", "Ingest needs ffmpeg and ffprobe, which this server cannot find");
const Busy = errorSchema("The frame is not cached and too many are being made (every run taken, the queue full): retry after `Retry-After` seconds", "thumbnails_busy", "Too many thumbnails are being made; try again in 2 s");
const ClientShare = errorSchema(
  "The frame is not cached and this client already has its share of the frames being made (half of the runs and queue): retry after `Retry-After` seconds",
  "thumbnails_rate_limited",
  "This client already has 9 new thumbnails being made; try again in 2 s",
);
const PreconditionFailed = errorSchema("If-Match / If-Unmodified-Since did not hold", "precondition_failed", "A precondition in the request did not hold");
const RangeNotSatisfiable = errorSchema("No requested range lies within the JPEG", "range_not_satisfiable", "No requested range is satisfiable for 10240 bytes");

/** A signed video's pictures stay out of shared caches, where they would outlive the token. */
export const SIGNED_THUMBNAIL_CACHE_CONTROL = "private, max-age=3600";

export function thumbnailRoutes(library: VideoLibrary, thumbnails: Thumbnails, access: AccessControl, cacheTtlMs: number, objects?: ObjectServer) {
  const cache = new FileCache(cacheTtlMs);
  return new Elysia({ name: "spool.thumbnails" }).get(
    "/api/videos/:id/thumbnail.jpg",
    async ({ params, query, request, server }) => {
      const row = await library.require(assertVideoId(params.id));
      // Before any frame is made: a token-less request must not cost an ffmpeg run.
      await access.playback(request, row.id, row.playback, server);
      // The request's signal: a client that leaves stops waiting, and a frame nobody waits for is not made.
      const cacheControl = row.playback === "signed" ? SIGNED_THUMBNAIL_CACHE_CONTROL : THUMBNAIL_CACHE_CONTROL;
      if (objects) {
        // STORAGE=s3: the JPEG is an object, served through the block cache.
        const key = await thumbnails.objectFor(row, { t: query.t, width: query.width }, request.signal, access.client(request, server));
        const entity = await objects.lookup(key, { contentType: "image/jpeg", cacheControl });
        if (!entity) throw new HttpError(404, "not_found", `No such thumbnail of video ${row.id}`);
        return objects.serve(request, entity);
      }
      const path = await thumbnails.pathFor(row, { t: query.t, width: query.width }, request.signal, access.client(request, server));
      return serveFile(request, path, { contentType: "image/jpeg", cacheControl }, cache);
    },
    {
      params: VideoIdParams,
      query: ThumbnailQuery,
      detail: {
        security: PLAYBACK_SECURITY,
        operationId: "getThumbnail",
        tags: ["thumbnails"],
        summary: "A poster or thumbnail of a video (JPEG)",
        description:
          "Without parameters: the poster made at ingest. With `t` and/or `width`: that frame, snapped to a grid (`t` to the video's time step, `width` up a fixed ladder of sizes), generated with ffmpeg on first request and cached on disk; requests that snap to the same frame share the file and the run. A bounded number of frames are made at once (THUMBNAIL_CONCURRENCY) or wait (THUMBNAIL_QUEUE); beyond that a frame that is not cached is refused with 503 `thumbnails_busy` and `Retry-After`. A frame whose every request went away is not made. Served by the same file engine as the stream: ETag/Last-Modified validators, HEAD, and byte ranges.",
        responses: {
          200: { description: "The JPEG", headers: jpegHeaders, content: { "image/jpeg": { schema: Jpeg } } },
          206: {
            description: "Byte ranges of the JPEG (Range header): one (with Content-Range), or several as multipart/byteranges",
            headers: { ...jpegHeaders, "Content-Range": header(t.String({ description: "For a single range", examples: ["bytes 0-1023/10240"] })) },
            content: { "image/jpeg": { schema: Jpeg }, ...BYTERANGES_CONTENT },
          },
          304: { description: "Not modified (If-None-Match / If-Modified-Since matched)" },
          401: PLAYBACK_OWNER_BAD_ID_401,
          400: { description: BadRequest.description!, content: jsonContent(errorSchema("Malformed id, `t` or `width`", "bad_request", "query width: must be an integer from 16 to 3840")) },
          403: { description: TokenRefused.description!, content: jsonContent(TokenRefused) },
          404: { description: NoPicture.description!, content: jsonContent(NoPicture) },
          409: { description: NotReady.description!, content: jsonContent(NotReady) },
          412: { description: PreconditionFailed.description!, content: jsonContent(PreconditionFailed) },
          416: { description: RangeNotSatisfiable.description!, content: jsonContent(RangeNotSatisfiable) },
          422: { description: ThumbnailFailed.description!, content: jsonContent(ThumbnailFailed) },
          429: {
            description: `${ClientShare.description!}; or (\`too_many_attempts\`) ${PLAYBACK_OWNER_RESPONSES[429].description.toLowerCase()}, after wrong keys given for a signed video`,
            headers: { "Retry-After": header(Integer({ description: "Seconds to wait before asking again", examples: [2] }), true) },
            content: jsonContent(ClientShare),
          },
          503: {
            description: `${Busy.description!}; or ${Unavailable.description!.toLowerCase()}`,
            headers: { "Retry-After": header(Integer({ description: "Seconds to wait before asking again (with `thumbnails_busy`)", examples: [2] })) },
            content: jsonContent(t.Object(Busy.properties, { description: "`thumbnails_busy` or `ingest_unavailable`", examples: [...(Busy.examples as unknown[]), ...(Unavailable.examples as unknown[])] })),
          },
        },
        ...moreDocs({
          parameters: [
            VIDEO_ID_PARAMETER,
            numericQueryParameter("t", ThumbnailQuery.properties.t),
            numericQueryParameter("width", ThumbnailQuery.properties.width),
            { name: "token", in: "query", required: false, description: "Playback token (JWT) of a `signed` video", schema: t.String() },
            ...FILE_REQUEST_HEADERS,
          ],
          head: { operationId: "headThumbnail", summary: "A poster or thumbnail's headers only" },
        }),
      },
    },
  );
}
