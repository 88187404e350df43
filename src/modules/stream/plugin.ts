/**
 * The stream route as an Elysia route: the same function as the native route (./routes.ts), for
 * `app.handle()` (tests, in-process callers) and for the OpenAPI document. In the running server
 * Bun's router answers /api/stream/:id with the native route before Elysia sees it.
 */
import { Elysia } from "elysia";
import type { AccessControl } from "../../access/service.ts";
import { optionsAnswer } from "../../http/allow.ts";
import type { StreamCatalog } from "./catalog.ts";
import { streamContext, streamVideo } from "./routes.ts";

export function streamRoutes(catalog: StreamCatalog, access: AccessControl) {
  const context = streamContext(catalog, access);
  return new Elysia({ name: "spool.stream" })
    // As the native route answers it; being a route, it also puts OPTIONS in the Allow of the
    // 405 that a method Bun's router does not know (PROPFIND) gets from the app.
    .options("/api/stream/:id", optionsAnswer("GET, HEAD, OPTIONS"), { detail: { hide: true } })
    .get("/api/stream/:id", ({ request, params, server }) => streamVideo(request, params.id, context, server), {
    detail: {
      summary: "Stream a video",
      description:
        "Byte ranges (RFC 9110 §14): 200 or 206 (single or multipart/byteranges), 416 when no range is satisfiable. Preconditions: 304 for If-None-Match / If-Modified-Since, 412 for If-Match / If-Unmodified-Since, If-Range honoured. `?download=1` adds Content-Disposition: attachment. A video with `playback: signed` needs `?token=<JWT>` (or the API key): 403 with code `token_missing`, `token_malformed`, `token_invalid`, `token_wrong_video` or `token_expired` otherwise, checked before any precondition.",
    },
  });
}
