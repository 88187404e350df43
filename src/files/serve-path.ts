/**
 * Answering with the file (or MP4 clip) at a path: a stat (or a cached one), then the file
 * engine. No Elysia here: the native routes of a WORKERS child that has not built the app use it.
 */
import { HttpError, errorResponse, httpErrorResponse } from "../http/errors.ts";
import { FileCache, statEntity } from "./cache.ts";
import { ClipCache, clipFilename, serveClipEntity, type ClipInterval } from "./clip.ts";
import type { ServeOptions } from "./entity.ts";
import { serveEntity } from "./serve.ts";

/** Answers a request with a file from disk, or the JSON 404 when it is not a regular file. */
export async function serveFile(request: Request, path: string, options: ServeOptions = {}, cache?: FileCache): Promise<Response> {
  // Without a cache, one stat: nothing is kept, so nothing needs allocating per call.
  const entity = cache ? await cache.lookup(path, options) : await statEntity(path, options);
  if (!entity) return errorResponse(404, "not_found", "No such file");
  return serveEntity(request, entity);
}

/** Answers with the clip `interval` of the MP4 at `path`: 404 when missing, 400/422 when it cannot be cut. */
export async function serveClip(request: Request, path: string, interval: ClipInterval, options: ServeOptions = {}, caches: { files?: FileCache; clips: ClipCache } = { clips: defaultClips() }): Promise<Response> {
  const base = caches.files ? await caches.files.lookup(path, options) : await statEntity(path, options);
  if (!base) return errorResponse(404, "not_found", "No such file");
  try {
    const variant = { disposition: options.disposition, filename: options.filename ? clipFilename(options.filename, interval) : undefined };
    const clip = await caches.clips.get(base, interval, variant);
    return serveClipEntity(request, clip);
  } catch (error) {
    if (error instanceof HttpError) return httpErrorResponse(error);
    throw error;
  }
}

let shared: ClipCache | undefined;
function defaultClips(): ClipCache {
  return (shared ??= new ClipCache());
}
