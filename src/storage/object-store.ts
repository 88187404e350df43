/**
 * Where a video's media objects live: the local disk (`STORAGE=local`, DATA_DIR, today's
 * layout) or an S3-compatible bucket (`STORAGE=s3`). Both implement ObjectStore, so ingest,
 * the stream and HLS routes, delete and the orphan sweep are written once.
 *
 * Key layout: a key is the object's path relative to DATA_DIR in the local layout, so the
 * `storage_path` rows hold today can be used as keys unchanged, in either store:
 *
 *   videos/<id>/source.<ext>          the stored file (faststart), streamed when `ready`
 *   videos/<id>/poster.jpg            the poster made at ingest
 *   videos/<id>/hls/...               the HLS ladder: master.m3u8, <height>p/ playlists and
 *                                     fMP4 segments, storyboard.vtt and its sprite sheets
 *   videos/<id>/thumbs/...            thumbnails generated on request
 *
 * Everything of a video is under `videos/<id>/`, so deleting a video is `deletePrefix` of that.
 * Work in progress (uploads, ffmpeg output) stays on local disk under DATA_DIR/tmp and is put
 * into the store only when complete; a video is marked ready only after its objects are.
 *
 * Errors: a missing object is ObjectNotFound (404 for the client); a store that cannot answer
 * (unreachable, 5xx, refused credentials, too slow: every call has a deadline) is
 * StorageUnavailable (502/503 for the client). Nothing else escapes except programming errors
 * (a bad key, a range outside the object: RangeError).
 */
import type { Span } from "./blocks.ts";

/** The store cannot answer now: unreachable, a 5xx, credentials refused, or past a deadline. */
export class StorageUnavailable extends Error {
  override name = "StorageUnavailable";
  /** A job that meets it waits and runs again, the attempt not counted (src/queue/runner.ts). */
  readonly transient = true;
  constructor(
    message: string,
    /** The operation (`get`, `put`, ...) and key, for logs. */
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The object does not exist (or no longer does). */
export class ObjectNotFound extends Error {
  override name = "ObjectNotFound";
  constructor(readonly key: string) {
    super(`no object ${key}`);
  }
}

export interface ObjectInfo {
  key: string;
  size: number;
  /** The store's own ETag (not Spool's content-hash ETag; never sent to clients). */
  etag?: string;
  lastModified?: Date;
}

/** Bytes of an object: the stream yields exactly `end - start + 1` bytes or errors. */
export interface ObjectBody {
  stream: ReadableStream<Uint8Array>;
  /** The absolute inclusive range the stream holds (suffix ranges resolved). */
  start: number;
  end: number;
  /** The whole object's size. */
  size: number;
}

/** A range to read: absolute and inclusive, or the last `suffix` bytes. */
export type ReadRange = Span | { suffix: number };

export interface ReadOptions {
  /** Aborts the read (a client that went away); the stream then errors. */
  signal?: AbortSignal;
  /** The object's size when the caller knows it (saves a HEAD for a suffix range). */
  size?: number;
}

export interface PutOptions {
  /** Content-Type stored with the object; default from the file name. */
  type?: string;
}

export interface PresignOptions {
  /** Seconds the URL stays valid. */
  expiresIn: number;
  /** Overrides the response's Content-Disposition (`?download=1`). */
  contentDisposition?: string;
}

export interface ObjectStore {
  readonly kind: "local" | "s3";
  /** Puts a finished local file at `key` (multipart upload for large files in S3); replaces what was there. */
  putFile(key: string, path: string, options?: PutOptions): Promise<void>;
  /** Puts every file under `dir` at `prefix` + its relative path (an HLS ladder); returns the keys. */
  putDirectory(prefix: string, dir: string): Promise<string[]>;
  /** Size and validators, or null when there is no such object. */
  stat(key: string): Promise<ObjectInfo | null>;
  exists(key: string): Promise<boolean>;
  /** A byte range of the object as a stream (ObjectNotFound; RangeError when outside the object). */
  read(key: string, range: ReadRange, options?: ReadOptions): Promise<ObjectBody>;
  /** A short-lived URL that GETs the object directly (S3_DELIVERY=redirect); null for local disk. */
  presign(key: string, options: PresignOptions): string | null;
  /** The file of the object when it is on local disk (serve it with sendfile); null in S3. */
  localPath(key: string): string | null;
  /** Deletes one object; deleting what is not there succeeds. */
  delete(key: string): Promise<void>;
  /** Deletes every object under `prefix` (which must end with "/"); returns how many. Idempotent. */
  deletePrefix(prefix: string): Promise<number>;
  /** Every object under `prefix`, in key order per page (the orphan sweep). */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Throws StorageUnavailable unless the store answers now (`/ready`). */
  check(): Promise<void>;
}

/** The keys of a video's objects (see the layout above). */
export const videoKeys = {
  prefix: (id: string) => `videos/${id}/`,
  source: (id: string, ext: string) => `videos/${id}/${ext ? `source.${ext}` : "source"}`,
  /** The received bytes while the video is `processing`, for a worker on another machine. */
  incoming: (id: string) => `videos/${id}/incoming`,
  poster: (id: string) => `videos/${id}/poster.jpg`,
  hls: (id: string) => `videos/${id}/hls/`,
  thumbs: (id: string) => `videos/${id}/thumbs/`,
};

/**
 * Refuses keys that could escape the layout or mean different things in the two stores: empty,
 * absolute, `.`/`..` segments, backslashes, control characters.
 */
export function checkKey(key: string, kind: "key" | "prefix" = "key"): void {
  const body = kind === "prefix" ? key.slice(0, -1) : key;
  const ok =
    key.length > 0 &&
    key.length <= 1024 &&
    (kind === "prefix" ? key.endsWith("/") : !key.endsWith("/")) &&
    !key.startsWith("/") &&
    !/[\\\x00-\x1f\x7f]/.test(key) &&
    body.split("/").every((segment) => segment !== "" && segment !== "." && segment !== "..");
  if (!ok) throw new RangeError(`invalid object ${kind}: ${JSON.stringify(key)}`);
}

/** Resolves a ReadRange against the object's size; RangeError when nothing of it is inside. */
export function absoluteRange(range: ReadRange, size: number): Span {
  if ("suffix" in range) {
    if (range.suffix <= 0 || size === 0) throw new RangeError(`suffix range -${range.suffix} of an object of ${size} bytes`);
    return { start: Math.max(0, size - range.suffix), end: size - 1 };
  }
  if (!Number.isSafeInteger(range.start) || range.start < 0 || range.start >= size || range.end < range.start) {
    throw new RangeError(`range ${range.start}-${range.end} of an object of ${size} bytes`);
  }
  return { start: range.start, end: Math.min(range.end, size - 1) };
}

/** Runs `work` over `items` with at most `concurrency` at once; rejects with the first failure. */
export async function eachLimit<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const lane = async () => {
    while (!failed && next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
}
