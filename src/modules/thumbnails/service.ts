/**
 * Posters and thumbnails: JPEG frames extracted with ffmpeg, cached on disk next to the video
 * (DATA_DIR/videos/<id>/poster.jpg and thumbs/), so they go with it on delete.
 *
 * The poster is made at ingest (it doubles as the proof that a frame decodes). Other frames are
 * made on first request, and the work a client can cause is bounded:
 *
 *  - `t` and `width` snap to a grid (grid.ts), so a video has a bounded set of frames; requests
 *    that snap to the same frame share one cached file and one ffmpeg run (a job).
 *  - At most `concurrency` ffmpeg runs at once (posters at ingest included) and at most `queue`
 *    jobs waiting for one; a new job beyond that is refused at once with 503 `thumbnails_busy`
 *    and a Retry-After, instead of making every thumbnail wait behind the flood.
 *  - One client may have started at most `perClient` of those jobs (half of them by default);
 *    more get 429 `thumbnails_rate_limited`, so a flood from one client leaves room for others.
 *    Both bounds are src/lib/bounded-work.ts's, with a Retry-After from observed run times.
 *  - A job nobody waits for any more (every request for it aborted) leaves the queue, or its
 *    ffmpeg is killed; no file is made for it.
 *  - Each video keeps at most MAX_CACHED thumbnails (least recently made evicted).
 */
import { errorFields, logger } from "../../lib/log.ts";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { VideoRow } from "../../db/schema.ts";
import { HttpError, badRequest } from "../../http/errors.ts";
import { ingestUnavailable, type MediaTools, type RunOptions } from "../../media/tools.ts";
import { demuxerForContainer, type Demuxer } from "../../media/formats.ts";
import { BoundedWork } from "../../lib/bounded-work.ts";
import { ObservedRetryAfter } from "../../lib/observed-retry-after.ts";
import type { Storage } from "../../library/storage.ts";
import { snapTimeMs, snapWidth } from "./grid.ts";
import { ObjectNotFound, StorageUnavailable, videoKeys } from "../../storage/object-store.ts";
import type { ObjectServer } from "../../storage/serve.ts";
import { ClipCache, isClippable } from "../../files/clip.ts";
import { writeClipFile } from "../../files/clip-store.ts";

export const MIN_WIDTH = 16;
export const MAX_WIDTH = 3840;
/** Posters are at most this wide; wider sources are scaled down. */
export const POSTER_MAX_WIDTH = 1280;
const MAX_CACHED = 200;
/**
 * A frame is written to `<name>.<random>.part.jpg` and renamed; a process killed meanwhile leaves
 * the part behind. Each frame run is capped at 60 s (src/media/tools.ts, two runs at most), so a
 * part older than this belongs to no run and is removed when its directory is next written.
 */
const STALE_PART_MS = 10 * 60 * 1000;
const PART_SUFFIX = ".part.jpg";
/** STORAGE=s3: the length of the clip a frame is taken from (the frame, and some slack). */
const FRAME_CLIP_SECONDS = 1;
/** Parsed `moov`s kept for thumbnails of bucket videos (a two-hour film's is a few MiB). */
const FRAME_CLIP_CACHE_BYTES = 16 * 1024 * 1024;

export interface ThumbnailLimits {
  /** ffmpeg frame extractions at once (THUMBNAIL_CONCURRENCY). */
  concurrency: number;
  /** Jobs that may wait for a free run; more are refused with 503 (THUMBNAIL_QUEUE). */
  queue: number;
  /**
   * New frames one client may have in the works (running or waiting); more are refused with
   * 429. Default: half of runs and queue together, so one client never takes every place.
   */
  perClient?: number;
}

export const THUMBNAIL_DEFAULTS: Readonly<ThumbnailLimits> = { concurrency: 2, queue: 16 };

/** Where the poster is taken: 10% into the video, at most 5 s in (skips black leaders). */
export function posterSeconds(duration: number | null): number {
  if (!duration || duration <= 0) return 0;
  return Math.round(Math.min(duration * 0.1, 5) * 1000) / 1000;
}

export function posterWidth(width: number | null): number | null {
  return width && width > POSTER_MAX_WIDTH ? POSTER_MAX_WIDTH : null;
}

/** Time keys are milliseconds; `t` is rounded to them (and the cache file is named by them). */
export function thumbnailName(seconds: number, width: number | null): string {
  return `t${Math.round(seconds * 1000)}-w${width ?? 0}.jpg`;
}

export interface ThumbnailRequest {
  t?: number;
  width?: number;
}

/** The frame a request stands for: its time in seconds and width (null: the video's own). */
export interface Frame {
  seconds: number;
  width: number | null;
  poster: boolean;
}

/** One frame being made, shared by every request that waits for it. */
interface Job {
  done: Promise<void>;
  controller: AbortController;
  /** Requests waiting for it; when the last one goes away, the job is cancelled. */
  waiters: number;
  /** The video this frame is of. */
  videoId: string;
  /** Cancelled because its video was deleted: its waiters hear 404, as a request after it would. */
  videoGone?: boolean;
}

const videoGone = (id: string) => new HttpError(404, "not_found", `No video with id ${id}`);

/**
 * The request went away while its frame was being made. Nobody receives this answer; it only
 * ends the handler (499, as nginx logs a client that closed the connection).
 */
export const clientGone = () => new HttpError(499, "client_closed_request", "The client went away before the thumbnail was ready");

export class Thumbnails {
  private readonly jobs = new Map<string, Job>();
  /** The ffmpeg runs, running and waiting: the places, each client's share, the refusals. */
  private readonly runs: BoundedWork;
  readonly limits: Readonly<ThumbnailLimits>;

  constructor(
    private readonly storage: Storage,
    private readonly tools: MediaTools | undefined,
    limits: Partial<ThumbnailLimits> = {},
    /** STORAGE=s3: posters and thumbnails are objects (see `objectFor`). */
    private readonly objects?: ObjectServer,
    /**
     * Whether a video still owns files (library.ownsFiles): a frame finished after its video was
     * deleted, here or by another process, is not kept (see `objectFor`, `settle`).
     */
    private readonly owns: (id: string) => Promise<boolean> = async () => true,
  ) {
    const set = Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
    this.limits = { ...THUMBNAIL_DEFAULTS, ...set };
    // A share counts new frames only: a request joining a frame being made takes no place.
    this.runs = new BoundedWork("thumbnails", "thumbnails", this.limits, { retryAfter: new ObservedRetryAfter(), clientWhat: "new thumbnails" });
    this.frameClips = objects ? new ClipCache({ maxBytes: FRAME_CLIP_CACHE_BYTES, mediaFor: (base) => objects.clipMedia(base) }) : undefined;
  }

  /** STORAGE=s3: parsed `moov`s of bucket videos, to cut the second around a frame (see `frameSource`). */
  private readonly frameClips: ClipCache | undefined;

  /** ffmpeg runs in progress, jobs waiting for one (posters at ingest included), and the requests waiting for them (several may share a job). */
  get load(): { running: number; waiting: number; requests: number } {
    let requests = 0;
    for (const job of this.jobs.values()) requests += job.waiters;
    return { running: this.runs.running, waiting: this.runs.waiting, requests };
  }

  /** Extracts one frame into `output` atomically; falls back to the last frame past the end. */
  private async extract(input: string, output: string, demuxer: Demuxer, seconds: number, width: number | null, options: RunOptions = {}): Promise<void> {
    if (!this.tools) throw ingestUnavailable();
    const tools = this.tools;
    const part = `${output}.${crypto.randomUUID().slice(0, 8)}${PART_SUFFIX}`;
    const made = async () => ((await stat(part).catch(() => undefined))?.size ?? 0) > 0;
    try {
      let firstError: unknown;
      try {
        await tools.extractFrame(input, part, demuxer, seconds, width, options);
      } catch (error) {
        if (options.signal?.aborted) throw error;
        firstError = error;
      }
      // Seeking at or past the last frame yields nothing: take the last frame instead.
      if (!(await made()) && seconds > 0) await tools.extractFrame(input, part, demuxer, "end", width, options);
      if (!(await made())) throw firstError ?? new Error("no video frame could be decoded");
      await rename(part, output);
    } finally {
      await rm(part, { force: true });
    }
  }

  /** Makes the poster while the video is processing (its source file is given explicitly). */
  async makePoster(id: string, source: string, media: { demuxer: Demuxer; duration: number | null; width: number | null }, options: RunOptions = {}): Promise<string> {
    const output = this.storage.posterPath(id);
    await mkdir(this.storage.videoDir(id), { recursive: true });
    await removeStaleParts(this.storage.videoDir(id));
    // Ingest is never refused for want of a queue place: it has its own limit.
    await this.runs.run(undefined, () => this.extract(source, output, media.demuxer, posterSeconds(media.duration), posterWidth(media.width), options), { signal: options.signal, unrefused: true });
    return output;
  }

  /** Validates the query against the video; throws 400 with a precise message. */
  static check(row: VideoRow, request: ThumbnailRequest): void {
    if (request.t !== undefined) {
      if (!Number.isFinite(request.t) || request.t < 0) throw badRequest("query t: must be a number of seconds >= 0");
      if (row.duration !== null && request.t > row.duration) {
        throw badRequest(`query t: must be at most the video's duration (${row.duration} s)`);
      }
    }
    if (request.width !== undefined && (!Number.isInteger(request.width) || request.width < MIN_WIDTH || request.width > MAX_WIDTH)) {
      throw badRequest(`query width: must be an integer from ${MIN_WIDTH} to ${MAX_WIDTH}`);
    }
  }

  /**
   * The frame a (valid) request stands for. No parameters: the poster. Otherwise `t` snapped to
   * the grid (default: the poster's time) and `width` snapped up the ladder (default, and any
   * rung at least as wide as the video: the video's own width).
   */
  static frame(row: Pick<VideoRow, "duration" | "width">, request: ThumbnailRequest): Frame {
    if (request.t === undefined && request.width === undefined) {
      return { seconds: posterSeconds(row.duration), width: posterWidth(row.width), poster: true };
    }
    return {
      seconds: request.t === undefined ? posterSeconds(row.duration) : snapTimeMs(request.t, row.duration) / 1000,
      width: request.width === undefined ? null : snapWidth(request.width, row.width),
      poster: false,
    };
  }

  /**
   * The path of the requested JPEG for a ready video, generating it on first request. `signal`
   * (the request's): when it aborts, this request stops waiting, and when no request waits for
   * the frame any more, its job is cancelled.
   */
  async pathFor(row: VideoRow, request: ThumbnailRequest, signal?: AbortSignal, client?: string): Promise<string> {
    if (row.status !== "ready") throw new HttpError(409, "not_ready", `Video ${row.id} is ${row.status}; thumbnails exist once it is ready`);
    if (!row.width || !row.height) throw new HttpError(404, "no_video_stream", `Video ${row.id} is audio only: it has no picture`);
    Thumbnails.check(row, request);
    const demuxer = demuxerForContainer(row.container);
    const frame = Thumbnails.frame(row, request);
    const output = frame.poster ? this.storage.posterPath(row.id) : join(this.storage.thumbsDir(row.id), thumbnailName(frame.seconds, frame.width));
    if (await exists(output)) return output;
    if (!this.tools) throw ingestUnavailable();
    if (!demuxer) throw new HttpError(404, "no_video_stream", `Video ${row.id} has no container Spool can read frames from`);
    if (signal?.aborted) throw clientGone();

    let job = this.jobs.get(output);
    if (!job) {
      const source = this.storage.absolute(row.storagePath);
      job = this.start(
        output,
        row.id,
        async (signal) => {
          if (!frame.poster) await this.prepareCache(row.id);
          await this.extract(source, output, demuxer, frame.seconds, frame.width, { signal });
        },
        client,
      );
    }
    return this.settle(row, job, output, signal).then(() => output);
  }

  /**
   * STORAGE=s3: the key of the requested JPEG in the bucket, made on first request. ffmpeg needs
   * the source as a file (its input takes no network protocol, see src/media/input-args.ts), so
   * the video is copied from the block cache into this process's tmp/ for the run and removed
   * after: its bytes come from the bucket once, and its blocks stay cached for playback. The
   * frame is put at `videos/<id>/thumbs/<name>` (so it goes with the video), not capped per
   * video: the grid bounds how many there can be.
   */
  async objectFor(row: VideoRow, request: ThumbnailRequest, signal?: AbortSignal, client?: string): Promise<string> {
    const objects = this.objects!;
    if (row.status !== "ready") throw new HttpError(409, "not_ready", `Video ${row.id} is ${row.status}; thumbnails exist once it is ready`);
    if (!row.width || !row.height) throw new HttpError(404, "no_video_stream", `Video ${row.id} is audio only: it has no picture`);
    Thumbnails.check(row, request);
    const demuxer = demuxerForContainer(row.container);
    const frame = Thumbnails.frame(row, request);
    const key = frame.poster ? videoKeys.poster(row.id) : `${videoKeys.thumbs(row.id)}${thumbnailName(frame.seconds, frame.width)}`;
    if (await objects.lookup(key)) return key;
    if (!this.tools) throw ingestUnavailable();
    if (!demuxer) throw new HttpError(404, "no_video_stream", `Video ${row.id} has no container Spool can read frames from`);
    if (signal?.aborted) throw clientGone();
    let job = this.jobs.get(key);
    if (!job) {
      job = this.start(key, row.id, async (jobSignal) => {
        const base = join(this.storage.ownTmpDir, crypto.randomUUID());
        const source = `${base}.source`;
        const output = `${base}.jpg`;
        try {
          const at = await this.frameSource(row, frame.seconds, source);
          if (jobSignal.aborted) throw clientGone();
          await this.extract(source, output, demuxer, at, frame.width, { signal: jobSignal });
          await objects.store.putFile(key, output, { type: "image/jpeg" });
          objects.forget(key);
          // Deleted meanwhile (here or in another process): its prefix may have been cleared
          // before this put. Checked after it, so either that clearing or this delete removes it.
          if (!(await this.owns(row.id))) {
            await objects.store.delete(key).catch(() => {});
            throw videoGone(row.id);
          }
        } finally {
          await rm(source, { force: true });
          await rm(output, { force: true });
        }
      }, client);
    }
    await this.settle(row, job, key, signal);
    return key;
  }

  /**
   * STORAGE=s3: a local file ffmpeg can read the frame at `seconds` from, and the time to ask it
   * for there. An MP4/MOV is cut to the second that starts at the frame (a clip: its rewritten
   * `moov` and the media from the key frame before; src/files/clip.ts), whose first shown frame
   * is the one wanted: a thumbnail reads the `moov` and a GOP or so from the bucket, not the whole
   * video (a two-hour film is gigabytes). Anything that cannot be cut there (another container,
   * a time past the last frame, a file the clip reader refuses) is copied whole, as before.
   */
  private async frameSource(row: VideoRow, seconds: number, path: string): Promise<number> {
    const objects = this.objects!;
    const object = { key: row.storagePath, identity: row.sha256 ?? row.storagePath, size: row.size };
    if (this.frameClips && row.sha256 && isClippable(row.storagePath, row.contentType)) {
      const base = objects.entity(row.storagePath, row.size, row.sha256, row.createdAt.getTime(), { etag: `"${row.sha256}"`, contentType: row.contentType });
      try {
        const clip = await this.frameClips.get(base, { start: seconds, end: seconds + FRAME_CLIP_SECONDS });
        await writeClipFile(clip, path);
        return 0;
      } catch (error) {
        // A refusal of the cut (400/422) falls back to the whole file; the bucket's failures do not.
        if (!(error instanceof HttpError)) throw error;
      }
    }
    await objects.download(object, path);
    return seconds;
  }

  /**
   * Waits for a frame's job; its failure becomes the client's 422 (storage failures stay 503),
   * or 404 when the video was deleted meanwhile (its source went from under ffmpeg) or its
   * source object is gone.
   */
  private async settle(row: VideoRow, job: Job, output: string, signal?: AbortSignal): Promise<void> {
    try {
      await this.wait(job, output, signal);
    } catch (error) {
      if (job.videoGone && !signal?.aborted) throw videoGone(row.id);
      // The bucket lost the source (removed by hand): the stream's 404, not a frame ffmpeg could not find.
      if (error instanceof HttpError || error instanceof StorageUnavailable || error instanceof ObjectNotFound) throw error;
      if (!(await this.owns(row.id))) throw videoGone(row.id);
      logger("thumbnails").error({ video: row.id, ...errorFields(error) }, "no frame could be extracted");
      throw new HttpError(422, "thumbnail_failed", `No frame could be extracted from video ${row.id} at that time`);
    }
  }

  /**
   * A video is being deleted: its frames being made stop (their ffmpeg killed, their queue places
   * freed), and whoever waits for them hears 404.
   */
  cancelVideo(id: string): void {
    for (const [output, job] of this.jobs) {
      if (job.videoId !== id) continue;
      job.videoGone = true;
      this.jobs.delete(output);
      job.controller.abort();
    }
  }

  /**
   * Runs `work` for the frame at `output` (a path, or a key) in its turn, shared by its requests;
   * throws the 503 or 429 that refuses it before anything starts. Its controller takes it out of
   * the queue, or stops its ffmpeg.
   */
  private start(output: string, videoId: string, work: (signal: AbortSignal) => Promise<void>, client?: string): Job {
    const controller = new AbortController();
    const job: Job = { controller, waiters: 0, done: Promise.resolve(), videoId };
    job.done = this.runs.run(client, () => work(controller.signal), { signal: controller.signal }).finally(() => {
      if (this.jobs.get(output) === job) this.jobs.delete(output);
    });
    // Its waiters see the outcome; a cancelled job has none left to see it.
    job.done.catch(() => {});
    this.jobs.set(output, job);
    return job;
  }

  /** Waits for `job` on behalf of one request, which may leave early (`signal`). */
  private wait(job: Job, output: string, signal: AbortSignal | undefined): Promise<void> {
    job.waiters++;
    if (!signal) return job.done;
    return new Promise<void>((resolve, reject) => {
      const leave = () => {
        if (--job.waiters === 0) {
          // Nobody wants this frame any more: out of the queue, or its ffmpeg killed. A request
          // arriving meanwhile starts a new job rather than joining a cancelled one.
          if (this.jobs.get(output) === job) this.jobs.delete(output);
          job.controller.abort();
        }
        reject(clientGone());
      };
      signal.addEventListener("abort", leave, { once: true });
      job.done.then(resolve, reject).finally(() => signal.removeEventListener("abort", leave));
    });
  }

  /** Creates thumbs/ and keeps it under MAX_CACHED files by dropping the least recently made. */
  private async prepareCache(id: string): Promise<void> {
    const dir = this.storage.thumbsDir(id);
    // Not recursive: a video deleted while this request was on its way has no directory left,
    // and must not get an empty one back.
    await mkdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") throw new HttpError(404, "not_found", `No video with id ${id}`);
      if (error.code !== "EEXIST") throw error;
    });
    await removeStaleParts(dir);
    const names = (await readdir(dir)).filter((n) => n.endsWith(".jpg") && !n.includes(".part"));
    if (names.length < MAX_CACHED) return;
    const dated = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(dir, n)).catch(() => undefined))?.mtimeMs ?? 0 })));
    dated.sort((a, b) => a.t - b.t);
    for (const { n } of dated.slice(0, names.length - MAX_CACHED + 1)) await rm(join(dir, n), { force: true });
  }
}

/** Frame parts in `dir` that no run is writing any more (see STALE_PART_MS). */
async function removeStaleParts(dir: string): Promise<void> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith(PART_SUFFIX));
  const before = Date.now() - STALE_PART_MS;
  for (const name of names) {
    const path = join(dir, name);
    const mtimeMs = (await stat(path).catch(() => undefined))?.mtimeMs;
    if (mtimeMs !== undefined && mtimeMs < before) await rm(path, { force: true });
  }
}

async function exists(path: string): Promise<boolean> {
  return !!(await stat(path).catch(() => undefined))?.isFile();
}
