/**
 * A FileEntity is everything the engine needs to answer for one file, computed once: the BunFile
 * handle, size, validators and the response headers that never change between requests.
 */
import type { BunFile } from "bun";
import { contentDisposition, type DispositionType } from "../http/content-disposition.ts";
import { contentTypeFor } from "../http/content-type.ts";
import { formatHttpDate, type Validators } from "../http/conditional.ts";
import type { MemoryTier } from "./memory-tier.ts";
import type { Descriptor, OpenFiles } from "./open-files.ts";

export interface ServeOptions {
  /** Defaults to the type for the path's extension. */
  contentType?: string;
  /** The name offered to the user; with no disposition, this implies "inline". */
  filename?: string;
  disposition?: DispositionType;
  cacheControl?: string;
  /** A strong validator to use instead of the size/mtime one, e.g. from a content hash. */
  etag?: string;
  /** Unix seconds; defaults to the file's mtime. */
  lastModified?: number;
  /** Constant extra headers for every success and 304 answer (e.g. CORS with a `*` policy). */
  headers?: Readonly<Record<string, string>>;
  /** The RAM tier small answers may come from (undefined: always sendfile). */
  memory?: MemoryTier;
  /** Descriptors kept open for short ranges (undefined: Bun opens the file per answer). */
  descriptors?: OpenFiles;
}

export interface FileEntity extends Validators {
  path: string;
  file: BunFile;
  size: number;
  /** The file's mtime when stat'ed (0 when not known): the RAM tier checks it before caching. */
  mtimeMs: number;
  /** The RAM tier's key: path and tag, so a changed file (new tag) never meets old blocks. */
  memoryKey: string;
  memory: MemoryTier | undefined;
  /** See src/files/open-files.ts: the pool, and the descriptor this entity last got from it. */
  descriptors: OpenFiles | undefined;
  descriptor?: Descriptor;
  contentType: string;
  /** Content-Type, ETag, Last-Modified, Accept-Ranges, Cache-Control, nosniff, disposition. */
  headers: Readonly<Record<string, string>>;
  /**
   * `headers` as one string, made once: what is cached from this entity (clip headers) is keyed
   * on it too, so an entity with other headers for the same bytes (a video switched to signed:
   * `Cache-Control: private`) never gets what was made from the old one.
   */
  headersKey: string;
  /**
   * The same headers as a `Headers` object, for the hot path: Bun copies a `Headers` into a new
   * Response natively, about three times faster than it converts a plain object. Never mutate.
   */
  responseHeaders: Headers;
  /** For a Range that Bun's server applies itself: it adds its own Accept-Ranges then. */
  nativeRangeHeaders: Headers;
  /** What a 304 carries (§15.4.5): ETag, Cache-Control and the constant extras, no Last-Modified. */
  notModifiedHeaders: Headers;
  /**
   * The whole answer to `bytes=0-1` (Safari's probe, and many players' first request), made once
   * the RAM tier has answered it (src/files/serve.ts): undefined until then, null while made.
   */
  probe?: { body: Blob; headers: Headers } | null;
}

export const DEFAULT_CACHE_CONTROL = "public, max-age=3600";

/** nginx's ETag form: hex mtime and hex size. Cheap, and strong enough for files we don't hash. */
export function statEtag(size: number, mtimeMs: number): string {
  return `"${Math.floor(mtimeMs / 1000).toString(16)}-${size.toString(16)}"`;
}

export function makeEntity(path: string, size: number, mtimeMs: number, options: ServeOptions = {}): FileEntity {
  const etag = options.etag ?? statEtag(size, mtimeMs);
  // Never in the future (§8.8.2.1: a clock set wrong, a file from elsewhere): now instead.
  const lastModified = Math.min(options.lastModified ?? Math.floor(mtimeMs / 1000), Math.floor(Date.now() / 1000));
  const contentType = options.contentType ?? contentTypeFor(path);
  const cacheControl = options.cacheControl ?? DEFAULT_CACHE_CONTROL;
  // §15.4.5: a 304 repeats ETag and Cache-Control; Last-Modified is only for tag-less answers,
  // and every entity here has a tag (as Go's http.ServeContent does).
  const notModified = { etag, "cache-control": cacheControl, ...options.headers };
  const headers: Record<string, string> = {
    "content-type": contentType,
    "accept-ranges": "bytes",
    etag,
    "last-modified": formatHttpDate(lastModified),
    "cache-control": cacheControl,
    ...options.headers,
    "x-content-type-options": "nosniff",
  };
  // Always name a disposition: Bun otherwise invents one from the storage file name on ranges.
  headers["content-disposition"] = contentDisposition(options.disposition ?? "inline", options.filename);
  return {
    path,
    file: Bun.file(path),
    size,
    mtimeMs,
    memoryKey: `${path}\0${etag}`,
    memory: options.memory,
    descriptors: options.descriptors,
    etag,
    lastModified,
    contentType,
    headers,
    headersKey: JSON.stringify(headers),
    responseHeaders: new Headers(headers),
    nativeRangeHeaders: withoutHeader(headers, "accept-ranges"),
    notModifiedHeaders: new Headers(notModified),
  };
}

/**
 * The key under which a cache of entities keeps the one made for `path` with `options`: every
 * option that shapes the answer's headers or validators is in it, so a cached entity never
 * answers for another variant of the same file (a poster fetched while its video was public must
 * not keep `Cache-Control: public` once it is signed). It begins with `path`, so forgetting by a
 * path prefix forgets every variant. Pure.
 */
export function variantKey(path: string, options: ServeOptions): string {
  const { contentType = "", filename = "", disposition = "", cacheControl = "", etag = "", lastModified = "", headers } = options;
  return `${path}\0${contentType}\0${filename}\0${disposition}\0${cacheControl}\0${etag}\0${lastModified}\0${headers ? JSON.stringify(headers) : ""}`;
}

function withoutHeader(headers: Record<string, string>, name: string): Headers {
  const copy = new Headers(headers);
  copy.delete(name);
  return copy;
}
