/**
 * `sendFile(path, options)`: return it from any Elysia route and the file engine answers with
 * full range, validator and HEAD semantics. Install the engine once with `.use(fileServer())`.
 *
 *   app.use(fileServer()).get("/report", () => sendFile("data/report.pdf", { filename: "Report.pdf", disposition: "attachment" }))
 */
import { Elysia } from "elysia";
import { errorResponse } from "../http/errors.ts";
import { FileCache } from "./cache.ts";
import type { ServeOptions } from "./entity.ts";
import { serveEntity } from "./serve.ts";

export class FileReply {
  constructor(
    readonly path: string,
    readonly options: ServeOptions = {},
  ) {}
}

export function sendFile(path: string, options: ServeOptions = {}): FileReply {
  return new FileReply(path, options);
}

/** Answers a request with a file from disk, or the JSON 404 when it is not a regular file. */
export async function serveFile(request: Request, path: string, options: ServeOptions = {}, cache?: FileCache): Promise<Response> {
  const key = options.filename || options.disposition ? `${path}\0${options.disposition ?? ""}\0${options.filename ?? ""}` : path;
  const entity = cache ? await cache.lookup(path, options, key) : await new FileCache(0).lookup(path, options);
  if (!entity) return errorResponse(404, "not_found", "No such file");
  return serveEntity(request, entity);
}

export function fileServer(options: { cache?: FileCache } = {}) {
  const cache = options.cache ?? new FileCache();
  return new Elysia({ name: "spool.file-server" }).mapResponse({ as: "global" }, ({ responseValue, request }) => {
    if (responseValue instanceof FileReply) return serveFile(request, responseValue.path, responseValue.options, cache);
  });
}
