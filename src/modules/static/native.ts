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
 * What HTML, SVG and XML documents under /static run under (STATIC_SANDBOX): their scripts,
 * forms and popups work, in an opaque origin. The API, the pages and the owner's session share
 * Spool's origin, so a same-origin document there (a third-party page, or one with an XSS) could
 * act as the signed-in owner: list the library, mint tokens, delete videos. Sandboxed, it has no
 * cookies or storage of that origin, and its requests carry `Origin: null`, which the session's
 * CSRF check refuses; it can still play public videos and call the API with a key, as any site.
 */
export const STATIC_SANDBOX_POLICY = "sandbox allow-scripts allow-forms allow-popups allow-popups-to-escape-sandbox allow-modals allow-downloads allow-presentation";

/** Types a browser renders as a document that can run script: HTML, and XML of any kind (SVG, XHTML, a DASH manifest opened as a page). */
const DOCUMENT_TYPE = /^(?:text\/html|[\w.+-]+\/(?:[\w.-]+\+)?xml)(?:;|$)/;

export interface StaticOptions {
  /** The library's own files, never served (config.ts `libraryPaths`). */
  excluded?: readonly string[];
  /** STATIC_SANDBOX (default true): documents get STATIC_SANDBOX_POLICY. */
  sandbox?: boolean;
  /** The RAM tier the stream route uses (small files and heads of large ones). */
  memory?: MemoryTier;
  /** Its kept descriptors (short ranges past offset 0; src/files/open-files.ts). */
  descriptors?: OpenFiles;
}

export function staticHandler(staticDir: string, cacheTtlMs: number, { excluded = [], sandbox = true, memory, descriptors }: StaticOptions = {}): StaticHandler {
  const root = new StaticRoot(staticDir, cacheTtlMs, { excluded });
  const cache = new FileCache(cacheTtlMs);
  const options = { ...(memory ? { memory } : {}), ...(descriptors ? { descriptors } : {}) };
  const sandboxed = { "content-security-policy": STATIC_SANDBOX_POLICY };
  return async (request) => {
    const file = await root.resolve(rawRelativePath(request.url));
    if (!file) return errorResponse(404, "not_found", "No such file");
    // The type of the name asked for, as nginx does: a link `app.js` → `build/app-3f2a` is a
    // script, and with nosniff a browser runs nothing typed application/octet-stream.
    const contentType = contentTypeFor(file.name);
    const headers = sandbox && DOCUMENT_TYPE.test(contentType) ? { headers: sandboxed } : {};
    return serveFile(request, file.path, { ...options, contentType, ...headers }, cache);
  };
}

/** The Bun route table entry (see ./routes.ts for why); other methods get 405 with Allow. */
export function nativeStaticRoute(handler: StaticHandler) {
  return { [STATIC_ROUTE]: readOnlyRoute(STATIC_ROUTE, handler) };
}
