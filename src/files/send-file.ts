/**
 * `sendFile(path, options)`: return it from any Elysia route and the file engine answers with
 * full range, validator and HEAD semantics. Install the engine once with `.use(fileServer())`.
 *
 *   app.use(fileServer()).get("/report", () => sendFile("data/report.pdf", { filename: "Report.pdf", disposition: "attachment" }))
 *
 * `sendClip(path, { start, end })` answers with the MP4 clip of that interval (seconds) instead.
 */
import { Elysia } from "elysia";
import { FileCache } from "./cache.ts";
import { ClipCache, type ClipInterval } from "./clip.ts";
import type { ServeOptions } from "./entity.ts";
import { serveClip, serveFile } from "./serve-path.ts";

export { serveClip, serveFile } from "./serve-path.ts";

export class FileReply {
  constructor(
    readonly path: string,
    readonly options: ServeOptions = {},
    /** Set: answer with the MP4 clip of this interval. */
    readonly clip?: ClipInterval,
  ) {}
}

export function sendFile(path: string, options: ServeOptions = {}): FileReply {
  return new FileReply(path, options);
}

/** The clip [start, end) seconds of the MP4 at `path`; `options.filename` gets the interval added. */
export function sendClip(path: string, interval: ClipInterval, options: ServeOptions = {}): FileReply {
  return new FileReply(path, options, interval);
}

export function fileServer(options: { cache?: FileCache; clips?: ClipCache } = {}) {
  const cache = options.cache ?? new FileCache();
  const clips = options.clips ?? new ClipCache();
  return new Elysia({ name: "spool.file-server" }).mapResponse({ as: "global" }, ({ responseValue, request }) => {
    if (!(responseValue instanceof FileReply)) return;
    if (responseValue.clip) return serveClip(request, responseValue.path, responseValue.clip, responseValue.options, { files: cache, clips });
    return serveFile(request, responseValue.path, responseValue.options, cache);
  });
}
