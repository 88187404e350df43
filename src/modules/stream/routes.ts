/**
 * `GET`/`HEAD /api/stream/:id`: the hot path.
 *
 * In the running server this is a native Bun route (`nativeStreamRoute`): Bun's router calls it
 * directly, with no framework context or lifecycle hooks per request. A cached video costs one
 * Map lookup and one `Response` around a file slice. The Elysia route (`streamRoutes`, in
 * ./plugin.ts) serves the same function for `app.handle()` and documents it in OpenAPI. This
 * module loads no Elysia: a WORKERS child that has only streamed holds none (src/server.ts).
 */
import type { BunRequest, Server } from "bun";
import type { AccessControl, PeerSource } from "../../access/service.ts";
import { type ClipCache, clipFilename, isClippable, parseClipInterval, serveClipEntity, type ClipInterval } from "../../files/clip.ts";
import { nativeRanged, preconditionResponse } from "../../files/serve.ts";
import { extensionOf } from "../../http/content-type.ts";
import { withDate } from "../../http/date.ts";
import { corsHeaders, preflightFor, withCorsHeaders, type CorsHeaders } from "../../http/cors.ts";
import { expectedErrorResponse } from "../expected-errors.ts";
import { HttpError, errorResponse, httpErrorResponse, methodNotAllowed } from "../../http/errors.ts";
import { refusedMethods, unhandledError } from "../../lib/telemetry.ts";
import { REQUEST_ID_HEADER, requestIdOf } from "../../lib/request-id.ts";
import { hot } from "../../metrics/metrics.ts";
import { isVideoId } from "../../library/ids.ts";
import type { BodyServer, CachedVideo, StreamCatalog } from "./catalog.ts";

function notFound(id: string): Response {
  return errorResponse(404, "not_found", `No ready video with id ${id}`);
}

/** What the stream route needs besides the request: made once, not per request. */
export interface StreamContext {
  catalog: StreamCatalog;
  access: AccessControl;
  clips: ClipCache;
  /** `serveBody` (sendfile from DATA_DIR) or, with STORAGE=s3, the bucket's engine: fixed at construction. */
  body: BodyServer;
}

export function streamContext(catalog: StreamCatalog, access: AccessControl): StreamContext {
  return { catalog, access, clips: catalog.clipCache, body: catalog.body };
}

export function streamVideo(request: Request, id: string, context: StreamContext, server?: PeerSource): Response | Promise<Response> {
  const video = context.catalog.peek(id);
  // Only valid ids are ever cached, so a hit needs no id check. A public video pays one boolean.
  if (video) return video.signed ? serveSigned(request, video, context, server) : serveVideo(request, video, context, server);
  if (!isVideoId(id)) return streamSuffixed(request, id, context, server);
  if (video === null) return notFound(id);
  return context.catalog.load(id).then((loaded) => {
    if (!loaded) return notFound(id);
    return loaded.signed ? serveSigned(request, loaded, context, server) : serveVideo(request, loaded, context, server);
  });
}

/**
 * `/api/stream/<id>.<ext>`: the same entity, for players and download tools that key on the
 * extension. The extension must be the stored container's (or `mp4` for any ISO BMFF file);
 * anything else, like any path that names no ready video, is a 404.
 */
function streamSuffixed(request: Request, path: string, context: StreamContext, server?: PeerSource): Response | Promise<Response> {
  const dot = path.lastIndexOf(".");
  const id = dot > 0 ? path.slice(0, dot) : "";
  const ext = path.slice(dot + 1).toLowerCase();
  if (dot < 0 || !isVideoId(id)) return notFound(path);
  const named = (video: CachedVideo | null): Response | Promise<Response> => {
    if (!video) return notFound(path);
    const stored = extensionOf(video.inline.path);
    if (ext !== stored && !(ext === "mp4" && isClippable(video.inline.path, video.inline.contentType))) return notFound(path);
    return video.signed ? serveSigned(request, video, context, server) : serveVideo(request, video, context, server);
  };
  const cached = context.catalog.peek(id);
  return cached === undefined ? context.catalog.load(id).then(named) : named(cached);
}

/**
 * A signed video: the token is checked before anything else (a 304 would confirm the content
 * hash to someone without one). A token seen before is a synchronous cache hit.
 */
function serveSigned(request: Request, video: CachedVideo, context: StreamContext, server: PeerSource): Response | Promise<Response> {
  const grant = context.access.playback(request, video.id, "signed", server);
  return grant instanceof Promise ? grant.then(() => serveVideo(request, video, context, server)) : serveVideo(request, video, context, server);
}

/**
 * Whether a query string may hold `start`, `end` or `download`. URLSearchParams percent-decodes
 * keys (and reads `+` as a space), so without a `%` a key can only name them spelled literally;
 * anything this matches by chance (a token containing `end`) is parsed in full.
 */
const MAY_NAME_CLIP_PARAMETERS = /start|end|download|%/;

function serveVideo(request: Request, video: CachedVideo, context: StreamContext, server?: PeerSource): Response | Promise<Response> {
  // The file's preconditions are evaluated first, but answered only once the URL is known to
  // name the file: on a clip URL (`?start=`) the clip's own tag decides, so If-None-Match with
  // the file's tag gets the clip, not a 304 for another representation.
  const settled = preconditionResponse(request, video.inline);
  const url = request.url;
  const q = url.indexOf("?");
  if (q < 0) return settled ?? context.body(request, video.inline);
  const search = url.slice(q + 1);
  // Every request of a signed video has a query (`?token=`): skip parsing it (1.3 µs) when it
  // cannot name the parameters read below.
  if (!MAY_NAME_CLIP_PARAMETERS.test(search)) return settled ?? context.body(request, video.inline);
  const query = new URLSearchParams(search);
  const value = query.get("download");
  const download = value === "1" || value === "true";
  const start = query.get("start");
  const end = query.get("end");
  if (start === null && end === null) return settled ?? context.body(request, video.variant(download));
  return serveVideoClip(request, video, context, start, end, download, server) ?? settled ?? context.body(request, video.variant(download));
}

/** `?start=&end=`: the clip, or null when the interval is the whole file (`start=0` alone). */
function serveVideoClip(request: Request, video: CachedVideo, context: StreamContext, start: string | null, end: string | null, download: boolean, server?: PeerSource): Response | Promise<Response> | null {
  let interval: ClipInterval | undefined;
  try {
    interval = parseClipInterval(start, end);
  } catch (error) {
    if (error instanceof HttpError) return httpErrorResponse(error);
    throw error;
  }
  if (!interval) return null;
  const base = video.inline;
  if (!isClippable(base.path, base.contentType)) {
    return errorResponse(400, "clip_unsupported_container", `Clips need an MP4 or MOV video; this one is ${extensionOf(base.path) || base.contentType}`);
  }
  const variant = download ? { disposition: "attachment" as const, filename: clipFilename(video.downloadName, interval) } : {};
  try {
    // A header not made yet is CPU a client could multiply: the client counts against its share.
    const clip = context.clips.get(base, interval, variant, () => context.access.client(request, server));
    const served = clip instanceof Promise ? clip.then((c) => serveClipEntity(request, c)) : serveClipEntity(request, clip);
    return served instanceof Promise ? served.catch(refusal) : served;
  } catch (error) {
    return refusal(error);
  }
}

function refusal(error: unknown): Response {
  // STORAGE=s3: the bucket did not answer while the clip's moov or first media bytes were read
  // (503, never a 500).
  const response = expectedErrorResponse(error);
  if (response === null) throw error;
  return response;
}

/**
 * CORS for the stream route. With a `*` policy the headers are constant and already inside every
 * cached entity, so only error answers need them added; with an origin list they depend on the
 * request's Origin and are added to every answer.
 */
export function streamCorsHeaders(allowed: readonly string[]): CorsHeaders | undefined {
  return allowed.includes("*") ? (corsHeaders(allowed, null) ?? undefined) : undefined;
}


export function nativeStreamRoute(catalog: StreamCatalog, access: AccessControl, allowedOrigins: readonly string[], { metrics = true } = {}) {
  const constant = streamCorsHeaders(allowedOrigins);
  const perRequest = !constant && allowedOrigins.length > 0;

  const finish = (request: Request, response: Response): Response => {
    // The hot path's whole telemetry: a counter, and the request id (no log line per hit).
    const status = response.status;
    if (metrics) hot.stream[status === 200 && nativeRanged.has(response) ? 206 : status]! += 1;
    response.headers.set(REQUEST_ID_HEADER, requestIdOf(request));
    if (perRequest) return withCorsHeaders(response, corsHeaders(allowedOrigins, request.headers.get("origin")));
    // Success and 304 answers carry the constant headers already (baked into the entity).
    if (constant && status >= 400) return withCorsHeaders(response, constant);
    return response;
  };
  const failed = (request: Request, error: unknown): Response => expectedErrorResponse(error) ?? unhandledError(request, error);

  const context = streamContext(catalog, access);
  const handle = (request: BunRequest, server: Server<undefined>): Response | Promise<Response> => {
    try {
      const result = streamVideo(request, request.params.id ?? "", context, server);
      return result instanceof Response ? finish(request, result) : result.then((r) => finish(request, r), (e) => finish(request, failed(request, e)));
    } catch (error) {
      return finish(request, failed(request, error));
    }
  };
  // Bun sends no Date on answers to HEAD (src/http/date.ts): only HEAD pays for adding it.
  const head = (request: BunRequest, server: Server<undefined>): Response | Promise<Response> => {
    const result = handle(request, server);
    return result instanceof Response ? withDate(result) : result.then(withDate);
  };
  const preflight = (request: Request): Response => {
    // Not a preflight this policy answers: the methods the stream supports (§9.3.7). Like a
    // preflight, not counted as a stream answer.
    const headers = preflightFor(allowedOrigins, request.headers) ?? { allow: "GET, HEAD, OPTIONS" };
    return new Response(null, { status: 204, headers: { ...headers, [REQUEST_ID_HEADER]: requestIdOf(request) } });
  };
  const notAllowed = (request: Request): Response =>
    finish(request, methodNotAllowed(request.method, "on a stream", "GET, HEAD, OPTIONS"));
  return {
    "/api/stream/:id": { GET: handle, HEAD: head, OPTIONS: preflight, ...refusedMethods(notAllowed) },
  };
}
