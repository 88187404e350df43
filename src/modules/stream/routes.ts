/** `GET`/`HEAD /api/stream/:id`: the hot path. */
import { Elysia } from "elysia";
import { serveEntity } from "../../files/serve.ts";
import { errorResponse } from "../../http/errors.ts";
import { isVideoId } from "../videos/ids.ts";
import type { StreamCatalog } from "./catalog.ts";

/** `?download=1` (or `true`) asks for `Content-Disposition: attachment`. */
function wantsDownload(url: string): boolean {
  const q = url.indexOf("?");
  if (q < 0) return false;
  const value = new URLSearchParams(url.slice(q + 1)).get("download");
  return value === "1" || value === "true";
}

export async function streamVideo(request: Request, id: string, catalog: StreamCatalog): Promise<Response> {
  if (!isVideoId(id)) return errorResponse(400, "bad_request", "The id is not a video id (4-64 characters of A-Z a-z 0-9 _ -)");
  const download = wantsDownload(request.url);
  let entity = catalog.peek(id, download);
  if (entity === undefined) entity = await catalog.load(id, download);
  if (!entity) return errorResponse(404, "not_found", `No ready video with id ${id}`);
  return serveEntity(request, entity);
}

export function streamRoutes(catalog: StreamCatalog) {
  return new Elysia({ name: "spool.stream" }).get("/api/stream/:id", ({ request, params }) => streamVideo(request, params.id, catalog), {
    detail: {
      summary: "Stream a video",
      description:
        "Byte ranges (RFC 9110 §14): 200 or 206 (single or multipart/byteranges), 416 when no range is satisfiable. Preconditions: 304 for If-None-Match / If-Modified-Since, 412 for If-Match / If-Unmodified-Since, If-Range honoured. `?download=1` adds Content-Disposition: attachment.",
    },
  });
}
