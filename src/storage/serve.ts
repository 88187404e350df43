/**
 * The HTTP answers for media in a bucket (STORAGE=s3): the same decisions as the file engine
 * (src/files/serve.ts, the pure modules of src/http: preconditions, ranges, multipart), with the
 * bytes from the BlockCache instead of a file under DATA_DIR.
 *
 * - `proxy` (S3_DELIVERY default): a range inside one cached block (every seek, every probe,
 *   every HLS segment and JPEG under 2 MiB) goes out as `Bun.file(block).slice()`, i.e. with
 *   sendfile and a Content-Length, like a local file (the block is not evicted before Bun opens
 *   it: see block-cache.ts; a block the cache had no room to keep goes out from memory, with the
 *   same Content-Length). A range over several blocks is streamed
 *   from the block files as they are filled, chunked: Bun 1.4.5 drops a handler's
 *   Content-Length on a stream body (oven-sh/bun#10507). The first block is fetched before the
 *   status is sent, so a bucket that cannot answer gets a 503 JSON error; one that fails later
 *   makes the stream error, and Bun resets the connection (no terminating chunk): a client
 *   never takes a short body for a complete one.
 * - `redirect`: a GET that would be a 200 or a single-range 206 is a 302 to a presigned URL of
 *   the object, valid REDIRECT_EXPIRES_IN seconds; the client repeats its Range there. Everything
 *   Spool can decide without the bytes it still answers itself: HEAD, 304, 412, 416, tokens.
 *   Multipart ranges (which S3 does not do) and an If-Range that no longer matches are proxied.
 *
 * - The RAM tier (MEMORY_CACHE_BYTES, src/files/memory-tier.ts) sits in front of the block
 *   cache for videos (entities made with `memory`): RAM, then disk, then the bucket. A small
 *   answer inside one held block is a slice of that block's Blob, with the same status, headers
 *   and bytes as the block-file slice it replaces; a miss goes on to the block cache as before,
 *   and the tier fills in the background from the block files (`tierLoader`), never with a bucket
 *   GET of its own. Multipart parts and clip media read held blocks too. Answers that are
 *   streamed from several disk blocks stay on the block cache (their framing is chunked; a
 *   Blob's would not be), and so do redirects.
 *
 * Entities are made once (from the database row, or a HEAD of the object for HLS files and
 * images, cached `ttlMs`), so a hot request costs no round trip to the bucket.
 */
import { mkdir, open, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { evaluatePreconditions, ifRangeAllows } from "../http/conditional.ts";
import { errorResponse, httpErrorResponse, methodNotAllowed, preconditionFailed } from "../http/errors.ts";
import { layoutMultipart, makeBoundary, multipartContentType } from "../http/multipart.ts";
import { contentRange, DEFAULT_RANGE_LIMITS, planRange, unsatisfiedRange, type ByteRange } from "../http/range.ts";
import { makeEntity, variantKey, type FileEntity, type ServeOptions } from "../files/entity.ts";
import type { TierLoader } from "../files/memory-tier.ts";
import { hot } from "../metrics/metrics.ts";
import type { ClipMedia } from "../files/clip.ts";
import type { BlockCache, CachedObject, Piece } from "./block-cache.ts";
import { blockOf } from "./blocks.ts";
import { StorageUnavailable, type ObjectStore } from "./object-store.ts";
import { storageErrorResponse } from "./error-response.ts";
import { REDIRECT_EXPIRES_IN } from "./index.ts";

/** A FileEntity whose bytes are an object in the bucket (`path` is its key; `file` is never read). */
export interface ObjectEntity extends FileEntity {
  object: CachedObject;
  /** With a RAM tier: how it reads the object's blocks (from the block cache). */
  load?: TierLoader;
}

export type Delivery = "proxy" | "redirect";

/** A single range in the form every S3-compatible server reads alike (see the redirect below). */
const BUCKET_RANGE = /^bytes=\d{1,15}-\d{0,15}$/;

const encoder = new TextEncoder();
/** Bytes of a block file read per chunk of a streamed range (see blockStream). */
const READ_CHUNK = 256 * 1024;

interface Slot {
  entity: ObjectEntity;
  expires: number;
}

export class ObjectServer {
  private readonly slots = new Map<string, Slot>();

  constructor(
    readonly store: ObjectStore,
    readonly cache: BlockCache,
    readonly delivery: Delivery = "proxy",
    /** How long a HEAD of an object (`lookup`) is trusted. */
    private readonly ttlMs = 1000,
    private readonly maxEntries = 10_000,
  ) {}

  init(): Promise<void> {
    return this.cache.init();
  }

  /**
   * The entity for an object whose size and identity are known (a ready video's row). With
   * `options.memory` the RAM tier fronts it: its key is the entity's `memoryKey` (key and strong
   * ETag, the content hash), its blocks are read from this block cache (`tierLoader`).
   */
  entity(key: string, size: number, identity: string, mtimeMs: number, options: ServeOptions = {}): ObjectEntity {
    const object = { key, identity, size };
    const entity: ObjectEntity = { ...makeEntity(key, size, mtimeMs, options), object };
    if (entity.memory !== undefined) entity.load = this.tierLoader(object);
    return entity;
  }

  /**
   * How the RAM tier reads a block of `object`: through the block cache. The block's own bytes
   * come from the disk block that holds them: cached, or being fetched for the request that
   * missed (the cache fetches a block once however many ask), so the tier never costs a second
   * bucket GET. Its overlap (the next block's first bytes) is taken only from disk blocks already
   * cached: the tier never fetches ahead of what was asked.
   */
  private tierLoader(object: CachedObject): TierLoader {
    return async (start, end, least) => {
      const bs = this.cache.blockSize;
      let upTo = end;
      for (let index = blockOf(least - 1, bs) + 1; index * bs < end; index++) {
        if (!this.cache.holds(object, index)) {
          upTo = index * bs;
          break;
        }
      }
      return new Uint8Array(await new Response(this.cache.stream(object, { start, end: upTo - 1 })).arrayBuffer());
    };
  }

  /**
   * The entity of an object known only by its key (HLS files, posters, thumbnails): a HEAD,
   * cached `ttlMs`; undefined when there is no such object. Its tag is the bucket's (the bytes'
   * MD5 for single-part puts), so a rebuilt ladder gets new tags and new cache blocks. Each set
   * of options has its own entry (`variantKey`), as in FileCache.
   */
  async lookup(key: string, options: ServeOptions = {}): Promise<ObjectEntity | undefined> {
    const slotKey = variantKey(key, options);
    const now = Date.now();
    const slot = this.slots.get(slotKey);
    if (slot && slot.expires > now) return slot.entity;
    const info = await this.store.stat(key);
    if (!info) {
      this.slots.delete(slotKey);
      return undefined;
    }
    const mtimeMs = info.lastModified?.getTime() ?? 0;
    const tag = info.etag?.replace(/^W\//, "").replaceAll('"', "") || `${Math.floor(mtimeMs / 1000).toString(16)}-${info.size.toString(16)}`;
    const entity = this.entity(key, info.size, tag, mtimeMs, { etag: `"${tag}"`, ...options });
    if (!slot && this.slots.size >= this.maxEntries) this.slots.delete(this.slots.keys().next().value!);
    this.slots.set(slotKey, { entity, expires: now + this.ttlMs });
    return entity;
  }

  /** Drops cached lookups whose key starts with `prefix` ("" for all). */
  forget(prefix: string): void {
    for (const key of this.slots.keys()) if (key.startsWith(prefix)) this.slots.delete(key);
  }

  /**
   * A whole GET or HEAD: preconditions, then the body (as `serveEntity` for files). Always
   * proxied, whatever S3_DELIVERY says: this serves HLS files and pictures, which pages and
   * players fetch from Spool's own origin (relative playlist URIs, the pages' CSP); only the
   * stream route's video bytes (`body`) are redirected.
   */
  serve(request: Request, entity: FileEntity): Response | Promise<Response> {
    const method = request.method;
    if (method !== "GET" && method !== "HEAD") return methodNotAllowed(method, "here", "GET, HEAD");
    const outcome = evaluatePreconditions(method, request.headers, entity);
    if (outcome === "not-modified") return new Response(null, { status: 304, headers: entity.notModifiedHeaders });
    if (outcome === "failed") return httpErrorResponse(preconditionFailed());
    return this.body(request, entity, "proxy");
  }

  /**
   * For a GET or HEAD whose preconditions passed (as `serveBody`): the whole object, a range,
   * ranges, 416, or (redirect delivery) a 302. Storage failures become JSON errors.
   */
  body(request: Request, given: FileEntity, delivery: Delivery = this.delivery): Response | Promise<Response> {
    const entity = given as ObjectEntity;
    const method = request.method;
    const headers = request.headers;
    const size = entity.size;
    const rangeHeader = headers.get("range");
    const plan = rangeHeader === null ? ({ kind: "full" } as const) : ifRangeAllows(headers, entity) ? planRange(rangeHeader, size, DEFAULT_RANGE_LIMITS) : ({ kind: "full" } as const);

    if (plan.kind === "unsatisfiable") {
      return errorResponse(416, "range_not_satisfiable", `No requested range is satisfiable for ${size} bytes`, {
        "content-range": unsatisfiedRange(size),
        "accept-ranges": "bytes",
      });
    }
    if (plan.kind === "full") {
      if (method === "HEAD" || size === 0) return withLength(new Response(null, { headers: entity.responseHeaders }), size);
      // A redirect repeats the request's Range at the bucket: only when there is none to ignore.
      if (delivery === "redirect" && rangeHeader === null) return this.redirect(entity);
      hot.fileBytes += size;
      const whole = { start: 0, end: size - 1 };
      if (rangeHeader === null) {
        const held = this.fromMemory(entity, whole);
        if (held !== undefined) return new Response(held, { headers: entity.responseHeaders });
      }
      return this.send(entity, whole, 200, rangeHeader !== null);
    }
    const ranges = plan.ranges;
    if (ranges.length === 1) {
      const r = ranges[0]!;
      if (method === "HEAD") {
        const response = withLength(new Response(null, { status: 206, headers: entity.responseHeaders }), r.end - r.start + 1);
        response.headers.set("content-range", contentRange(r, size));
        return response;
      }
      // The bucket gets the request's own Range: only one every bucket answers as this range, the
      // plain `bytes=a-b` or `bytes=a-`. Several ranges merged into one (`bytes=0-1,5-9`) are not:
      // S3 serves no multi-range, and s3rver answers one with the whole object from the first
      // offset; nor is a suffix (s3rver answered `bytes=-500` with bytes 0-500), nor other spellings.
      if (delivery === "redirect" && rangeHeader !== null && BUCKET_RANGE.test(rangeHeader)) return this.redirect(entity);
      hot.fileBytes += r.end - r.start + 1;
      const held = this.fromMemory(entity, r);
      if (held !== undefined) {
        const response = new Response(held, { status: 206, headers: entity.responseHeaders });
        response.headers.set("content-range", contentRange(r, size));
        return response;
      }
      return this.send(entity, r, 206, false);
    }
    const boundary = makeBoundary();
    const layout = layoutMultipart(ranges, size, entity.contentType, boundary);
    const multipartHeaders = { ...entity.headers, "content-type": multipartContentType(boundary) };
    if (method === "HEAD") return new Response(null, { status: 206, headers: { ...multipartHeaders, "content-length": String(layout.length) } });
    const parts: (string | ByteRange)[] = [];
    ranges.forEach((r, i) => parts.push(layout.heads[i]!, r));
    parts.push(layout.tail);
    for (const r of ranges) hot.fileBytes += r.end - r.start + 1;
    const first = ranges[0]!;
    // The first part held in memory: nothing to warm (the bucket may be down meanwhile).
    const held = this.partFromMemory(entity, first);
    if (held !== undefined) return new Response(this.partsStream(entity, parts, held), { status: 206, headers: multipartHeaders });
    return this.warm(entity, first).then(
      () => new Response(this.partsStream(entity, parts, null), { status: 206, headers: multipartHeaders }),
      storageErrorResponse,
    );
  }

  /**
   * A single answer's bytes from the RAM tier, as `serveBody` takes them: at most
   * `maxAnswerBytes` in one held block, and (here) in one disk block, where the block cache
   * would send a block-file slice with the same Content-Length. Undefined on a miss (counted,
   * and the fills it earns started) or when the tier is not asked. Larger answers note the
   * video as served (its head is loaded the first time).
   */
  private fromMemory(entity: ObjectEntity, range: ByteRange): Blob | undefined {
    const memory = entity.memory;
    if (memory === undefined) return undefined;
    if (range.end - range.start >= memory.maxAnswerBytes) {
      memory.touch(entity);
      return undefined;
    }
    const bs = this.cache.blockSize;
    if (Math.floor(range.start / bs) !== Math.floor(range.end / bs)) return undefined;
    return memory.read(entity, range.start, range.end);
  }

  /** A multipart part's (or clip media range's) bytes from the RAM tier, across its blocks: up to `maxAnswerBytes`. */
  private partFromMemory(entity: FileEntity, range: ByteRange): Blob | undefined {
    const memory = entity.memory;
    if (memory === undefined || range.end - range.start >= memory.maxAnswerBytes) return undefined;
    return memory.read(entity, range.start, range.end, true);
  }

  /** A range's bytes as a stream: from held RAM blocks when the tier has them all, else from the block cache. */
  private rangeStream(entity: ObjectEntity, range: ByteRange): ReadableStream<Uint8Array> {
    const held = this.partFromMemory(entity, range);
    return held !== undefined ? blobStream(held) : this.blockStream(entity.object, range);
  }

  /**
   * The origin presigned URLs point at (S3_DELIVERY=redirect), for the pages' CSP: a player
   * page's `<video>` follows the stream's 302 there.
   */
  mediaOrigin(): string | undefined {
    const url = this.store.presign("spool-origin-probe", { expiresIn: 60 });
    return url === null ? undefined : new URL(url).origin;
  }

  /** A 302 to a presigned URL of the object; the download variant names the file there too. */
  private redirect(entity: ObjectEntity): Response {
    const disposition = entity.headers["content-disposition"]!;
    const location = this.store.presign(entity.object.key, {
      expiresIn: REDIRECT_EXPIRES_IN,
      ...(disposition.startsWith("attachment") ? { contentDisposition: disposition } : {}),
    });
    if (location === null) return storageErrorResponse(new StorageUnavailable("this store cannot presign", "presign"));
    const headers: Record<string, string> = { location, "cache-control": "private, no-store" };
    // The constant extras (CORS for a `*` policy): a fetch() player follows the redirect only if it may read it.
    for (const name in entity.headers) if (name.startsWith("access-control-")) headers[name] = entity.headers[name]!;
    return new Response(null, { status: 302, headers });
  }

  /**
   * Fills the block holding the range's first byte (so failures are known before the status):
   * the range's first piece. A block file it names is not evicted, by this process or another,
   * for the cache's `minAgeMs` (6 s) after this use, so Bun opens it long before it could go (see
   * block-cache.ts); a block that could not be kept comes with its bytes.
   */
  private async warm(entity: ObjectEntity, range: ByteRange): Promise<Piece> {
    const blockEnd = (Math.floor(range.start / this.cache.blockSize) + 1) * this.cache.blockSize - 1;
    const [piece] = await this.cache.pieces(entity.object, { start: range.start, end: Math.min(range.end, blockEnd) });
    return piece!;
  }

  /** One range: a block-file slice (sendfile) when it lies in one block, else a stream of the blocks. */
  private async send(entity: ObjectEntity, range: ByteRange, status: 200 | 206, hasRange: boolean): Promise<Response> {
    let first: Piece;
    try {
      first = await this.warm(entity, range);
    } catch (error) {
      return storageErrorResponse(error);
    }
    const length = range.end - range.start + 1;
    const inBlock = Math.floor(range.start / this.cache.blockSize) === Math.floor(range.end / this.cache.blockSize);
    // A file-backed 200 would have the request's Range applied again by Bun (see serve.ts).
    let response: Response;
    if (inBlock && !(status === 200 && hasRange)) {
      // The block file (sendfile), or the block's bytes when the cache had no room to keep it:
      // the same status, headers and Content-Length either way.
      const body = first.bytes ? first.bytes.subarray(first.offset, first.offset + length) : Bun.file(first.path).slice(first.offset, first.offset + length);
      response = new Response(body, { status, headers: entity.responseHeaders });
    } else {
      response = new Response(this.blockStream(entity.object, range, first), { status, headers: entity.responseHeaders });
    }
    if (status === 206) response.headers.set("content-range", contentRange(range, entity.size));
    return response;
  }

  /**
   * The bytes of a range over several blocks, read from the cached block files READ_CHUNK at a
   * time: a slow reader's connection then holds at most that much (a whole 2 MiB block per read
   * made 1,000 slow readers hold 2 GiB, found in review). A block evicted by another process
   * between its fill and a read is read again through `cache.stream`, which fetches it anew.
   * Errors instead of ending short.
   */
  private blockStream(object: CachedObject, range: ByteRange, first?: Piece): ReadableStream<Uint8Array> {
    const pieces = this.cache.iterate(object, range, first);
    const cache = this.cache;
    let piece: Piece | undefined;
    let sent = 0;
    return new ReadableStream<Uint8Array>(
      {
        async pull(out) {
          if (piece === undefined || sent === piece.length) {
            const next = await pieces.next();
            if (next.done) return out.close();
            piece = next.value;
            sent = 0;
          }
          const offset = piece.offset + sent;
          const length = Math.min(READ_CHUNK, piece.length - sent);
          let bytes: Uint8Array;
          try {
            // A block not kept (no room in the cache) is in memory: no copy, no file.
            bytes = piece.bytes ? piece.bytes.subarray(offset, offset + length) : new Uint8Array(await Bun.file(piece.path).slice(offset, offset + length).arrayBuffer());
          } catch {
            const index = Number(piece.path.slice(piece.path.lastIndexOf(".") + 1));
            const start = index * cache.blockSize + offset;
            bytes = new Uint8Array(await new Response(cache.stream(object, { start, end: start + length - 1 })).arrayBuffer());
          }
          if (bytes.byteLength !== length) throw new StorageUnavailable(`cache block ${piece.path} gave ${bytes.byteLength} bytes at ${offset}, expected ${length}`, "read");
          sent += length;
          out.enqueue(bytes);
        },
        async cancel() {
          await pieces.return(undefined);
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * multipart/byteranges: the part heads, and each range's bytes from the RAM tier or the cache.
   * `first`: the first range's bytes, already looked up in the tier (null: it missed).
   */
  private partsStream(entity: ObjectEntity, parts: (string | ByteRange)[], first: Blob | null): ReadableStream<Uint8Array> {
    let index = 0;
    let current: ReadableStreamDefaultReader<Uint8Array> | null = null;
    let looked = false;
    return new ReadableStream<Uint8Array>(
      {
        pull: async (out) => {
          for (;;) {
            if (current) {
              const chunk = await current.read();
              if (!chunk.done) return out.enqueue(chunk.value);
              current = null;
            }
            const part = parts[index++];
            if (part === undefined) return out.close();
            if (typeof part === "string") return out.enqueue(encoder.encode(part));
            if (!looked) {
              looked = true;
              current = (first !== null ? blobStream(first) : this.blockStream(entity.object, part)).getReader();
            } else current = this.rangeStream(entity, part).getReader();
          }
        },
        cancel: async () => {
          await current?.cancel().catch(() => {});
        },
      },
      { highWaterMark: 0 },
    );
  }

  /**
   * An object video's bytes for MP4 clips (src/files/clip.ts): its `moov` is read, and the clip's
   * media ranges streamed, through the block cache. Undefined for an entity that is not an object.
   */
  clipMedia(entity: FileEntity): ClipMedia | undefined {
    const object = (entity as Partial<ObjectEntity>).object;
    if (!object) return undefined;
    const source = entity as ObjectEntity;
    return {
      // The moov (at the head of a faststart file) is usually in the tier already.
      read: async (offset, length) => {
        const end = Math.min(object.size, offset + length) - 1;
        if (end < offset) return new Uint8Array(0);
        const held = this.partFromMemory(source, { start: offset, end });
        if (held !== undefined) return new Uint8Array(await held.arrayBuffer());
        return new Uint8Array(await new Response(this.cache.stream(object, { start: offset, end })).arrayBuffer());
      },
      // Streamed either way, so a clip's framing does not depend on the tier.
      stream: (range) => this.rangeStream(source, range),
    };
  }

  /** The whole object as text (playlists to sign), through the cache. */
  async text(entity: FileEntity): Promise<string> {
    const object = (entity as ObjectEntity).object;
    if (object.size === 0) return "";
    return new Response(this.cache.stream(object, { start: 0, end: object.size - 1 })).text();
  }

  /**
   * Copies a whole object to a local file through the cache (ffmpeg needs a file: on-demand
   * thumbnails). The blocks stay cached, as the video is probably being watched.
   */
  async download(object: CachedObject, path: string): Promise<void> {
    await mkdir(dirname(path), { recursive: true });
    const file = await open(path, "w");
    try {
      if (object.size > 0) for await (const chunk of this.cache.stream(object, { start: 0, end: object.size - 1 })) await file.write(chunk);
    } catch (error) {
      await file.close();
      await rm(path, { force: true });
      throw error;
    }
    await file.close();
  }
}

/**
 * A Blob's bytes as a one-chunk pull stream (for bodies that are streams either way: multipart,
 * clip media), read only when the body gets that far.
 */
function blobStream(blob: Blob): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(out) {
        out.enqueue(new Uint8Array(await blob.arrayBuffer()));
        out.close();
      },
    },
    { highWaterMark: 0 },
  );
}

/** Content-Length for a body-less answer (HEAD): what the GET would send. */
function withLength(response: Response, length: number): Response {
  response.headers.set("content-length", String(length));
  return response;
}
