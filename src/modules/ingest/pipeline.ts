/**
 * The ingest pipeline every new video goes through, whatever brought its bytes (multipart
 * upload, tus upload, the `ingest` CLI):
 *
 *   uploading ──accept()──▶ processing ──job──▶ ready
 *       │                        │
 *       └─ not media: 415,       └─ failed (row kept with a readable error, files removed,
 *          over a limit: 422,       the row too after FAILED_RETENTION_MS)
 *          row and bytes gone
 *
 * `accept` runs while the client waits: ffprobe decides (hardened, see ffmpeg.ts) whether the
 * bytes are media (415 otherwise) within the server's limits on duration, frame size and frame
 * rate (422 otherwise), and a refusal leaves nothing behind. The rest runs after the response,
 * in a background job limited in concurrency: faststart remux of ISO BMFF files whose `moov` box
 * follows their media data (stream copy), the poster (or, for audio, a decode test), and the
 * SHA-256 of the final stored bytes. Clients poll `GET /api/videos/:id` until `ready`.
 *
 * Jobs interrupted by a shutdown keep their staged bytes (videos/<id>/incoming) and are resumed
 * by the next start-up (`resumeInterrupted`).
 */
import { errorFields, logger } from "../../lib/log.ts";
import { jobDuration } from "../../metrics/metrics.ts";
import { copyFile, mkdir, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { VideoRow } from "../../db/schema.ts";
import { HttpError, notFound } from "../../http/errors.ts";
import type { Thumbnails } from "../thumbnails/service.ts";
import { hashFile } from "../../lib/hash.ts";
import { unsupportedMedia, type IngestMeta, type IngestOptions, type MediaFields, type VideoLibrary } from "../../library/videos.ts";
import { ToolError, ingestUnavailable, type MediaTools } from "../../media/tools.ts";
import { isoMuxerFor } from "../../media/formats.ts";
import { Limiter, WaitAborted } from "../../lib/limiter.ts";
import { BoxError, isFaststart, scanFile } from "../../media/mp4-atoms.ts";
import { DEFAULT_INGEST_LIMITS, MediaLimitError, NotMediaError, checkLimits, type IngestLimits, type MediaInfo } from "../../media/probe.ts";
import { newOwnerId, ownerIsDead } from "../../lib/process-identity.ts";

export interface AcceptOptions extends IngestOptions {
  /** SHA-256 of the staged bytes when the receiver computed it while streaming. */
  sha256?: string;
}

/** 422: media Spool can read but this server will not take (MAX_DURATION_S, MAX_PIXELS, MAX_FPS). */
export const mediaLimitExceeded = (message: string) => new HttpError(422, "media_limit_exceeded", message);

interface Job {
  controller: AbortController;
  done: Promise<void>;
}

const log = logger("ingest");

export function mediaFields(info: MediaInfo): MediaFields {
  return {
    contentType: info.contentType,
    container: info.container,
    duration: info.duration,
    width: info.width,
    height: info.height,
    videoCodec: info.videoCodec,
    audioCodec: info.audioCodec,
    bitrate: info.bitrate,
  };
}

function describe(error: unknown): string {
  if (error instanceof ToolError || error instanceof BoxError || error instanceof NotMediaError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

async function exists(path: string): Promise<boolean> {
  return !!(await stat(path).catch(() => undefined));
}

export class IngestPipeline {
  private readonly jobs = new Map<string, Job>();
  private readonly limiter: Limiter;
  private closed = false;
  /** Recorded on every video this process processes, so others can tell when it died. */
  readonly ownerId = newOwnerId();

  constructor(
    readonly library: VideoLibrary,
    readonly tools: MediaTools | undefined,
    readonly thumbnails: Thumbnails,
    concurrency = 2,
    /** What uploads may be: every way in (multipart, tus, the CLI) goes through `accept`. */
    readonly limits: Readonly<IngestLimits> = DEFAULT_INGEST_LIMITS,
  ) {
    this.limiter = new Limiter(concurrency);
    library.onRemove((id) => this.cancel(id));
    library.setIngester(async (sourcePath, meta, options) => {
      const row = await this.ingestFile(sourcePath, meta, options);
      await this.settled(row.id);
      return (await library.get(row.id)) ?? row;
    });
  }

  get available(): boolean {
    return this.tools !== undefined;
  }

  /** Throws the 503 uploads answer when ffmpeg/ffprobe are missing. */
  requireTools(): MediaTools {
    if (!this.tools) throw ingestUnavailable();
    return this.tools;
  }

  /**
   * Decides whether the staged bytes of an `uploading` video are media (415 otherwise) within
   * the limits (422 otherwise). Refusal deletes the bytes and the row. Acceptance moves the
   * bytes into the video's directory, records the metadata, marks the video `processing` and
   * queues the rest; it returns that row.
   */
  async accept(row: VideoRow, stagedFrom: string, options: AcceptOptions = {}): Promise<VideoRow> {
    const id = row.id;
    let info: MediaInfo;
    try {
      const tools = this.requireTools();
      info = await tools.probe(stagedFrom);
      if (!options.trusted) checkLimits(info, this.limits);
    } catch (error) {
      await this.library.abandon(id, stagedFrom);
      if (error instanceof NotMediaError) throw unsupportedMedia(`${error.message}. Spool accepts video and audio files only.`);
      if (error instanceof MediaLimitError) throw mediaLimitExceeded(error.message);
      if (error instanceof ToolError && error.timedOut) throw unsupportedMedia("The file could not be identified as audio or video in time");
      throw error;
    }
    const staged = this.library.storage.stagedPath(id);
    let processing: VideoRow | undefined;
    try {
      await mkdir(this.library.storage.videoDir(id), { recursive: true });
      await rename(stagedFrom, staged);
      processing = await this.library.markProcessing(id, mediaFields(info), this.ownerId);
    } catch (error) {
      await this.library.abandon(id, stagedFrom);
      throw error;
    }
    if (!processing) {
      // Deleted while its bytes were arriving.
      await this.library.storage.removeVideo(id);
      throw notFound(`Video ${id} was deleted during its upload`);
    }
    this.start(id, info, options.sha256);
    return processing;
  }

  /** Adds a local file (the CLI, the demo seed): copied, never moved; resolves when accepted. */
  async ingestFile(sourcePath: string, meta: IngestMeta, options: IngestOptions = {}): Promise<VideoRow> {
    this.requireTools();
    const row = await this.library.begin(meta);
    const tempPath = this.library.storage.tempPath();
    try {
      await copyFile(sourcePath, tempPath);
    } catch (error) {
      await this.library.abandon(row.id, tempPath);
      throw error;
    }
    return this.accept(row, tempPath, options);
  }

  /**
   * Adds a local file whose metadata is already known, without ffmpeg: only for the demo seed
   * on a server without ffmpeg (its fixture is a known, faststart MP4). Resolves when ready.
   */
  async ingestTrusted(sourcePath: string, meta: IngestMeta, media: MediaFields & { container: string }): Promise<VideoRow> {
    const row = await this.library.begin(meta);
    const storage = this.library.storage;
    try {
      const final = storage.sourcePath(row.id, media.container);
      await mkdir(storage.videoDir(row.id), { recursive: true });
      await copyFile(sourcePath, final);
      await this.library.markProcessing(row.id, media);
      return (await this.library.markReady(row.id, { storagePath: storage.relative(final), ...(await hashFile(final)) }))!;
    } catch (error) {
      await this.library.abandon(row.id);
      throw error;
    }
  }

  /** Resolves when the video's background job (if any) has finished, whatever its outcome. */
  async settled(id: string): Promise<void> {
    await this.jobs.get(id)?.done;
  }

  /** Stops a video's job (its row is being deleted) and waits until it let go of its files. */
  async cancel(id: string): Promise<void> {
    const job = this.jobs.get(id);
    if (!job) return;
    job.controller.abort();
    await job.done;
  }

  /** Stops every job, keeping staged bytes so the next start-up resumes them. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.jobs.values()) job.controller.abort();
    await Promise.all([...this.jobs.values()].map((j) => j.done));
  }

  /**
   * Re-queues videos left `processing`. At start-up (the primary, before serving) that is every
   * such video: their jobs died with the last run. Later, periodically (`orphansOnly`), only those
   * whose owner was another process on this host that has since died (a crashed WORKERS process).
   */
  async resumeInterrupted({ orphansOnly = false }: { orphansOnly?: boolean } = {}): Promise<number> {
    let resumed = 0;
    for (const { id, owner } of await this.library.processingOwners()) {
      if (this.jobs.has(id)) continue;
      if (orphansOnly && (owner === null || !ownerIsDead(owner))) continue;
      if (!(await this.library.claimProcessing(id, this.ownerId))) continue;
      resumed++;
      const row = await this.library.get(id);
      if (!row) continue;
      const staged = this.library.storage.stagedPath(id);
      const stored = row.container ? this.library.storage.sourcePath(id, row.container) : undefined;
      if (!(await exists(staged)) && stored && (await exists(stored))) await rename(stored, staged);
      if (!this.tools) {
        await this.library.markFailed(id, "Processing was interrupted and ffmpeg/ffprobe are not available to finish it");
        continue;
      }
      if (!(await exists(staged))) {
        await this.library.markFailed(id, "Processing was interrupted by a server restart and the uploaded file was lost");
        continue;
      }
      try {
        const info = await this.tools.probe(staged);
        this.start(id, info);
      } catch (error) {
        await this.library.markFailed(id, `Processing failed: ${describe(error)}`);
      }
    }
    return resumed;
  }

  private start(id: string, info: MediaInfo, sha256?: string): void {
    const controller = new AbortController();
    // Cancelled while still queued (deleted, or shutting down): it leaves the queue at once, its
    // staged bytes untouched, instead of waiting for the running jobs to finish.
    const done = this.limiter
      .run(() => this.process(id, info, sha256, controller.signal), controller.signal)
      .catch((error) => {
        if (!(error instanceof WaitAborted)) log.error({ video: id, ...errorFields(error) }, "unexpected failure");
      })
      .finally(() => this.jobs.delete(id));
    this.jobs.set(id, { controller, done });
  }

  private async process(id: string, info: MediaInfo, sha256: string | undefined, signal: AbortSignal): Promise<void> {
    const tools = this.requireTools();
    const storage = this.library.storage;
    const staged = storage.stagedPath(id);
    const final = storage.sourcePath(id, info.extension);
    const remuxed = join(storage.videoDir(id), "remux.part");
    let digest = sha256;
    const started = performance.now();
    const took = () => (performance.now() - started) / 1000;
    try {
      const muxer = isoMuxerFor(info.container);
      if (muxer && !isFaststart(await scanFile(staged))) {
        await tools.remuxFaststart(staged, remuxed, info.demuxer, muxer, { signal });
        if (!isFaststart(await scanFile(remuxed))) throw new Error("the remuxed file still has its index after the media data");
        await rename(remuxed, final);
        await rm(staged, { force: true });
        digest = undefined;
      } else {
        await rename(staged, final);
      }
      // Prove the media decodes: a poster frame for video, a few seconds for audio.
      if (info.hasVideo) await this.thumbnails.makePoster(id, final, info, { signal });
      else await tools.decodeAudio(final, info.demuxer, 2, { signal });
      if (signal.aborted) throw new ToolError("cancelled");
      const hashed = digest ? { sha256: digest, size: (await stat(final)).size } : await hashFile(final);
      await this.library.markReady(id, { storagePath: storage.relative(final), ...hashed });
      jobDuration.observe({ kind: "ingest", outcome: "done" }, took());
    } catch (error) {
      await rm(remuxed, { force: true });
      if (signal.aborted) {
        // Deleted (the remover cleans up) or shutting down (keep the bytes for the next start).
        if (this.closed && !(await exists(staged)) && (await exists(final))) await rename(final, staged).catch(() => {});
        return;
      }
      const reason = error instanceof HttpError ? error.message : describe(error);
      log.warn({ video: id, reason }, "processing failed");
      jobDuration.observe({ kind: "ingest", outcome: "failed" }, took());
      await this.library.markFailed(id, `Processing failed: ${reason}`);
    }
  }
}
