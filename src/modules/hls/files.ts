/**
 * The published HLS ladder's files, without Elysia: which names are served, their caching, and
 * the function that answers `GET`/`HEAD /api/hls/:id/:file` and `/api/hls/:id/:rendition/:file`
 * through the same file engine as the stream route (validators, HEAD, ranges). Only names the
 * worker writes are served, matched exactly, so no path can reach outside the video's hls/
 * directory. Bun's router calls it directly (./native.ts); the Elysia routes (./routes.ts) serve
 * the same function under `app.handle()` and document it.
 */
import { join } from "node:path";
import type { AccessControl, PeerSource } from "../../access/service.ts";
import { FileCache } from "../../files/cache.ts";
import type { FileEntity } from "../../files/entity.ts";
import { serveEntity } from "../../files/serve.ts";
import { evaluatePreconditions } from "../../http/conditional.ts";
import { HttpError, errorResponse, httpErrorResponse, preconditionFailed } from "../../http/errors.ts";
import { isVideoId } from "../../library/ids.ts";
import { videoKeys } from "../../storage/object-store.ts";
import type { ObjectServer } from "../../storage/serve.ts";
import type { StreamCatalog } from "../stream/catalog.ts";
import type { HlsService } from "./service.ts";
import { signPlaylist, signStoryboard } from "./signed.ts";

/** Playlists and the storyboard index may be rebuilt; keep them short-lived in caches. */
export const PLAYLIST_CACHE_CONTROL = "public, max-age=5";
/** Segments, init segments and sprite sheets never change under their URL. */
export const SEGMENT_CACHE_CONTROL = "public, max-age=31536000, immutable";

// Rendition names are selectLadder's: the standard rungs, or a small source's own short side
// (2p and up), so one digit is a name too.
const FILE_PATTERN = /^(?:master\.m3u8|storyboard\.vtt|storyboard_\d{1,6}\.jpg|[1-9]\d{0,3}p\/(?:index\.m3u8|init(?:_\d{1,3})?\.mp4|seg_\d{5,9}\.m4s))$/;

/** The file name under hls/ for a request's remaining path, or null when it is not one we serve. Pure. */
export function hlsFileName(rest: string): string | null {
  return FILE_PATTERN.test(rest) ? rest : null;
}

export function cacheControlFor(name: string, signed = false): string {
  const playlist = name.endsWith(".m3u8") || name.endsWith(".vtt");
  // A signed video's files stay out of shared caches, where they would outlive the token.
  if (signed) return playlist ? "private, no-cache" : "private, max-age=86400";
  return playlist ? PLAYLIST_CACHE_CONTROL : SEGMENT_CACHE_CONTROL;
}

/**
 * A playlist or storyboard index of a signed video, rewritten so that every URI carries the
 * token it was requested with. Small text, made per request; its tag is the file's tag and the
 * token's, so revalidation (304) still works.
 */
async function signedTextResponse(request: Request, entity: FileEntity, name: string, token: string, read: (entity: FileEntity) => Promise<string>): Promise<Response> {
  const tokenTag = new Bun.CryptoHasher("sha256").update(token).digest("hex").slice(0, 16);
  const etag = `"${entity.etag.replace(/^W\/|"/g, "")}-${tokenTag}"`;
  const headers = { etag, "cache-control": "private, no-cache", "x-content-type-options": "nosniff" };
  const outcome = evaluatePreconditions(request.method, request.headers, { etag, lastModified: entity.lastModified });
  if (outcome === "not-modified") return new Response(null, { status: 304, headers });
  if (outcome === "failed") return httpErrorResponse(preconditionFailed());
  const text = await read(entity);
  const body = name.endsWith(".vtt") ? signStoryboard(text, token) : signPlaylist(text, token);
  const full = { ...headers, "content-type": entity.contentType, "last-modified": entity.headers["last-modified"]!, "content-length": String(Buffer.byteLength(body)) };
  return new Response(request.method === "HEAD" ? null : body, { headers: full });
}

/** Where published ladder files are found and how they are sent: DATA_DIR or the bucket, chosen once. */
interface LadderFiles {
  lookup(id: string, name: string, cacheControl: string): Promise<FileEntity | undefined>;
  serve(request: Request, entity: FileEntity): Response | Promise<Response>;
  text(entity: FileEntity): Promise<string>;
  forget(id: string): void;
}

function diskLadder(hls: HlsService, cacheTtlMs: number): LadderFiles {
  const cache = new FileCache(cacheTtlMs);
  return {
    lookup: (id, name, cacheControl) => cache.lookup(join(hls.hlsDir(id), name), { cacheControl }),
    serve: (request, entity) => serveEntity(request, entity),
    text: (entity) => entity.file.text(),
    forget: (id) => cache.forget(id === "*" ? "" : hls.library.storage.videoDir(id) + "/"),
  };
}

function bucketLadder(objects: ObjectServer): LadderFiles {
  return {
    lookup: (id, name, cacheControl) => objects.lookup(`${videoKeys.hls(id)}${name}`, { cacheControl }),
    serve: (request, entity) => objects.serve(request, entity),
    text: (entity) => objects.text(entity),
    forget: (id) => objects.forget(id === "*" ? "" : videoKeys.hls(id)),
  };
}

export interface LadderAccess {
  catalog: StreamCatalog;
  access: AccessControl;
  /** STORAGE=s3: ladders are objects under `videos/<id>/hls/`, served through the block cache. */
  objects?: ObjectServer;
}

/** Answers a request for ladder file `rest` (`master.m3u8`, `720p/seg_00001.m4s`, …) of video `id`. */
export type LadderServer = (request: Request, id: string, rest: string, server: PeerSource) => Promise<Response>;

export function ladderServer(hls: HlsService, { catalog, access, objects }: LadderAccess, cacheTtlMs: number): LadderServer {
  const files = objects ? bucketLadder(objects) : diskLadder(hls, cacheTtlMs);
  hls.library.events.on("invalidated", (id: string) => files.forget(id));
  const noFile = () => errorResponse(404, "not_found", "No such HLS file");

  return async (request, id, rest, server) => {
    const name = isVideoId(id) ? hlsFileName(rest) : null;
    if (!name) return noFile();
    // The ladder of a ready video only, once it is complete (in a bucket its files appear one by
    // one while it is published); its playback policy decides who may have it.
    const cached = catalog.peek(id);
    const video = cached === undefined ? await catalog.load(id) : cached;
    if (!video) return noFile();
    let token: string | null = null;
    // The token first: without it, a signed video's ladder is neither there nor not there.
    if (video.signed) {
      try {
        token = (await access.playback(request, id, "signed", server)).token;
      } catch (error) {
        if (error instanceof HttpError) return httpErrorResponse(error);
        throw error;
      }
    }
    if (!video.hlsReady) return noFile();
    const entity = await files.lookup(id, name, cacheControlFor(name, video.signed));
    if (!entity) return noFile();
    if (token !== null && (name.endsWith(".m3u8") || name.endsWith(".vtt"))) {
      if (request.method !== "GET" && request.method !== "HEAD") return files.serve(request, entity);
      return signedTextResponse(request, entity, name, token, files.text);
    }
    return files.serve(request, entity);
  };
}
