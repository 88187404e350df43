/** Library routes: upload, list, read, retitle, delete. */
import { Elysia, NotFoundError, t } from "elysia";
import { VIDEO_STATUSES, type VideoStatus } from "../../db/schema.ts";
import { errorSchema } from "../../http/error-schemas.ts";
import { contentEtag, evaluatePreconditions } from "../../http/conditional.ts";
import { HttpError, JSON_TYPE, badRequest, preconditionFailed } from "../../http/errors.ts";
import { AUTH_ERRORS, AUTH_RESPONSES, PLAYBACK_OWNER_BAD_ID_401, PLAYBACK_OWNER_RESPONSES, PLAYBACK_SECURITY } from "../../access/plugin.ts";
import type { AccessControl } from "../../access/service.ts";
import { DEFAULT_TOKEN_TTL_S, MAX_TOKEN_TTL_S } from "../../access/tokens.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import { header, jsonContent, moreDocs, numericQueryParameter } from "../../schemas/openapi.ts";
import { JsonInteger, readJsonBody } from "../../schemas/json-body.ts";
import { assertVideoId } from "../../library/ids.ts";
import {
  BadRequest,
  ListQuerySchema,
  NotFound,
  VideoChangesBody,
  UploadForm,
  VIDEO_ID_PARAMETER,
  VideoIdParams,
  VideoListSchema,
  VideoSchema,
  type VideoListJson,

  toVideoJson,
  hasFailureDetails,
  viewerJson,
  tokenizedJson,
  parsePlayback,
} from "../../schemas/video.ts";
import { ListPageCache } from "./list-cache.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { VideoRow } from "../../db/schema.ts";
import { receiveUpload } from "./upload.ts";
import { FEED_ROUTE_OPTIONS, LibraryFeed, feedResponse } from "./feed.ts";
import { IMPORT_DESCRIPTION, IMPORT_REQUEST_CONTENT, importFromRequest } from "../imports/routes.ts";
import { isJsonContentType } from "../../http/content-type.ts";
import { JSON_BODY_LIMIT } from "../body-limit/plugin.ts";
import type { ImportService } from "../imports/service.ts";

export const PayloadTooLarge = errorSchema(
  "The file is larger than MAX_UPLOAD_BYTES, or the whole body (every part, chunked or not) is larger than that plus 64 KiB of framing: refused from Content-Length before reading, or as soon as the streamed body passes the limit. Nothing is kept.",
  "payload_too_large",
  "The upload exceeds the limit of 8589934592 bytes (MAX_UPLOAD_BYTES)",
);
export const UnsupportedMedia = errorSchema(
  "The bytes are not audio or video Spool accepts (whatever the file name or Content-Type claimed), or the body is not multipart/form-data. Nothing is kept.",
  "unsupported_media_type",
  "Not a playable audio or video file (Invalid data found when processing input). Spool accepts video and audio files only.",
);
export const MediaLimitExceeded = errorSchema(
  "The file is audio or video, but longer than MAX_DURATION_S, with frames larger than MAX_PIXELS (width x height) or faster than MAX_FPS. The message names the limit and the value found. Nothing is kept.",
  "media_limit_exceeded",
  "The video is 600 s long; this server accepts at most 300 s (MAX_DURATION_S)",
);
const InsufficientStorage = errorSchema(
  "The server's disk is full: nothing of the upload is kept (Retry-After: 60)",
  "insufficient_storage",
  "The server has no space left to store this; nothing was kept. Try again later",
);
export const IngestUnavailable = errorSchema(
  "ffmpeg/ffprobe are not installed on the server: ingest is off, streaming of ready videos still works",
  "ingest_unavailable",
  "Ingest needs ffmpeg and ffprobe, which this server cannot find (install ffmpeg, or set FFMPEG_PATH and FFPROBE_PATH). Videos already in the library still stream.",
);

const ImportNotFailed = errorSchema(
  "The video is not a failed import: it did not come from a URL, or it is not `failed`",
  "import_not_failed",
  "Only a failed import can be retried, and this video is ready",
);

/** A video's JSON validator and caching, and the conditional headers its routes read (documented with moreDocs). */
const VIDEO_ETAG_HEADER = header(t.String({ description: "Strong validator of the video's JSON", examples: ['"3f2a9c1d7e5b8a60"'] }), true);
const VIDEO_CACHE_CONTROL_HEADER = header(t.String({ description: "`no-cache` for a public video, `private, no-store` for a signed one", examples: ["no-cache"] }), true);
const IF_NONE_MATCH_PARAMETER = { name: "If-None-Match", in: "header", required: false, description: "304 while the video's ETag matches (weak comparison)", schema: t.String() };
const IF_MATCH_PARAMETER = { name: "If-Match", in: "header", required: false, description: "412 `precondition_failed` unless the video's ETag still matches (strong comparison): a compare-and-set", schema: t.String() };

const JsonTooLarge = errorSchema("The JSON body declares a Content-Length over 1 MiB: refused before reading", "payload_too_large", `The request body exceeds ${JSON_BODY_LIMIT} bytes, the limit for a JSON body`);
const NotJson = errorSchema("A body that is not JSON", "unsupported_media_type", "Send the body as application/json");

const PreconditionFailed = errorSchema("If-Match named an ETag the resource no longer has", "precondition_failed", "A precondition in the request did not hold");

/** The owner's browser may keep a page but must revalidate it (cheap: 304 when nothing changed); no shared cache may keep it (it answers the key or a session cookie). */
const LIST_CACHE_CONTROL = "private, no-cache";

const TokenBody = t.Object(
  {
    expiresIn: t.Optional(
      JsonInteger({ minimum: 1, maximum: MAX_TOKEN_TTL_S, default: DEFAULT_TOKEN_TTL_S, description: `Seconds the token is valid (default ${DEFAULT_TOKEN_TTL_S}, at most ${MAX_TOKEN_TTL_S}: 7 days)`, examples: [3600], error: `body expiresIn: must be an integer number of seconds from 1 to ${MAX_TOKEN_TTL_S}` }),
    ),
  },
  { description: "Optional: how long the token lasts", additionalProperties: false },
);

const TokenSchema = t.Object(
  {
    token: t.String({ description: "The JWT (HS256, `sub` = video id, `exp`): append as `?token=`", examples: ["eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJxN2NOMGwxZFE1bTB0Uzl4WWszZVpBIiwiaWF0IjoxNzk1Mzg4MzgwLCJleHAiOjE3OTUzOTE5ODB9.c2lnbmF0dXJl"] }),
    expiresAt: t.String({ format: "date-time", description: "When it stops working (its `exp`)", examples: ["2026-11-22T11:00:00.000Z"] }),
    streamUrl: t.String({ description: "The stream, with the token", examples: ["/api/stream/q7cN0l1dQ5m0tS9xYk3eZA?token=eyJ…"] }),
    hlsUrl: t.String({ description: "The HLS master playlist, with the token; every URI in the playlists it leads to carries the token too (404 until the ladder is built)", examples: ["/api/hls/q7cN0l1dQ5m0tS9xYk3eZA/master.m3u8?token=eyJ…"] }),
    watchUrl: t.String({ description: "The watch page, with the token", examples: ["/watch/q7cN0l1dQ5m0tS9xYk3eZA?token=eyJ…"] }),
    thumbnailUrl: t.Nullable(t.String({ description: "The poster, with the token (null for audio and until ready)", examples: ["/api/videos/q7cN0l1dQ5m0tS9xYk3eZA/thumbnail.jpg?token=eyJ…"] })),
  },
  { description: "A playback token and the URLs it opens" },
);

/** A token's URLs, relative like every URL in the API. */
export function tokenUrls(id: string, token: string, hasPicture: boolean) {
  const q = `token=${token}`;
  return {
    streamUrl: `/api/stream/${id}?${q}`,
    hlsUrl: `/api/hls/${id}/master.m3u8?${q}`,
    watchUrl: `/watch/${id}?${q}`,
    thumbnailUrl: hasPicture ? `/api/videos/${id}/thumbnail.jpg?${q}` : null,
  };
}

const TokenRefused = errorSchema(
  "The video is `signed` and the request has no valid token for it (nor the API key). `code` says why: `token_missing`, `token_malformed`, `token_invalid` (bad signature or claims), `token_wrong_video` or `token_expired`.",
  "token_expired",
  "The playback token has expired",
);

export function videoRoutes(
  library: VideoLibrary,
  ingest: IngestPipeline,
  access: AccessControl,
  maxUploadBytes: number,
  imports: ImportService,
  /** Aborted when the server starts draining: event streams end then (src/http/event-stream.ts). */
  drain?: AbortSignal,
) {
  const pages = new ListPageCache(library.handle.revision);
  const feed = new LibraryFeed(library, imports);
  return new Elysia({ name: "spool.videos", prefix: "/api/videos" })
    .post(
      "",
      async ({ request, set }) => {
        // JSON is the import form ({"url": ...}); anything else the multipart upload.
        // The JSON form is a URL import; anything else is a multipart upload.
        const row = isJsonContentType(request.headers.get("content-type")) ? await importFromRequest(request, imports) : await receiveUpload(request, library, ingest, maxUploadBytes);
        set.status = 201;
        set.headers.location = `/api/videos/${row.id}`;
        return toVideoJson(row);
      },
      {
        // The body is streamed to disk by receiveUpload; Elysia must not buffer it.
        parse: "none",
        response: { 201: VideoSchema, 400: BadRequest, ...AUTH_ERRORS, 413: PayloadTooLarge, 415: UnsupportedMedia, 422: MediaLimitExceeded, 503: IngestUnavailable, 507: InsufficientStorage },
        detail: {
          operationId: "uploadVideo",
          tags: ["videos"],
          summary: "Upload a video (multipart)",
          description:
            "multipart/form-data with a `file` field, an optional `title` and an optional `playback` (`public` or `signed`; default DEFAULT_PLAYBACK), streamed to disk. The bytes are identified with ffprobe before the response: anything that is not audio or video is refused with 415, media longer than MAX_DURATION_S, larger than MAX_PIXELS or faster than MAX_FPS with 422, and nothing is kept. The answer is 201 with the video in state `processing`; faststart remux, poster and checksum follow in the background. Poll `GET /api/videos/{id}` until `status` is `ready` (or `failed`). For large files or unreliable networks use the resumable `/api/uploads` (tus) instead." + IMPORT_DESCRIPTION,
          requestBody: {
            required: true,
            content: { "multipart/form-data": { schema: UploadForm as object, encoding: { file: { contentType: "video/*, audio/*, application/octet-stream" } } }, ...IMPORT_REQUEST_CONTENT },
          },
        },
      },
    )
    .get(
      "",
      async ({ query, request }) => {
        const status = query.status as VideoStatus | undefined;
        if (status !== undefined && !VIDEO_STATUSES.includes(status)) throw badRequest(`query status: must be one of ${VIDEO_STATUSES.join(", ")}`);
        const limit = query.limit ?? 50;
        const page = await pages.get(`${limit} ${status ?? ""} ${query.cursor ?? ""}`, async () => {
          const found = await library.list({ limit, cursor: query.cursor, status });
          const json: VideoListJson = { items: found.items.map(toVideoJson), nextCursor: found.nextCursor };
          return JSON.stringify(json);
        });
        const headers = { etag: page.etag, "cache-control": LIST_CACHE_CONTROL };
        // A page has no modification date (NaN makes the date preconditions inapplicable, §13.1.3).
        const outcome = evaluatePreconditions(request.method, request.headers, { etag: page.etag, lastModified: Number.NaN });
        if (outcome === "not-modified") return new Response(null, { status: 304, headers });
        if (outcome === "failed") throw preconditionFailed();
        return new Response(page.body, { headers: { ...headers, "content-type": JSON_TYPE, "x-content-type-options": "nosniff" } });
      },
      {
        query: ListQuerySchema,
        // Documented rather than declared: the handler answers with a prepared Response (a
        // cached page), which Elysia would not validate anyway.
        detail: {
          operationId: "listVideos",
          tags: ["videos"],
          summary: "List videos, newest first",
          description:
            "Cursor pagination: pass the previous page's `nextCursor` as `cursor`. Filter by `status`. Each page has a strong `ETag`; send it back as `If-None-Match` to get 304 without a body while nothing changed (`Cache-Control: private, no-cache`).",
          responses: {
            200: {
              description: VideoListSchema.description!,
              headers: {
                ETag: header(t.String({ description: "Strong validator of this page's JSON", examples: ['"9f86d081884c7d65"'] }), true),
                "Cache-Control": header(t.Literal(LIST_CACHE_CONTROL), true),
              },
              content: jsonContent(VideoListSchema),
            },
            304: { description: "Not Modified: the page is unchanged since the ETag sent in If-None-Match" },
            400: { description: BadRequest.description!, content: jsonContent(BadRequest) },
            412: { description: PreconditionFailed.description!, content: jsonContent(PreconditionFailed) },
            ...AUTH_RESPONSES,
          },
          ...moreDocs({ parameters: [numericQueryParameter("limit", ListQuerySchema.properties.limit)] }),
        },
      },
    )
    .get(
      "/events",
      ({ request, server }) => {
        // An event stream is idle between events: no idle timeout for this request.
        server?.timeout(request, 0);
        return feedResponse(feed, request, { allowed: access.sessionCheck(request), ...(drain ? { until: drain } : {}) });
      },
      FEED_ROUTE_OPTIONS,
    )
    .get(
      "/:id",
      async ({ params, request, server, set }) => {
        const row = await library.require(assertVideoId(params.id));
        const grant = await access.playback(request, row.id, row.playback, server);
        // A signed video's JSON is for whoever holds its token (and its URLs carry that token):
        // no cache keeps it. A public one changes while it is processed: revalidate.
        let cacheControl = row.playback === "signed" ? "private, no-store" : "no-cache";
        // A token holder gets URLs that work for them.
        let json = grant.token ? tokenizedJson(toVideoJson(row), grant.token) : toVideoJson(row);
        // Why it failed is the owner's to read; the answer then depends on who asks.
        if (hasFailureDetails(json)) {
          if (!(await access.isOwner(request, server))) json = viewerJson(json);
          if (row.playback !== "signed") cacheControl = "private, no-cache";
        }
        // A poller sends the ETag back and hears 304 until the video changes.
        const etag = videoEtag(json);
        const outcome = evaluatePreconditions(request.method, request.headers, { etag, lastModified: Number.NaN });
        // (A Response, which Elysia sends as is; its types admit only the schema's 200 body here.)
        if (outcome === "not-modified") return new Response(null, { status: 304, headers: { etag, "cache-control": cacheControl } }) as never;
        if (outcome === "failed") throw preconditionFailed();
        set.headers.etag = etag;
        set.headers["cache-control"] = cacheControl;
        return json;
      },
      {
        params: VideoIdParams,
        response: { 200: VideoSchema, 400: BadRequest, 403: TokenRefused, 404: NotFound, 412: PreconditionFailed },
        detail: {
          security: PLAYBACK_SECURITY,
          operationId: "getVideo",
          tags: ["videos"],
          summary: "Get a video",
          description:
            "Its status, metadata and URLs. Poll this after an upload until `status` is `ready` or `failed`: it has a strong `ETag`, so a poller that sends it back in `If-None-Match` hears 304 until the video changes, and `PATCH`/`DELETE` take it in `If-Match` (412 when the video changed since). Open for a `public` video (the player needs it); a `signed` one needs `?token=` for it or the API key.",
          ...moreDocs({
            responses: {
              200: { description: "The video", headers: { ETag: VIDEO_ETAG_HEADER, "Cache-Control": VIDEO_CACHE_CONTROL_HEADER } },
              ...PLAYBACK_OWNER_RESPONSES,
              401: PLAYBACK_OWNER_BAD_ID_401,
              304: {
                description: "Not Modified: the video is unchanged since the ETag sent in If-None-Match",
                headers: { ETag: VIDEO_ETAG_HEADER, "Cache-Control": VIDEO_CACHE_CONTROL_HEADER },
              },
            },
            parameters: [VIDEO_ID_PARAMETER, IF_NONE_MATCH_PARAMETER, IF_MATCH_PARAMETER],
            head: { operationId: "headVideo", summary: "A video's validators only" },
          }),
        },
      },
    )
    .patch(
      "/:id",
      async ({ params, request, set }) => {
        const id = videoIdFor(request, params.id);
        const body = await readJsonBody(request, VideoChangesBody, { usage: 'send {"title"?: "...", "playback"?: "public" | "signed"}' });
        const title = body.title?.trim();
        // minLength counts the spaces the trim removes: "   " would otherwise become an empty title.
        if (title === "") throw badRequest("body title: must not be blank");
        if (title === undefined && body.playback === undefined) throw badRequest("body: send `title` and/or `playback`");
        const playback = parsePlayback(body.playback, "body playback");
        const current = await library.require(id);
        // If-Match (the ETag of GET): applied only to the video as it was then (a compare-and-set).
        const checked = requireUnchanged(request, current);
        const json = toVideoJson(await library.update(id, { title, playback }, checked ? current.updatedAt : undefined));
        set.headers.etag = videoEtag(json);
        return json;
      },
      {
        params: VideoIdParams,
        // Read by hand: Elysia strips unknown keys before validating, so a misspelt
        // `"Playback": "signed"` was dropped silently and left the video public.
        parse: "none",
        response: { 200: VideoSchema, 400: BadRequest, ...AUTH_ERRORS, 404: NotFound, 412: PreconditionFailed, 413: JsonTooLarge, 415: NotJson },
        detail: {
          operationId: "updateVideo",
          tags: ["videos"],
          summary: "Change a video's title or playback policy",
          requestBody: { required: true, content: jsonContent(VideoChangesBody) },
          description:
            "Every process of this server sees the change at once: making a video `signed` refuses token-less playback here from the next request on; other servers on the same PostgreSQL database hear of it within milliseconds (NOTIFY), or at their next cache expiry (`CACHE_TTL_MS`) while their listener reconnects. With `If-Match: <the ETag of GET>`, the change applies only to the video as it was then (412 `precondition_failed` otherwise, nothing changed); the answer carries the new ETag.",
          ...moreDocs({ responses: { 200: { description: "The video as changed", headers: { ETag: VIDEO_ETAG_HEADER } } }, parameters: [VIDEO_ID_PARAMETER, IF_MATCH_PARAMETER] }),
        },
      },
    )
    .post(
      "/:id/tokens",
      async ({ params, request, set }) => {
        const body = await readJsonBody(request, TokenBody, { optional: true, usage: 'send nothing, or {"expiresIn": seconds}' });
        const row = await library.require(assertVideoId(params.id));
        const minted = await access.tokens.mint(row.id, body?.expiresIn ?? DEFAULT_TOKEN_TTL_S);
        set.status = 201;
        set.headers["cache-control"] = "no-store";
        return { token: minted.token, expiresAt: minted.expiresAt.toISOString(), ...tokenUrls(row.id, minted.token, toVideoJson(row).thumbnailUrl !== null) };
      },
      {
        params: VideoIdParams,
        // Read by hand: Elysia takes a malformed optional body for none (src/schemas/json-body.ts).
        parse: "none",
        response: { 201: TokenSchema, 400: BadRequest, ...AUTH_ERRORS, 404: NotFound, 413: JsonTooLarge, 415: NotJson },
        detail: {
          operationId: "createPlaybackToken",
          tags: ["access"],
          summary: "Mint a playback token for a video",
          requestBody: { required: false, content: jsonContent(TokenBody) },
          description:
            "A JWT signed HS256 with SIGNING_SECRET (`sub` = the video id, `exp`), and the stream, HLS, watch and thumbnail URLs carrying it. Any JWT library can mint the same tokens without calling Spool (see the README). Works for public videos too (the token is then simply not needed).",
        },
      },
    )
    .post(
      "/:id/retry",
      async ({ params, set }) => {
        const id = assertVideoId(params.id);
        const row = await library.require(id);
        const retried = await imports.retry(id);
        if (!retried) {
          const now = (await library.get(id)) ?? row;
          throw new HttpError(409, "import_not_failed", now.status === "failed" ? "Only a failed import can be retried, and this video was uploaded, not imported" : `Only a failed import can be retried, and this video is ${now.status}`);
        }
        set.status = 202;
        return toVideoJson(retried);
      },
      {
        params: VideoIdParams,
        response: { 202: VideoSchema, 400: BadRequest, ...AUTH_ERRORS, 404: NotFound, 409: ImportNotFailed, 503: IngestUnavailable },
        detail: {
          operationId: "retryImport",
          tags: ["videos"],
          summary: "Import a failed import again",
          description:
            "For a video imported from a URL whose import failed (`status` is `failed`): downloads the same URL again, from the start, through the same checks (400 when the URL is refused now). Answers 202 with the video `importing`; follow it with `GET /api/videos/{id}/events`. 409 for any other video or state.",
        },
      },
    )
    .delete(
      "/:id",
      async ({ params, request, set }) => {
        const id = videoIdFor(request, params.id);
        requireUnchanged(request, await library.require(id));
        await library.remove(id);
        set.status = 204;
      },
      {
        params: VideoIdParams,
        detail: {
          operationId: "deleteVideo",
          tags: ["videos"],
          summary: "Delete a video and all its files",
          description: "Removes the row, the stored file, the poster and every thumbnail; stops processing if it is running. Streaming it afterwards answers 404.",
          ...moreDocs({ parameters: [VIDEO_ID_PARAMETER, IF_MATCH_PARAMETER] }),
          // Documented here rather than with `response`: the plugin renders a t.Void() 204 as invalid OpenAPI.
          responses: {
            204: { description: "Deleted" },
            400: { description: BadRequest.description!, content: jsonContent(BadRequest) },
            ...AUTH_RESPONSES,
            404: { description: NotFound.description!, content: jsonContent(NotFound) },
            412: { description: PreconditionFailed.description!, content: jsonContent(PreconditionFailed) },
          },
        },
      },
    );
}

/**
 * The id of `/api/videos/:id` for a method the feed's path does not have: Elysia routes DELETE
 * /api/videos/events to `/:id` ("events" has the shape of an id), but that path is the feed's,
 * so it answers 405 with the feed's Allow (the app's NOT_FOUND handler, src/web.ts).
 */
function videoIdFor(request: Request, id: string): string {
  if (id === "events") throw new NotFoundError(`No route for ${request.method} /api/videos/events`);
  return assertVideoId(id);
}

/**
 * A change's preconditions (RFC 9110 §13.1.1: If-Match, and If-None-Match, MUST be evaluated
 * before the method is performed), against the video's JSON as the key holder gets it (the ETag
 * of GET /api/videos/:id). 412 when they fail; true when there were any, for a compare-and-set.
 * The video has no Last-Modified, so the date preconditions do not apply (§13.1.4).
 */
function requireUnchanged(request: Request, row: VideoRow): boolean {
  const headers = request.headers;
  if (!headers.has("if-match") && !headers.has("if-none-match")) return false;
  const etag = videoEtag(toVideoJson(row));
  if (evaluatePreconditions(request.method, headers, { etag, lastModified: Number.NaN }) !== "proceed") throw preconditionFailed();
  return true;
}

/** The strong ETag of a video's JSON as it is answered (with or without a token in its URLs). */
function videoEtag(json: unknown): string {
  return contentEtag(JSON.stringify(json));
}
