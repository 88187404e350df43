/**
 * The stream route's view of the library: video id → ready-to-serve FileEntity, cached.
 *
 * A ready video's bytes never change under its id, so its row and stat are trusted for
 * `ttlMs` (and dropped at once when this process changes the video). The hot path is then one
 * Map lookup: no database round-trip and no stat per request. Other processes' changes (a
 * separate worker, another server on the same database) are seen within `ttlMs`.
 */
import { makeEntity, type FileEntity } from "../../files/entity.ts";
import { statEntity } from "../../files/cache.ts";
import { serveBody } from "../../files/serve.ts";
import type { MemoryTier } from "../../files/memory-tier.ts";
import type { OpenFiles } from "../../files/open-files.ts";
import type { ClipStore } from "../../files/clip-store.ts";
import { ClipCache } from "../../files/clip.ts";
import type { VideoRow } from "../../db/schema.ts";
import { extensionOf } from "../../http/content-type.ts";
import { errorFields, logger } from "../../lib/log.ts";
import { hot } from "../../metrics/metrics.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { ObjectServer } from "../../storage/serve.ts";

export const VIDEO_CACHE_CONTROL = "public, max-age=86400";
/** A signed video's bytes: never in a shared cache, where they would outlive the token. */
export const SIGNED_VIDEO_CACHE_CONTROL = "private, max-age=3600";

/** A ready video as the stream route serves it: the inline entity, and the download one on demand. */
export class CachedVideo {
  private download: FileEntity | undefined;

  constructor(
    readonly id: string,
    /** Playback needs a token (or the management credentials). */
    readonly signed: boolean,
    readonly inline: FileEntity,
    private readonly makeDownload: () => FileEntity,
    /** What a download is called (the title with the container's extension); clips add their interval. */
    readonly downloadName = "video",
    /** Its HLS ladder is complete (`hls.status` ready): only then are its files served. */
    readonly hlsReady = false,
  ) {}

  /** Both variants have the same bytes and validators; only Content-Disposition differs. */
  variant(download: boolean): FileEntity {
    return download ? (this.download ??= this.makeDownload()) : this.inline;
  }
}

interface Entry {
  /** undefined: no such ready video (cached too, so 404 floods stay off the database). */
  video?: CachedVideo;
  expires: number;
}

/** The file name a download gets: the title, with the container's extension. */
export function downloadName(row: VideoRow): string {
  // The stored file's extension: it comes from the detected container, not the client's name.
  const ext = extensionOf(row.storagePath);
  const title = row.title.trim() || "video";
  return ext && extensionOf(title) !== ext ? `${title}.${ext}` : title;
}

/** Answers a GET/HEAD whose preconditions passed: `serveBody` (files), or the bucket's engine. */
export type BodyServer = (request: Request, entity: FileEntity) => Response | Promise<Response>;

export interface CatalogOptions {
  /** Headers every answer carries, precomputed into each entity (CORS for a `*` policy). */
  extraHeaders?: Readonly<Record<string, string>>;
  maxEntries?: number;
  /** The RAM tier small answers come from (MEMORY_CACHE_BYTES); undefined: sendfile only. */
  memory?: MemoryTier;
  /** Descriptors kept open for short ranges of local files (src/files/open-files.ts). */
  descriptors?: OpenFiles;
  /**
   * STORAGE=s3: entities of objects in the bucket, made from the row alone (a row is ready
   * only once its object is complete), so loading one costs no round trip to the bucket.
   */
  objects?: ObjectServer;
  /** Clips kept as files (CLIP_CACHE_BYTES); undefined: clips are always streamed. */
  clipStore?: ClipStore;
  /** Memory for parsed `moov`s and clip headers (CLIP_HEADER_CACHE_BYTES; default 64 MiB). */
  clipHeaderBytes?: number;
}

export class StreamCatalog {
  private readonly entries = new Map<string, Entry>();
  /**
   * The last video served under each id, kept past its entry (bounded like the entries): on
   * PostgreSQL a change arrives twice (here, then echoed through the database), and the echo of
   * one change may drop the entry the next change (a deletion) needs to know what to release.
   */
  private readonly served = new Map<string, CachedVideo>();
  /** Chosen once here, so the stream route does not ask per request where the bytes are. */
  readonly body: BodyServer;
  private readonly extraHeaders: Readonly<Record<string, string>>;
  private readonly maxEntries: number;
  readonly memory: MemoryTier | undefined;
  readonly descriptors: OpenFiles | undefined;
  readonly objects: ObjectServer | undefined;
  readonly clips: ClipStore | undefined;
  /** Clip headers and parsed `moov`s of this catalog's videos (with STORAGE=s3, read through the bucket's block cache). */
  readonly clipCache: ClipCache;

  constructor(
    private readonly library: VideoLibrary,
    private readonly ttlMs: number,
    options: CatalogOptions = {},
  ) {
    const { objects } = options;
    this.extraHeaders = options.extraHeaders ?? {};
    this.maxEntries = options.maxEntries ?? 10_000;
    this.memory = options.memory;
    this.descriptors = objects ? undefined : options.descriptors;
    this.objects = objects;
    this.clips = options.clipStore;
    this.clipCache = new ClipCache({
      ...(objects ? { mediaFor: (base: FileEntity) => objects.clipMedia(base) } : {}),
      ...(options.clipHeaderBytes !== undefined ? { maxBytes: options.clipHeaderBytes } : {}),
      store: this.clips,
      counted: true,
    });
    this.body = objects ? (request, entity) => objects.body(request, entity) : serveBody;
    // "*": another process's changes may have been missed (the listener reconnected).
    library.events.on("invalidated", (id: string) => {
      if (id === "*") return this.entries.clear();
      const gone = this.entries.get(id)?.video ?? this.served.get(id);
      this.entries.delete(id);
      if (gone && (this.clips || this.descriptors)) void this.releaseIfGone(gone);
    });
  }

  /**
   * A video that is no longer ready (deleted, or failed) or no longer these bytes: its kept
   * clips are removed and its kept descriptor retired (the route already answers 404; this frees
   * the disk at once rather than when they age out). Any change invalidates, an HLS transcode's
   * progress too, so the row is looked at first: a video still served keeps its descriptor.
   */
  private async releaseIfGone(video: CachedVideo): Promise<void> {
    try {
      const row = await this.library.get(video.id);
      if (row?.status === "ready" && row.sha256 && video.inline.etag === `"${row.sha256.slice(0, 32)}"`) return;
      if (this.served.get(video.id) === video) this.served.delete(video.id);
      this.descriptors?.forget(video.inline.memoryKey);
      await this.clips?.removeSource(video.inline.path);
    } catch (error) {
      logger("stream").warn({ video: video.id, ...errorFields(error) }, "kept clips or descriptor of a removed video were not released; they age out");
    }
  }

  /** Drops whatever entry serves this file (it was found missing at send time). */
  forgetPath(path: string): void {
    for (const [id, entry] of this.entries) if (entry.video?.inline.path === path) this.entries.delete(id);
  }

  /** The cached answer, if fresh: `null` means "known not to exist". */
  peek(id: string): CachedVideo | null | undefined {
    const entry = this.entries.get(id);
    if (!entry || entry.expires <= Date.now()) {
      hot.catalogMisses++;
      return undefined;
    }
    hot.catalogHits++;
    return entry.video ?? null;
  }

  async load(id: string): Promise<CachedVideo | null> {
    const row = await this.library.get(id);
    let inline: FileEntity | undefined;
    if (row && row.status === "ready" && row.sha256 && this.objects) {
      inline = this.objects.entity(row.storagePath, row.size, row.sha256, row.createdAt.getTime(), this.options(row));
    } else if (row && row.status === "ready" && row.sha256) {
      const path = this.library.absolutePath(row);
      const found = await statEntity(path, this.options(row));
      if (found && found.size === row.size) inline = found;
      // A ready row whose file is gone or altered is an operator problem, not a client one.
      else logger("stream").warn({ video: id, path, size: found?.size, expected: row.size }, found ? "stored file has the wrong size; answering 404" : "stored file is missing; answering 404");
    }
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    const video = inline && row ? new CachedVideo(row.id, row.playback === "signed", inline, () => this.downloadEntity(row, inline), downloadName(row), row.hlsStatus === "ready") : undefined;
    this.entries.set(id, { video, expires: Date.now() + this.ttlMs });
    if (video) {
      this.served.delete(id);
      if (this.served.size >= this.maxEntries) this.served.delete(this.served.keys().next().value!);
      this.served.set(id, video);
    }
    return video ?? null;
  }

  private options(row: VideoRow) {
    return {
      contentType: row.contentType,
      // Content-addressed, so every server holding the same bytes gives the same tag.
      etag: `"${row.sha256!.slice(0, 32)}"`,
      lastModified: Math.floor(row.createdAt.getTime() / 1000),
      cacheControl: row.playback === "signed" ? SIGNED_VIDEO_CACHE_CONTROL : VIDEO_CACHE_CONTROL,
      headers: this.extraHeaders,
      memory: this.memory,
      descriptors: this.descriptors,
    };
  }

  private downloadEntity(row: VideoRow, inline: FileEntity): FileEntity {
    if (this.objects) return this.objects.entity(inline.path, inline.size, row.sha256!, inline.mtimeMs, { ...this.options(row), disposition: "attachment", filename: downloadName(row) });
    return makeEntity(inline.path, inline.size, inline.mtimeMs, { ...this.options(row), disposition: "attachment", filename: downloadName(row) });
  }
}
