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
  /** A strong validator to use instead of the stat one (`statEtag`), e.g. from a content hash. */
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

/** What a stat says about a file beyond size and mtime: which inode, and when it last changed. */
export interface FileIdentity {
  ino: number;
  ctimeMs: number;
}

/**
 * The strong validator of a file we don't hash: hex size, then a digest of mtime and ctime at
 * full precision (Node's float milliseconds, to about 0.1 µs) and the inode. Not nginx's
 * whole-second mtime and size: Spool keeps bytes in RAM under path + ETag (`memoryKey`), so a
 * same-size rewrite within the second, or under a pinned mtime (cp -p, builds that fix mtimes),
 * would be served stale from memory forever. ctime moves on every write, rename or chmod and
 * cannot be set back; the inode changes when a file is replaced by rename. All are stable
 * across restarts for an unchanged file (not across servers: each copy has its own ctime).
 * Pure; sha256 rather than Bun.hash, so the tag cannot change with a Bun upgrade.
 */
export function statEtag(size: number, mtimeMs: number, identity: FileIdentity = { ino: 0, ctimeMs: 0 }): string {
  const digest = new Bun.CryptoHasher("sha256").update(`${mtimeMs}:${identity.ctimeMs}:${identity.ino}`).digest("hex");
  return `"${size.toString(16)}-${digest.slice(0, 16)}"`;
}

/** `identity`: from the stat, when there is one; it goes into the ETag unless `options.etag` is given. */
export function makeEntity(path: string, size: number, mtimeMs: number, options: ServeOptions = {}, identity?: FileIdentity): FileEntity {
  const etag = options.etag ?? statEtag(size, mtimeMs, identity);
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
