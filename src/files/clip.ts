/**
 * Clips: a representation made of bytes held in memory (a rewritten MP4 header) followed by a
 * slice of a file. The engine answers for it exactly as for a file (ranges, multipart,
 * validators, HEAD), mapping each requested range onto the header, the file, or both.
 *
 * The file's bytes never pass through JavaScript when a range lies inside the file slice: that
 * is a `BunFile` slice, sent with sendfile(2). Ranges that span the header and the file (the
 * whole clip, `bytes=0-`) and multipart answers go through a bounded pull stream, as the file
 * engine's own multipart answers do (see `streamSlices` in serve.ts for why).
 *
 * With a ClipStore (CLIP_CACHE_BYTES), a clip that fits is also written once to a file of its
 * own (clip-store.ts); from then on the plain file engine answers for it (`serveEntity`): the
 * whole clip with sendfile and a Content-Length, ranges by Bun's range code, the same headers.
 */
import type { BunFile } from "bun";
import { evaluatePreconditions, ifRangeAllows, type Validators } from "../http/conditional.ts";
import { contentDisposition, type DispositionType } from "../http/content-disposition.ts";
import { HttpError, errorResponse, httpErrorResponse, methodNotAllowed, preconditionFailed } from "../http/errors.ts";
import { layoutMultipart, makeBoundary, multipartContentType } from "../http/multipart.ts";
import { DEFAULT_RANGE_LIMITS, contentRange, planRange, unsatisfiedRange, type ByteRange } from "../http/range.ts";
import { ClipRangeError, planClip, writeClip, type ClipLayout } from "../media/mp4/clip.ts";
import { Mp4Error } from "../media/mp4/boxes.ts";
import { DEFAULT_MAX_MOOV_BYTES, fileBytes, readMovie, type MovieFile, type MovieReader } from "../media/mp4/file.ts";
import { hot } from "../metrics/metrics.ts";
import { BoundedWork, type BoundedWorkLimits } from "../lib/bounded-work.ts";
import { ByteCache } from "./byte-cache.ts";
import type { ClipStore } from "./clip-store.ts";
import { serveEntity, type EngineOptions } from "./serve.ts";
import type { FileEntity } from "./entity.ts";

/** Seconds; `end` undefined means "to the end". */
export interface ClipInterval {
  start: number;
  end?: number;
}

export interface ClipEntity extends Validators {
  path: string;
  file: BunFile;
  /** The clip's first bytes. */
  head: Uint8Array;
  /** The file the media bytes come from (its RAM tier blocks serve small ranges too). */
  base: FileEntity;
  /** Then the file's bytes [dataStart, dataEnd). */
  dataStart: number;
  dataEnd: number;
  size: number;
  contentType: string;
  /** Where the clip starts and ends in the source, seconds (the start snapped to the frame shown there). */
  start: number;
  end: number;
  headers: Readonly<Record<string, string>>;
  responseHeaders: Headers;
  notModifiedHeaders: Headers;
  /** Where the media bytes come from when they are not a local file (an object in a bucket). */
  media?: ClipMedia;
  /** The store that keeps clips as files (CLIP_CACHE_BYTES); undefined: always streamed. */
  store?: ClipStore;
  /** Set by the store once the clip's bytes are a complete file of their own: answered from it. */
  stored?: FileEntity;
  /** Bytes this process has streamed of it (the store keeps a clip once they reach its size). */
  streamed?: number;
}

/**
 * The source's bytes for a clip whose base is not a local file (STORAGE=s3: an object read
 * through its block cache). Bytes come as a stream, which ends in error rather than short.
 */
export interface ClipMedia {
  read: MovieReader;
  stream(range: ByteRange): ReadableStream<Uint8Array>;
}

/** The clip's tag: the file's tag and the interval, so it changes with either. */
export function clipEtag(fileEtag: string, interval: ClipInterval): string {
  const opaque = fileEtag.replace(/^W\//, "").slice(1, -1);
  return `"${opaque}.${interval.start}-${interval.end ?? ""}"`;
}

/** Extensions of the ISO BMFF family: clips are cut from them, and a clip keeps its source's (its `ftyp` is the source's). */
const CLIP_EXTENSION = /^(mp4|m4v|mov|m4a|3gp)$/i;

/**
 * `Title 12.5-20s.mp4`, or `Title 12.5s-end.mp4` without an end: the name says the interval.
 * The source's extension when it is one of the family (a MOV's clip is QuickTime too), else `.mp4`.
 */
export function clipFilename(name: string, interval: ClipInterval): string {
  const dot = name.lastIndexOf(".");
  const base = dot > 0 ? name.slice(0, dot) : name;
  const extension = dot > 0 && CLIP_EXTENSION.test(name.slice(dot + 1)) ? name.slice(dot + 1) : "mp4";
  const span = interval.end === undefined ? `${interval.start}s-end` : `${interval.start}-${interval.end}s`;
  return `${base} ${span}.${extension}`;
}

/** ISO BMFF media types a clip keeps: it is the source's kind of file (`ftyp` and all). */
const CLIP_TYPE = /^(?:video|audio)\/(?:mp4|quicktime|x-m4v|3gpp)\b/;

/** A clip's media type: the source's (QuickTime for a MOV, audio/mp4 for sound alone), else video/mp4. */
export function clipContentType(source: string): string {
  return CLIP_TYPE.test(source) ? source : "video/mp4";
}

export interface ClipVariant {
  disposition?: DispositionType;
  filename?: string;
}

/**
 * The entity for `layout` cut from the file `base` serves: its headers (Cache-Control, CORS
 * extras, Last-Modified) are kept; type, tag and disposition are the clip's.
 */
export function makeClipEntity(base: FileEntity, layout: ClipLayout, interval: ClipInterval, variant: ClipVariant = {}): ClipEntity {
  const etag = clipEtag(base.etag, interval);
  const contentType = clipContentType(base.contentType);
  const headers: Record<string, string> = {
    ...base.headers,
    "content-type": contentType,
    etag,
    "content-disposition": contentDisposition(variant.disposition ?? "inline", variant.filename),
  };
  const notModified: Record<string, string> = {};
  for (const name of base.notModifiedHeaders.keys()) notModified[name] = base.notModifiedHeaders.get(name)!;
  notModified.etag = etag;
  return {
    path: base.path,
    file: base.file,
    head: layout.header,
    base,
    dataStart: layout.dataStart,
    dataEnd: layout.dataEnd,
    size: layout.size,
    contentType,
    start: layout.start,
    end: layout.end,
    etag,
    lastModified: base.lastModified,
    headers,
    responseHeaders: new Headers(headers),
    notModifiedHeaders: new Headers(notModified),
  };
}

type Piece = string | Uint8Array | ByteRange;
const CHUNK = 256 * 1024;
const encoder = new TextEncoder();

/** The clip's bytes [start, end] (inclusive) as header bytes and/or a file range. */
export function clipPieces(clip: ClipEntity, range: ByteRange): (Uint8Array | ByteRange)[] {
  const headLength = clip.head.length;
  const pieces: (Uint8Array | ByteRange)[] = [];
  if (range.start < headLength) pieces.push(clip.head.subarray(range.start, Math.min(range.end + 1, headLength)));
  if (range.end >= headLength) {
    const from = Math.max(range.start, headLength) - headLength + clip.dataStart;
    pieces.push({ start: from, end: range.end - headLength + clip.dataStart });
  }
  return pieces;
}

/**
 * The first media range's stream with its first chunk already read, for media that is not a
 * local file (a bucket): a source that cannot answer then fails the request before its status is
 * sent (a JSON 503, as `ObjectServer.send` does for the plain stream), instead of a 200 followed
 * by a reset connection.
 */
interface PrimedMedia {
  reader: ReadableStreamDefaultReader<Uint8Array>;
  first: Bun.ReadableStreamDefaultReadResult<Uint8Array>;
}

async function primeMedia(media: ClipMedia, range: ByteRange): Promise<PrimedMedia> {
  const reader = media.stream(range).getReader();
  return { reader, first: await reader.read() };
}

/**
 * A pull stream over text, memory and file ranges, at most CHUNK bytes of file at a time.
 * `primed`: the first media range's reader, already started (clip.media only).
 */
function streamPieces(clip: ClipEntity, pieces: Piece[], primed?: PrimedMedia): ReadableStream<Uint8Array> {
  let index = 0;
  let offset = -1;
  // Media not in a local file: each range is the source's own stream, read to its end.
  let media: ReadableStreamDefaultReader<Uint8Array> | null = null;
  const store = clip.store;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // What the client pulls counts towards keeping the clip as a file (ClipStore.streamed).
        const send = (bytes: Uint8Array): void => {
          store?.streamed(clip, bytes.byteLength);
          controller.enqueue(bytes);
        };
        if (media) {
          const chunk = await media.read();
          if (!chunk.done) return send(chunk.value);
          media = null;
          index++;
        }
        const piece = pieces[index];
        if (piece === undefined) return controller.close();
        if (typeof piece === "string") {
          index++;
          return send(encoder.encode(piece));
        }
        if (piece instanceof Uint8Array) {
          index++;
          return send(piece);
        }
        if (clip.media) {
          let chunk: Bun.ReadableStreamDefaultReadResult<Uint8Array>;
          if (primed) {
            ({ reader: media, first: chunk } = primed);
            primed = undefined;
          } else {
            media = clip.media.stream(piece).getReader();
            chunk = await media.read();
          }
          if (!chunk.done) return send(chunk.value);
          media = null;
          index++;
          return;
        }
        if (offset < 0) offset = piece.start;
        const end = Math.min(offset + CHUNK, piece.end + 1);
        const bytes = new Uint8Array(await (clip.base.memory?.read(clip.base, offset, end - 1, true) ?? clip.file.slice(offset, end)).arrayBuffer());
        // A file that shrank must end the body in error, never as a short but "complete" one.
        if (bytes.byteLength !== end - offset) return controller.error(new Error(`short read from ${clip.path}`));
        send(bytes);
        offset = end;
        if (offset > piece.end) {
          index++;
          offset = -1;
        }
      },
      async cancel() {
        await (media ?? primed?.reader)?.cancel().catch(() => {});
      },
    },
    { highWaterMark: 0 },
  );
}

/** One range of the clip as a body: a file slice (sendfile) or memory when it lies in one part. */
function rangeBody(clip: ClipEntity, pieces: (Uint8Array | ByteRange)[], primed?: PrimedMedia): BodyInit {
  if (pieces.length === 1) {
    const only = pieces[0]!;
    if (only instanceof Uint8Array) return only as Uint8Array<ArrayBuffer>;
    if (clip.media) return streamPieces(clip, pieces, primed);
    const memory = clip.base.memory;
    if (memory !== undefined && only.end - only.start < memory.maxAnswerBytes) {
      const bytes = memory.read(clip.base, only.start, only.end);
      if (bytes !== undefined) return bytes;
    }
    return clip.file.slice(only.start, only.end + 1);
  }
  return streamPieces(clip, pieces, primed);
}

/**
 * Answers for a clip. A Promise only when the body reads media that is not a local file: its
 * first chunk is read before the status is committed (a rejection is the source's error, for
 * the caller's error mapping: 503 for a bucket that cannot answer).
 */
export function serveClipEntity(request: Request, clip: ClipEntity, options: EngineOptions = {}): Response | Promise<Response> {
  // Kept as a file: the file engine answers, same headers. Otherwise it streams (and what it
  // streams counts towards keeping it, ClipStore.streamed).
  const stored = clip.store?.entityFor(clip);
  if (stored !== undefined) return serveEntity(request, stored, options);
  const method = request.method;
  if (method !== "GET" && method !== "HEAD") {
    return methodNotAllowed(method, "here", "GET, HEAD");
  }
  const outcome = evaluatePreconditions(method, request.headers, clip);
  if (outcome === "not-modified") return new Response(null, { status: 304, headers: clip.notModifiedHeaders });
  if (outcome === "failed") return httpErrorResponse(preconditionFailed());

  const size = clip.size;
  const rangeHeader = request.headers.get("range");
  const plan = rangeHeader === null || !ifRangeAllows(request.headers, clip) ? ({ kind: "full" } as const) : planRange(rangeHeader, size, options.rangeLimits ?? DEFAULT_RANGE_LIMITS);
  const head = method === "HEAD";
  if (plan.kind === "unsatisfiable") {
    return errorResponse(416, "range_not_satisfiable", `No requested range is satisfiable for ${size} bytes`, {
      "content-range": unsatisfiedRange(size),
      "accept-ranges": "bytes",
    });
  }
  if (plan.kind === "full") {
    if (head) return withLength(new Response(null, { headers: clip.responseHeaders }), size);
    const pieces = clipPieces(clip, { start: 0, end: size - 1 });
    return primedFor(clip, pieces, (primed) => {
      hot.fileBytes += size;
      return new Response(rangeBody(clip, pieces, primed), { headers: clip.responseHeaders });
    });
  }
  const ranges = plan.ranges;
  if (ranges.length === 1) {
    const r = ranges[0]!;
    const single = (body: BodyInit | null): Response => {
      const response = new Response(body, { status: 206, headers: clip.responseHeaders });
      response.headers.set("content-range", contentRange(r, size));
      if (head) response.headers.set("content-length", String(r.end - r.start + 1));
      else hot.fileBytes += r.end - r.start + 1;
      return response;
    };
    if (head) return single(null);
    const pieces = clipPieces(clip, r);
    return primedFor(clip, pieces, (primed) => single(rangeBody(clip, pieces, primed)));
  }
  const boundary = makeBoundary();
  const layout = layoutMultipart(ranges, size, clip.contentType, boundary);
  const headers = { ...clip.headers, "content-type": multipartContentType(boundary) };
  if (head) return new Response(null, { status: 206, headers: { ...headers, "content-length": String(layout.length) } });
  const pieces: Piece[] = [];
  ranges.forEach((r, i) => pieces.push(layout.heads[i]!, ...clipPieces(clip, r)));
  pieces.push(layout.tail);
  return primedFor(clip, pieces, (primed) => {
    hot.fileBytes += layout.length;
    return new Response(streamPieces(clip, pieces, primed), { status: 206, headers });
  });
}

/** `answer` at once, or, when the body reads media from a bucket, once its first chunk is in. */
function primedFor(clip: ClipEntity, pieces: Piece[], answer: (primed?: PrimedMedia) => Response): Response | Promise<Response> {
  const media = clip.media;
  if (!media) return answer();
  const first = pieces.find((p): p is ByteRange => typeof p === "object" && !(p instanceof Uint8Array));
  return first === undefined ? answer() : primeMedia(media, first).then(answer);
}

function withLength(response: Response, length: number): Response {
  response.headers.set("content-length", String(length));
  return response;
}

/** Parses `?start=` / `?end=`: plain decimal seconds ("12", "12.5", ".5"); anything else is a 400. */
export function parseClipInterval(start: string | null, end: string | null): ClipInterval | undefined {
  if (start === null && end === null) return undefined;
  const s = start === null ? 0 : seconds("start", start);
  const e = end === null ? undefined : seconds("end", end);
  if (e !== undefined && e <= s) throw new HttpError(400, "bad_request", `end (${e}) must be greater than start (${s})`);
  // start=0 with no end is the whole file: no clip.
  if (s === 0 && e === undefined) return undefined;
  return { start: s, end: e };
}

/** Plain decimal seconds, any number of decimals (a player's `currentTime` has 16), 32 characters at most (OpenAPI documents both). */
export const CLIP_SECONDS = /^(?:\d{1,9}(?:\.\d*)?|\.\d+)$/;
export const CLIP_SECONDS_MAX_LENGTH = 32;

/**
 * Seconds, rounded to the microsecond: every spelling of the same instant names the same clip
 * (one tag, one kept file), and finer precision than any media timescale would only multiply
 * the clips a client can ask for.
 */
function seconds(name: string, text: string): number {
  if (text.startsWith("-")) throw new HttpError(400, "bad_request", `${name} must not be negative`);
  if (text.length > CLIP_SECONDS_MAX_LENGTH || !CLIP_SECONDS.test(text)) throw new HttpError(400, "bad_request", `${name} must be a number of seconds, like 12 or 12.5`);
  return Math.round(Number(text) * 1e6) / 1e6;
}

/** Containers clips can be cut from (ISO BMFF by extension or media type). */
export function isClippable(path: string, contentType: string): boolean {
  const dot = path.lastIndexOf(".");
  return (dot >= 0 && CLIP_EXTENSION.test(path.slice(dot + 1))) || CLIP_TYPE.test(contentType);
}

export interface ClipCacheOptions {
  /** Bound on the memory held by cached headers and parsed `moov`s (default 64 MiB). */
  maxBytes?: number;
  maxMoovBytes?: number;
  /** Where a base entity's bytes come from when they are not its local file (STORAGE=s3). */
  mediaFor?: (base: FileEntity) => ClipMedia | undefined;
  /** Keeps clips as files of their own (CLIP_CACHE_BYTES); unset: clips are always streamed. */
  store?: ClipStore;
  /** Counts lookups on /metrics (`clip_headers`, `clip_moovs`): the stream route's cache only. */
  counted?: boolean;
  /** How many headers may be made at once and wait (DEFAULT_CLIP_BUILDS). */
  builds?: BoundedWorkLimits;
}

/**
 * Two at once (one may be reading a `moov` while the other cuts), 64 waiting, a client 33 of
 * them. A header of a two-hour clip of an hour-long video took 13 ms of CPU; one of a few
 * seconds, well under one.
 */
export const DEFAULT_CLIP_BUILDS: BoundedWorkLimits = { concurrency: 2, queue: 64 };

/**
 * Clip headers, computed once per (file version, interval) and kept until evicted by size;
 * parsed `moov`s too, so a new interval on a known file costs the cut, not the read and parse.
 * A file that cannot be cut is remembered as such (its error), so it is not read again.
 */
export class ClipCache {
  readonly store: ByteCache<ClipEntity | MovieFile | HttpError>;
  /** Headers and `moov`s being made, by key (a clip's key and its file's never coincide). */
  private readonly pending = new Map<string, Promise<unknown>>();
  private readonly maxMoovBytes: number;
  private readonly mediaFor: (base: FileEntity) => ClipMedia | undefined;
  /** Where clips are kept as files (undefined: streamed). */
  readonly disk: ClipStore | undefined;
  /**
   * Headers being made (and the `moov`s they need): CPU a client could otherwise multiply without
   * bound, one new interval per request (src/lib/bounded-work.ts).
   */
  readonly builds: BoundedWork;
  /** Where lookups are counted: /metrics' own numbers, or numbers nobody reads. */
  private readonly counts: Pick<typeof hot, "clipHeaderHits" | "clipHeaderMisses" | "moovHits" | "moovMisses">;

  constructor(options: ClipCacheOptions = {}) {
    this.store = new ByteCache(options.maxBytes ?? 64 * 1024 * 1024);
    this.maxMoovBytes = options.maxMoovBytes ?? DEFAULT_MAX_MOOV_BYTES;
    this.mediaFor = options.mediaFor ?? (() => undefined);
    this.disk = options.store;
    this.builds = new BoundedWork("clips", "clip headers", options.builds ?? DEFAULT_CLIP_BUILDS);
    this.counts = options.counted ? hot : { clipHeaderHits: 0, clipHeaderMisses: 0, moovHits: 0, moovMisses: 0 };
  }

  /** What a cached refusal holds: the HttpError, its message and captured stack. */
  private static readonly REFUSAL_COST = 1024;

  private static fileKey(base: FileEntity): string {
    return `${base.path}\0${base.etag}\0${base.size}`;
  }

  /** A clip keeps its base's headers (Cache-Control, CORS, Last-Modified): they are in its key. */
  private static clipKey(base: FileEntity, interval: ClipInterval, variant: ClipVariant): string {
    return `${ClipCache.fileKey(base)}\0${interval.start}\0${interval.end ?? ""}\0${variant.disposition ?? ""}\0${variant.filename ?? ""}\0${base.headersKey}`;
  }

  /**
   * The clip of `base` over `interval`. A header not cached is made in its turn (`builds`); when
   * too many are being made, or `client` (asked only then) has its share of them, this throws the
   * 503 or 429 that refuses it.
   */
  get(base: FileEntity, interval: ClipInterval, variant: ClipVariant = {}, client?: () => string): ClipEntity | Promise<ClipEntity> {
    const key = ClipCache.clipKey(base, interval, variant);
    return this.once<ClipEntity>(key, "clipHeader", () => this.builds.run(client?.(), () => this.build(base, interval, variant, key)));
  }

  /**
   * The file's parsed `moov`: cached, or read and parsed once however many new intervals of it
   * are asked for at the same moment (a two-hour film's takes 50 ms of CPU and 12 MiB).
   */
  private movie(base: FileEntity): MovieFile | Promise<MovieFile> {
    const fileKey = ClipCache.fileKey(base);
    return this.once<MovieFile>(fileKey, "moov", () =>
      readMovie(this.mediaFor(base)?.read ?? fileBytes(base.path), base.size, this.maxMoovBytes).then(
        (movie) => {
          this.store.set(fileKey, movie, movie.cost);
          return movie;
        },
        (error) => {
          if (!(error instanceof Mp4Error)) throw error;
          const refusal = new HttpError(422, "clip_unsupported", `This video cannot be cut into clips: ${error.message}`);
          this.store.set(fileKey, refusal, ClipCache.REFUSAL_COST);
          throw refusal;
        },
      ),
    );
  }

  /**
   * What the cache holds under `key` (a cached refusal is thrown), else the job in flight for it,
   * else a new one from `start`, shared until it settles. `start` stores its own result.
   */
  private once<T>(key: string, counter: "clipHeader" | "moov", start: () => Promise<T>): T | Promise<T> {
    const held = this.store.get(key);
    if (held !== undefined) {
      this.counts[`${counter}Hits`]++;
      if (held instanceof HttpError) throw held;
      return held as T;
    }
    let job = this.pending.get(key) as Promise<T> | undefined;
    if (job) this.counts[`${counter}Hits`]++;
    else {
      this.counts[`${counter}Misses`]++;
      job = start().finally(() => this.pending.delete(key));
      this.pending.set(key, job);
    }
    return job;
  }

  private async build(base: FileEntity, interval: ClipInterval, variant: ClipVariant, key: string): Promise<ClipEntity> {
    let parsed: MovieFile;
    try {
      parsed = await this.movie(base);
    } catch (error) {
      // A file that cannot be cut: every interval of it is refused from here on without a lookup of the file.
      if (error instanceof HttpError) this.store.set(key, error, ClipCache.REFUSAL_COST);
      throw error;
    }
    let layout: ClipLayout;
    try {
      layout = writeClip(parsed.movie, planClip(parsed.movie, interval.start, interval.end), parsed.ftyp, base.size);
    } catch (error) {
      if (error instanceof ClipRangeError) {
        // 400, not 416: see README "Clips". The interval names the resource; no Range was refused.
        // Not cached: the file's parsed moov is, and deciding again costs less than keeping an
        // entry for every interval a client can make up.
        throw new HttpError(400, "clip_out_of_range", error.message);
      }
      if (error instanceof Mp4Error) {
        const refusal = new HttpError(422, "clip_unsupported", `This video cannot be cut into clips: ${error.message}`);
        this.store.set(key, refusal, ClipCache.REFUSAL_COST);
        throw refusal;
      }
      throw error;
    }
    const media = this.mediaFor(base);
    const entity: ClipEntity = makeClipEntity(base, layout, interval, variant);
    if (media) entity.media = media;
    if (this.disk) entity.store = this.disk;
    this.store.set(key, entity, layout.header.length + 2048);
    return entity;
  }
}
