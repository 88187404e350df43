/**
 * Materialised clips: a clip's bytes (its header, then the media range of its source) written
 * once to a file of their own under DATA_DIR/cache/clips, so the clip is then answered by the
 * ordinary file engine: a whole clip with sendfile and a Content-Length, a range by Bun's own
 * range code, small answers from the RAM tier. Until then (and for clips too large to keep) the
 * clip engine answers as before, streaming header + file slice.
 *
 * Why a copy on disk: Bun 1.4.5 cannot send bytes in front of a file body. A `Blob([header,
 * file.slice()])` loses the file's bytes, and a stream's Content-Length is dropped
 * (oven-sh/bun#10507), so a whole clip went out chunked through JavaScript at half nginx's rate.
 *
 * - Built once the clip has streamed as many bytes as it holds (`streamed`): never for a HEAD, a
 *   304 or a small range of a new interval, so the disk writes no more than clients took.
 * - Built in the background, once per file whatever the concurrency (singleflight), at most
 *   `concurrency` builds at a time per process (a request finding them all busy just streams;
 *   a later one builds). Room is reserved first (DiskLru.reserve: a clip that does not fit is
 *   never written, and a build's temporary file counts against the bound), then the clip is
 *   written to a temporary file, size-checked, fsynced, and renamed into place: a crash never
 *   leaves a partial file under a clip's name, and a file found under that name with another
 *   size (not ours) is removed, never served.
 * - Named by a digest of the source's path and the clip's strong ETag and size: the bytes never
 *   change under a name, so nothing is ever stale. The source's digest is the name's prefix
 *   (and picks its subdirectory), so a removed video's clips can be found and removed.
 * - Bounded by bytes (CLIP_CACHE_BYTES), least recently used first, shared by the processes of a
 *   machine: a DiskLru, like the block cache. Clips larger than `maxClipBytes` are never kept.
 * - A file is served by name only after this process stamped it (utimes) less than
 *   `touchIntervalMs` ago, and no process evicts a file used in the last `minAgeMs` (3 touch
 *   intervals): so one process never sends a name another has just unlinked.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, rm, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import { DiskLru } from "../lib/disk-lru.ts";
import { errorFields, logger } from "../lib/log.ts";
import type { FileEntity } from "./entity.ts";
import type { MemoryTier } from "./memory-tier.ts";
import type { ClipEntity } from "./clip.ts";

export interface ClipStoreOptions {
  /** The directory (DATA_DIR/cache/clips); shared by the processes of one machine. */
  dir: string;
  /** Bound on the bytes of all kept clips (CLIP_CACHE_BYTES). */
  maxBytes: number;
  /** Larger clips stay streams. Default maxBytes / 8. */
  maxClipBytes?: number;
  /** Builds in flight per process. Default 2. */
  concurrency?: number;
  /** The RAM tier small answers of a kept clip may come from. */
  memory?: MemoryTier;
  /** How often a kept clip in use is stamped (and checked to exist). Default 2 s. */
  touchIntervalMs?: number;
  rescanIntervalMs?: number;
  staleTempMs?: number;
}

export interface ClipStoreStats {
  files: number;
  bytes: number;
  builds: number;
  evictions: number;
}

const NAME = /^[0-9a-f]{16}\.[0-9a-f]{40}\.mp4$/;
/** Bytes read from a local source per write while building. */
const COPY_CHUNK = 1024 * 1024;
/** A clip whose build failed is streamed, and not built again, for this long. */
const FAILED_RETRY_MS = 10_000;
const log = logger("clips");

function sourceDigest(path: string): string {
  return createHash("sha1").update(path).digest("hex").slice(0, 16);
}

export class ClipStore {
  readonly maxBytes: number;
  readonly maxClipBytes: number;
  private readonly lru: DiskLru;
  private readonly concurrency: number;
  private readonly memory: MemoryTier | undefined;
  private readonly building = new Map<string, Promise<void>>();
  /**
   * Kept files this process built or checked (complete, the clip's size): the only ones it sends.
   * Paths only: an entity points at its file (`stored`), checked here on each use, so entities
   * the header cache evicts are not kept alive by this store.
   */
  private readonly verified = new Set<string>();
  /** After the directory could not make room (every file in recent use): no build before then. */
  private refusedUntil = 0;
  /** Clips whose build failed (source unreadable, bucket down): not tried again before then. */
  private readonly failed = new Map<string, number>();
  /** Each entity's file name, hashed once (a clip still being built is asked for on every request). */
  private readonly paths = new WeakMap<ClipEntity, string>();
  private builds = 0;

  constructor(options: ClipStoreOptions) {
    this.maxBytes = options.maxBytes;
    this.maxClipBytes = options.maxClipBytes ?? Math.floor(options.maxBytes / 8);
    this.concurrency = options.concurrency ?? 2;
    this.memory = options.memory;
    const touchIntervalMs = options.touchIntervalMs ?? 2_000;
    this.lru = new DiskLru({
      dir: options.dir,
      maxBytes: options.maxBytes,
      name: NAME,
      touchIntervalMs,
      minAgeMs: 3 * touchIntervalMs,
      rescanIntervalMs: options.rescanIntervalMs,
      staleTempMs: options.staleTempMs,
    });
    this.lru.busy = (path) => this.building.has(path);
    this.lru.onEvict = (path) => this.drop(path);
  }

  get dir(): string {
    return this.lru.dir;
  }

  /** Creates the directory, removes what crashed builds left, and learns what is kept. */
  init(): Promise<void> {
    return this.lru.init();
  }

  stats(): ClipStoreStats {
    return { files: this.lru.files, bytes: this.lru.bytes, builds: this.builds, evictions: this.lru.evictions };
  }

  /** Where a clip's bytes are kept: `<source digest>.<digest of source, tag and size>.mp4`. */
  pathOf(clip: ClipEntity): string {
    let path = this.paths.get(clip);
    if (path === undefined) {
      const source = sourceDigest(clip.base.path);
      const digest = createHash("sha1").update(`${clip.base.path}\n${clip.etag}\n${clip.size}`).digest("hex");
      this.paths.set(clip, (path = this.lru.pathFor(source, `${source}.${digest}.mp4`)));
    }
    return path;
  }

  /**
   * The kept file's entity for `clip`, if it may be sent by name now; else undefined. The hot
   * path. A miss builds nothing by itself (see `streamed`), but a file the directory is known to
   * hold (found by its last scan: kept before a restart, or by another process) is checked and
   * adopted in the background.
   */
  entityFor(clip: ClipEntity): FileEntity | undefined {
    const stored = clip.stored;
    if (stored !== undefined) {
      if (this.verified.has(stored.path) && this.lru.useSync(stored.path)) return stored;
      // Evicted, or gone (another process evicted it, the directory was cleared): stream, build again.
      clip.stored = undefined;
      this.drop(stored.path);
      clip.streamed = 0;
    }
    const path = this.pathOf(clip);
    // Another variant of the same bytes (inline, download) is kept already: attached at once.
    if (this.verified.has(path) || this.lru.has(path)) this.want(clip);
    return clip.stored;
  }

  /**
   * `bytes` of `clip` went out through JavaScript (streamed, not sent from a file). A clip is
   * kept once it has streamed as many bytes as it holds: writing a file costs the disk what
   * clients have already taken, so no request (a HEAD, a 1-byte range, a new `?start=` each
   * time) can make the server write a clip it never sent (security review: 100 HEADs with new
   * intervals wrote 2.4 GiB).
   */
  streamed(clip: ClipEntity, bytes: number): void {
    clip.streamed = (clip.streamed ?? 0) + bytes;
    // Every chunk past the mark asks again: a build declined (both slots busy, a failure's
    // back-off) is started by a later answer, as the module's header says.
    if (clip.streamed >= clip.size && clip.stored === undefined) this.want(clip);
  }

  /** Starts keeping `clip` if it should be kept and is not being built. */
  want(clip: ClipEntity): void {
    if (clip.size > this.maxClipBytes || clip.size === 0) return;
    const path = this.pathOf(clip);
    if (this.building.has(path)) return;
    // Another variant (inline, download) of the same bytes is kept already.
    if (this.verified.has(path)) {
      if (this.lru.useSync(path)) return this.attach(clip, path);
      this.drop(path);
    }
    const now = Date.now();
    if (this.building.size >= this.concurrency || now < this.refusedUntil || (this.failed.get(path) ?? 0) > now) return;
    const job = this.build(clip, path)
      .catch((error) => {
        if (this.failed.size >= 1024) this.failed.clear();
        this.failed.set(path, Date.now() + FAILED_RETRY_MS);
        log.warn({ ...errorFields(error), clip: clip.etag }, "clip not kept on disk; it is streamed");
      })
      .finally(() => this.building.delete(path));
    this.building.set(path, job);
  }

  /** Resolves once the builds in flight are done (tests, shutdown). */
  async settled(): Promise<void> {
    while (this.building.size > 0) await Promise.all(this.building.values());
  }

  private async build(clip: ClipEntity, path: string): Promise<void> {
    // Another process may have kept it already: adopt a complete file. A file of another size
    // there (a damaged disk; builds rename only complete files) is never sent, and the new one is
    // renamed over it (not unlinked first: another process may be renaming a good one in place).
    await this.lru.unlinked(path); // not one this process is evicting right now
    const found = await stat(path).catch(() => null);
    if (found?.size === clip.size) {
      this.lru.adopt(path, clip.size);
      return this.attach(clip, path);
    }
    // Room first, counted from now on with the temporary file: a clip the directory cannot take
    // (every kept one in recent use) is never written, and builds in flight stay in the bound.
    if (!(await this.lru.reserve(clip.size))) {
      this.refusedUntil = Date.now() + 1_000;
      return;
    }
    const temp = this.lru.tempPath();
    try {
      // One call per build: the directory may have been cleared under a running server.
      await mkdir(dirname(temp), { recursive: true });
      await writeClipFile(clip, temp);
    } catch (error) {
      this.lru.release(clip.size);
      await rm(temp, { force: true });
      throw error;
    }
    await this.lru.place(temp, path, clip.size);
    this.builds++;
    this.attach(clip, path);
  }

  private attach(clip: ClipEntity, path: string): void {
    this.verified.add(path);
    clip.stored = storedEntity(clip, path, this.memory);
  }

  /** Stops sending a file by name (evicted, gone or removed): entities notice on their next use. */
  private drop(path: string): void {
    this.verified.delete(path);
    this.lru.forget(path);
  }

  /**
   * Bun found no file at `path` when it came to send it: if that is a kept clip (removed since this
   * process last checked it, as `useSync` allows for up to a touch interval), it is forgotten, so
   * the clip's next request streams it. True when the path was one of this store's.
   */
  lost(path: string): boolean {
    if (!path.startsWith(this.lru.dir + sep)) return false;
    this.drop(path);
    return true;
  }

  /** Removes every kept clip of the source at `path` (a deleted video), whoever built it. */
  async removeSource(sourcePath: string): Promise<number> {
    const prefix = `${sourceDigest(sourcePath)}.`;
    const dir = join(this.lru.pathFor(prefix, ""), "");
    let removed = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (!name.startsWith(prefix) || !NAME.test(name)) continue;
      const path = join(dir, name);
      this.drop(path);
      await this.lru.remove(path);
      removed++;
    }
    return removed;
  }
}

/** The file engine's entity for a kept clip: the clip's own headers and validators, the file's bytes. */
/**
 * The clip's bytes into the file `temp`: the header, then the media range, checked to be exactly
 * the clip's length and fsynced before it may be renamed into place. Also used on its own for a
 * short clip that stands in for a whole bucket video (thumbnails with STORAGE=s3).
 *
 * The media range is read in 1 MiB chunks through one reused buffer (or, STORAGE=s3, taken from
 * the block cache's stream). Not kernel-side: Bun 1.4.5's `Bun.write(dest, file.slice(a, b))`
 * uses copy_file_range(2) but copies the WHOLE source from offset 0 (the slice's offset and
 * length are ignored, to a path or to an fd at its position; checked with strace; upstream:
 * oven-sh/bun#41209, open), and Node's copy functions copy whole files. A build happens once per
 * clip, off the request.
 */
export async function writeClipFile(clip: ClipEntity, temp: string): Promise<void> {
  const out = await open(temp, "w");
  try {
    let written = (await out.write(clip.head)).bytesWritten;
    const range = { start: clip.dataStart, end: clip.dataEnd - 1 };
    if (clip.media) {
      if (range.end >= range.start) for await (const chunk of clip.media.stream(range)) written += (await out.write(chunk)).bytesWritten;
    } else {
      const source = await open(clip.path, "r");
      try {
        const buffer = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, clip.dataEnd - clip.dataStart)));
        for (let offset = clip.dataStart; offset < clip.dataEnd; ) {
          const { bytesRead } = await source.read(buffer, 0, Math.min(buffer.length, clip.dataEnd - offset), offset);
          if (bytesRead === 0) throw new Error(`short read from ${clip.path} at ${offset}`);
          written += (await out.write(buffer.subarray(0, bytesRead))).bytesWritten;
          offset += bytesRead;
        }
      } finally {
        await source.close();
      }
    }
    if (written !== clip.size) throw new Error(`clip file of ${written} bytes, expected ${clip.size}`);
    // On disk before it is visible: a power cut must not leave a named clip with holes.
    await out.sync();
  } finally {
    await out.close();
  }
}

function storedEntity(clip: ClipEntity, path: string, memory: MemoryTier | undefined): FileEntity {
  const nativeRangeHeaders = new Headers(clip.headers);
  nativeRangeHeaders.delete("accept-ranges");
  return {
    path,
    file: Bun.file(path),
    size: clip.size,
    // Unknown on purpose: the LRU stamps the file's mtime; the RAM tier then checks the size only.
    mtimeMs: 0,
    memoryKey: `${path}\0${clip.etag}`,
    memory,
    // Kept clips are evicted and deleted by any process of the DATA_DIR: opened per answer.
    descriptors: undefined,
    etag: clip.etag,
    lastModified: clip.lastModified,
    contentType: clip.contentType,
    headers: clip.headers,
    headersKey: JSON.stringify(clip.headers),
    responseHeaders: clip.responseHeaders,
    nativeRangeHeaders,
    notModifiedHeaders: clip.notModifiedHeaders,
  };
}
