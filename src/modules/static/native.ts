/** /static/* without Elysia: the handler and its native Bun route (see ./routes.ts). */
import { FileCache } from "../../files/cache.ts";
import type { MemoryTier } from "../../files/memory-tier.ts";
import type { OpenFiles } from "../../files/open-files.ts";
import { serveFile } from "../../files/serve-path.ts";
import { contentTypeFor } from "../../http/content-type.ts";
import { errorResponse } from "../../http/errors.ts";
import { requestPath } from "../../http/path.ts";
import { readOnlyRoute } from "../../lib/telemetry.ts";
import { StaticRoot } from "./resolve.ts";

const PREFIX = "/static/";
export const STATIC_ROUTE = "/static/*";

/** The still-encoded path after /static/, taken from the raw URL so it is decoded only once. */
function rawRelativePath(url: string): string {
  const path = requestPath(url);
  const hash = path.indexOf("#");
  return path.slice(PREFIX.length, hash < 0 ? undefined : hash);
}

export type StaticHandler = (request: Request) => Promise<Response>;

/**
 * `excluded`: the library's own files, never served (config.ts `libraryPaths`); `memory`: the RAM
 * tier the stream route uses (small files and heads of large ones); `descriptors`: its kept
 * descriptors (short ranges past offset 0; src/files/open-files.ts).
 */
export function staticHandler(staticDir: string, cacheTtlMs: number, excluded: readonly string[], memory?: MemoryTier, descriptors?: OpenFiles): StaticHandler {
  const root = new StaticRoot(staticDir, cacheTtlMs, { excluded });
  const cache = new FileCache(cacheTtlMs);
  const options = { ...(memory ? { memory } : {}), ...(descriptors ? { descriptors } : {}) };
  return async (request) => {
    const file = await root.resolve(rawRelativePath(request.url));
    if (!file) return errorResponse(404, "not_found", "No such file");
    // The type of the name asked for, as nginx does: a link `app.js` → `build/app-3f2a` is a
    // script, and with nosniff a browser runs nothing typed application/octet-stream.
    return serveFile(request, file.path, { ...options, contentType: contentTypeFor(file.name) }, cache);
  };
}

/** The Bun route table entry (see ./routes.ts for why); other methods get 405 with Allow. */
export function nativeStaticRoute(handler: StaticHandler) {
  return { [STATIC_ROUTE]: readOnlyRoute(STATIC_ROUTE, handler) };
}
