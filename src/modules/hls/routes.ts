/**
 * `GET /api/hls/:id/:file` and `/api/hls/:id/:rendition/:file`: the published ladder (./files.ts,
 * answered natively by Bun's router, ./native.ts; these routes document it and serve it under
 * `app.handle()`), and the retry of a failed build.
 *
 * `GET /api/videos/:id/events`: Server-Sent Events with the video's status and HLS progress.
 */
import type { EventEmitter } from "node:events";
import { Elysia, t } from "elysia";
import { AUTH_ERRORS, AUTH_RESPONSES, PLAYBACK_OWNER_RESPONSES, PLAYBACK_SECURITY } from "../../access/plugin.ts";
import type { AccessControl } from "../../access/service.ts";
import { optionsAnswer } from "../../http/allow.ts";
import { HttpError } from "../../http/errors.ts";
import { BYTERANGES_CONTENT, FILE_REQUEST_HEADERS, header, jsonContent, moreDocs } from "../../schemas/openapi.ts";
import { VIDEO_ID_PATTERN, assertVideoId } from "../../library/ids.ts";
import { errorSchema } from "../../http/error-schemas.ts";
import { BadRequest, NotFound, VIDEO_ID_PARAMETER, VideoIdParams, VideoSchema, toVideoJson, type VideoJson } from "../../schemas/video.ts";
import type { HlsService } from "./service.ts";
import { EVENT_QUEUE, enqueueEvent, eventStreamResponse, type EventStreamBounds } from "../../http/event-stream.ts";
import { VideoWatch } from "../../library/watch.ts";
import { SEGMENT_CACHE_CONTROL, type LadderServer } from "./files.ts";

export { PLAYLIST_CACHE_CONTROL, SEGMENT_CACHE_CONTROL, cacheControlFor, hlsFileName } from "./files.ts";

const SSE_PING_MS = 15_000;
const encoder = new TextEncoder();

function fingerprint(video: VideoJson): { status: string; progress: string } {
  return {
    status: JSON.stringify([video.status, video.error, video.title, video.hls.status, video.hls.error]),
    progress: String(video.hls.progress),
  };
}

/** Emits "progress" with `{id, bytes, total}` while a URL import of a video downloads. */
type DownloadEvents = Pick<EventEmitter, "on" | "off">;

function sseEvents(watch: VideoWatch, request: Request, id: string, first: VideoJson, downloads?: DownloadEvents, bounds: EventStreamBounds = {}): Response {
  let closed = false;
  let counter = 0;
  let last = fingerprint(first);
  let cleanup = () => {};

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (event: string, data: unknown) => push(`id: ${++counter}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      // A client that does not read: the backlog is dropped (the stream errored), and it ends.
      const push = (text: string) => {
        if (!closed && !enqueueEvent(controller, encoder.encode(text))) close();
      };
      const close = () => {
        if (closed) return;
        closed = true;
        cleanup();
        try {
          controller.close();
        } catch {
          // already closed by the client
        }
      };
      // The row is read once per change (and, on SQLite, per poll) for every stream watching it.
      const unwatch = watch.subscribe(id, {
        row(row) {
          if (closed) return;
          if (!row) {
            send("deleted", { id });
            return close();
          }
          const video = toVideoJson(row);
          const next = fingerprint(video);
          if (next.status !== last.status) send("status", video);
          else if (next.progress !== last.progress) send("progress", video);
          last = next;
        },
        failed: close, // the database is closing: the client reconnects (retry)
      });
      // A URL import's download, when this process runs it.
      const onDownload = (p: { id: string; bytes: number; total?: number | null }) => {
        if (p.id === id) send("import", { id, bytes: p.bytes, total: p.total ?? null });
      };
      downloads?.on("progress", onDownload);
      const ping = setInterval(() => push(": ping\n\n"), SSE_PING_MS);
      cleanup = () => {
        unwatch();
        clearInterval(ping);
        downloads?.off("progress", onDownload);
      };
      request.signal.addEventListener("abort", close, { once: true });
      push("retry: 2000\n\n");
      send("status", first);
    },
    cancel() {
      closed = true;
      cleanup();
    },
  }, EVENT_QUEUE);
  return eventStreamResponse(stream, bounds);
}

const FILE_PARAMS = [
  { name: "token", in: "query", required: false, description: "Playback token (JWT) of a `signed` video; the playlists served with it carry it in every URI", schema: t.String() },
  ...FILE_REQUEST_HEADERS,
];
const fileHeaders = {
  ETag: header(t.String({ description: "Validator from size and modification time", examples: ['"6760f1a2-2c4f1"'] }), true),
  "Last-Modified": header(t.String({ examples: ["Sun, 22 Nov 2026 10:00:00 GMT"] }), true),
  "Cache-Control": header(t.String({ description: "Playlists and the storyboard index: `public, max-age=5`; segments and sprites: immutable", examples: [SEGMENT_CACHE_CONTROL] }), true),
  "Accept-Ranges": header(t.Literal("bytes"), true),
  "Access-Control-Allow-Origin": header(t.String({ description: "CORS (CORS_ORIGINS, default `*`)", examples: ["*"] })),
};
const NotFailed = errorSchema(
  "The video's HLS build has not failed (it is queued, running, built or skipped), or the video is not ready",
  "hls_not_failed",
  "Only a failed HLS build can be retried, and its HLS ladder is ready",
);
const NoFile = errorSchema("No such video, its ladder is not built yet, or no such file in it", "not_found", "No such HLS file");
const binary = (description: string) => t.String({ format: "binary", description });

function fileResponses(types: Record<string, string>) {
  const content = Object.fromEntries(Object.entries(types).map(([type, description]) => [type, { schema: binary(description) }]));
  return {
    200: { description: "The file", headers: fileHeaders, content },
    206: {
      description: "Byte ranges of the file: one (with Content-Range), or several as multipart/byteranges",
      headers: { ...fileHeaders, "Content-Range": header(t.String({ description: "For a single range", examples: ["bytes 0-65535/181590"] })) },
      content: { ...content, ...BYTERANGES_CONTENT },
    },
    304: { description: "Not Modified (If-None-Match / If-Modified-Since matched)" },
    ...PLAYBACK_OWNER_RESPONSES,
    403: {
      description: "The video is `signed` and the request has no valid `?token=` for it (nor the API key); `code` says why",
      content: jsonContent(errorSchema("No valid playback token", "token_wrong_video", "The playback token was issued for another video")),
    },
    404: { description: NoFile.description!, content: jsonContent(NoFile) },
    412: { description: "Precondition Failed: If-Match / If-Unmodified-Since did not hold", content: jsonContent(errorSchema("Precondition failed", "precondition_failed", "A precondition in the request did not hold")) },
    416: { description: "No requested range lies within the file", content: jsonContent(errorSchema("Range not satisfiable", "range_not_satisfiable", "No requested range is satisfiable for 181590 bytes")) },
  };
}

const EventsResponse = t.String({
  description:
    "An event stream. `event: status` / `event: progress` carry the video's JSON (as GET /api/videos/{id}); `event: import` carries a URL import's download progress `{\"id\", \"bytes\", \"total\"}` (total null when the source did not say; from any worker on PostgreSQL, on SQLite from the server's own `WORKERS` cluster); `event: deleted` carries `{\"id\"}`.",
  examples: ['id: 3\nevent: progress\ndata: {"id":"q7cN0l1dQ5m0tS9xYk3eZA","status":"ready","hls":{"status":"processing","progress":42}}\n\n'],
});

/**
 * `ladder` answers the ladder's files (./files.ts), for `app.handle()`: the running server's
 * router sends them to the native routes (./native.ts) first.
 */
export function hlsRoutes(
  hls: HlsService,
  serve: LadderServer,
  { downloads, access, drain }: { downloads?: DownloadEvents; access?: Pick<AccessControl, "sessionCheck">; drain?: AbortSignal } = {},
) {
  const watch = new VideoWatch(hls.library);

  // As on the stream route: OPTIONS answered, and listed in a 405's Allow.
  const options = optionsAnswer("GET, HEAD, OPTIONS");
  const undocumented = { detail: { hide: true } };

  return new Elysia({ name: "spool.hls" })
    .options("/api/hls/:id/:name", options, undocumented)
    .options("/api/hls/:id/:name/:file", options, undocumented)
    // One parameter name per path position (the router requires it): `name` is a file here...
    .get("/api/hls/:id/:name", ({ request, params, server }) => serve(request, params.id, params.name, server), {
      params: t.Object({ id: t.String(), name: t.String() }),
      detail: {
        security: PLAYBACK_SECURITY,
        operationId: "getHlsFile",
        tags: ["hls"],
        summary: "HLS master playlist or storyboard",
        description:
          "`master.m3u8`: the master playlist (application/vnd.apple.mpegurl) listing every rendition with BANDWIDTH, AVERAGE-BANDWIDTH, RESOLUTION, FRAME-RATE and CODECS. `storyboard.vtt`: WebVTT cues mapping time ranges to regions (`#xywh=`) of the sprite sheets `storyboard_<n>.jpg`. Served by the file engine (ranges, validators, HEAD); CORS on by default. Point hls.js, Safari or any HLS player at the master playlist.",
        responses: fileResponses({ "application/vnd.apple.mpegurl": "The master playlist", "text/vtt": "The storyboard's WebVTT", "image/jpeg": "A sprite sheet" }),
        ...moreDocs({
          parameters: [VIDEO_ID_PARAMETER, { name: "name", in: "path", required: true, description: "`master.m3u8`, `storyboard.vtt` or `storyboard_<n>.jpg`", schema: t.String({ examples: ["master.m3u8"] }) }, ...FILE_PARAMS],
          head: { operationId: "headHlsFile", summary: "HLS master playlist or storyboard: headers only" },
        }),
      },
    })
    // ...and a rendition here.
    .get("/api/hls/:id/:name/:file", ({ request, params, server }) => serve(request, params.id, `${params.name}/${params.file}`, server), {
      params: t.Object({ id: t.String(), name: t.String(), file: t.String() }),
      detail: {
        security: PLAYBACK_SECURITY,
        operationId: "getHlsRenditionFile",
        tags: ["hls"],
        summary: "HLS rendition playlist, init segment or media segment",
        description:
          "`index.m3u8`: the rendition's media playlist (VOD). `init_<n>.mp4` (video/mp4): its fMP4 initialization segment. `seg_<n>.m4s` (video/iso.segment): CMAF media segments of about 4 s, each starting on a keyframe aligned across renditions. Segments are immutable (`Cache-Control: immutable`), playlists short-lived.",
        responses: fileResponses({ "application/vnd.apple.mpegurl": "The media playlist", "video/mp4": "The init segment", "video/iso.segment": "A media segment" }),
        ...moreDocs({
          parameters: [
            VIDEO_ID_PARAMETER,
            { name: "name", in: "path", required: true, description: "The rendition, e.g. `720p`", schema: t.String({ examples: ["720p"] }) },
            { name: "file", in: "path", required: true, description: "`index.m3u8`, `init_<n>.mp4` or `seg_<n>.m4s`", schema: t.String({ examples: ["seg_00000.m4s"] }) },
            ...FILE_PARAMS,
          ],
          head: { operationId: "headHlsRenditionFile", summary: "HLS rendition playlist, init segment or media segment: headers only" },
        }),
      },
    })
    .post(
      "/api/videos/:id/hls/retry",
      async ({ params, set }) => {
        const id = assertVideoId(params.id);
        const row = await hls.library.require(id);
        if (!(await hls.retry(id))) {
          const what = row.status !== "ready" ? `the video is ${row.status}` : `its HLS ladder is ${row.hlsStatus}`;
          throw new HttpError(409, "hls_not_failed", `Only a failed HLS build can be retried, and ${what}`);
        }
        set.status = 202;
        return toVideoJson(await hls.library.require(id));
      },
      {
        params: VideoIdParams,
        response: { 202: VideoSchema, 400: BadRequest, ...AUTH_ERRORS, 404: NotFound, 409: NotFailed },
        detail: {
          operationId: "retryHls",
          tags: ["hls"],
          summary: "Build a failed HLS ladder again",
          description:
            "For a ready video whose HLS build failed (`hls.status` is `failed`, with ffmpeg's error in `hls.error`): queues a fresh build, attempts counted from zero, once the cause is fixed. Answers 202 with the video (`hls.status` is `queued`); follow it with `GET /api/videos/{id}/events`. 409 in any other state.",
        },
      },
    )
    .get(
      "/api/videos/:id/events",
      async ({ params, request, server }) => {
        const id = assertVideoId(params.id);
        const row = await hls.library.require(id);
        // An event stream is idle between events: no idle timeout for this request.
        server?.timeout(request, 0);
        return sseEvents(watch, request, id, toVideoJson(row), downloads, { allowed: access?.sessionCheck(request) ?? null, ...(drain ? { until: drain } : {}) });
      },
      {
        params: VideoIdParams,
        detail: {
          operationId: "videoEvents",
          tags: ["videos"],
          summary: "Follow a video's processing and HLS progress (Server-Sent Events)",
          description:
            "`text/event-stream`, for `EventSource`. `status` (the video's JSON) first and whenever its status, error, title or HLS state changes; `progress` (the video's JSON) when only the HLS percentage moved; `deleted` when the video is removed, after which the stream ends. Changes made by other processes (a separate worker) arrive within half a second. A comment line every 15 s keeps proxies from closing the stream.",
          responses: {
            200: { description: "The event stream", content: { "text/event-stream": { schema: EventsResponse } } },
            400: { description: BadRequest.description!, content: jsonContent(BadRequest) },
            ...AUTH_RESPONSES,
            404: { description: NotFound.description!, content: jsonContent(NotFound) },
          },
        },
      },
    );
}
