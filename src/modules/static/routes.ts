/** Every file under STATIC_DIR at /static/..., through the same file engine as the stream route. */
import { Elysia } from "elysia";
import { FileCache } from "../../files/cache.ts";
import type { MemoryTier } from "../../files/memory-tier.ts";
import { serveFile } from "../../files/send-file.ts";
import { errorResponse } from "../../http/errors.ts";
import { StaticRoot } from "./resolve.ts";

const PREFIX = "/static/";

/** The still-encoded path after /static/, taken from the raw URL so it is decoded only once. */
function rawRelativePath(url: string): string {
  const start = url.indexOf(PREFIX, url.indexOf("//") + 2);
  const end = url.search(/[?#]/);
  return url.slice(start + PREFIX.length, end < 0 ? undefined : end);
}

/** `memory`: the RAM tier the stream route uses (small files and heads of large ones). */
export function staticRoutes(staticDir: string, cacheTtlMs: number, memory?: MemoryTier) {
  const root = new StaticRoot(staticDir, cacheTtlMs);
  const cache = new FileCache(cacheTtlMs);
  const options = memory ? { memory } : {};
  return new Elysia({ name: "spool.static" }).get(
    "/static/*",
    async ({ request }) => {
      const path = await root.resolve(rawRelativePath(request.url));
      if (!path) return errorResponse(404, "not_found", "No such file");
      return serveFile(request, path, options, cache);
    },
    { detail: { summary: "A file from STATIC_DIR, with range and conditional support" } },
  );
}
