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
 * `accept` runs while the client waits: ffprobe decides (hardened, see src/media/tools.ts)
 * whether the bytes are media (415 otherwise) within the server's limits on duration, frame size
 * and frame rate (422 otherwise), and a refusal leaves nothing behind. The rest is an `ingest`
 * job in the durable queue (./job.ts), run by any worker: faststart remux of ISO BMFF files
 * whose `moov` box follows their media data (stream copy), the poster (or, for audio, a decode
 * test), and the SHA-256 of the final stored bytes. Clients poll `GET /api/videos/:id` (or its
 * event stream) until `ready`.
 *
 * The staged bytes (videos/<id>/incoming) stay until the job has finished, so a job interrupted
 * by a shutdown or a crash is run again from them by the next worker.
 */
import { copyFile, rename, rm, stat } from "node:fs/promises";
import type { VideoRow } from "../../db/schema.ts";
import { HttpError, notFound } from "../../http/errors.ts";
import { makeDirectoryDurably, syncDirectory, syncFile } from "../../lib/durable.ts";
import { hashFile } from "../../lib/hash.ts";
import { errorFields, logger } from "../../lib/log.ts";
import { StorageUnavailable } from "../../storage/object-store.ts";
import { unsupportedMedia, type IngestMeta, type IngestOptions, type MediaFields, type VideoLibrary } from "../../library/videos.ts";
import { ToolError, ingestUnavailable, type MediaTools } from "../../media/tools.ts";
import { DEFAULT_INGEST_LIMITS, MediaLimitError, NotMediaError, checkLimits, type IngestLimits, type MediaInfo } from "../../media/probe.ts";
import type { JobQueue } from "../../queue/jobs.ts";
import { isoMuxerFor } from "../../media/formats.ts";
import { incompleteFromOverrun } from "../../media/incomplete.ts";
import { BoxError, fileReader, scanFile } from "../../media/mp4-atoms.ts";

export interface AcceptOptions extends IngestOptions {
  /** SHA-256 of the staged bytes when the receiver computed it while streaming. */
  sha256?: string;
  /**
   * On refusal, keep the row as `failed` with the refusal's message instead of removing it (a
   * URL import: no client is waiting for the 415, so the library must say what happened).
   */
  keepRow?: boolean;
}

/** 422: media Spool can read but this server will not take (MAX_DURATION_S, MAX_PIXELS, MAX_FPS). */
export const mediaLimitExceeded = (message: string) => new HttpError(422, "media_limit_exceeded", message);

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

export interface IngestPayload {
  /** SHA-256 of the received bytes, when the receiver computed it while streaming. */
  sha256?: string;
  /** What ffprobe found at accept time (absent: probed again). */
  info?: MediaInfo;
  /**
   * STORAGE=s3: false when the received bytes could not be put in the bucket (it did not
   * answer): only the accepting machine has them, and a worker elsewhere waits for it.
   */
  shared?: boolean;
}

/** 415 for an ISO BMFF file whose boxes declare more bytes than arrived ("incomplete file: ..."). */
async function assertComplete(path: string, size: number, container: string): Promise<void> {
  try {
    await scanFile(path);
  } catch (error) {
    if (!(error instanceof BoxError)) throw error;
    const message = await incompleteFromOverrun(error.message, fileReader(path), size, container === "mov" ? "qt" : undefined);
    throw unsupportedMedia(message ?? `The file is damaged: ${error.message}`);
  }
}

/**
 * Why ffprobe could not identify an ISO BMFF file (it starts with `ftyp`) that was cut short, or
 * null. A non-faststart MP4 cut short has lost its index with its tail, so ffprobe refuses it
 * outright; its boxes still tell how much of it arrived.
 */
async function incompleteIsoFile(path: string): Promise<string | null> {
  const read = fileReader(path);
  const size = Bun.file(path).size;
  const head = await read(0, 12);
  if (head.length < 12 || new TextDecoder().decode(head.subarray(4, 8)) !== "ftyp") return null;
  try {
    await scanFile(path);
    return null;
  } catch (error) {
    if (!(error instanceof BoxError)) throw error;
    return incompleteFromOverrun(error.message, read, size, new TextDecoder().decode(head.subarray(8, 12)));
  }
}

/** The client's error for staged bytes that could not be accepted; any other error as it is. */
async function refusalFor(error: unknown, path: string): Promise<unknown> {
  if (error instanceof NotMediaError) {
    const incomplete = await incompleteIsoFile(path).catch(() => null);
    return unsupportedMedia(incomplete ?? `${error.message}. Spool accepts video and audio files only.`);
  }
  if (error instanceof MediaLimitError) return mediaLimitExceeded(error.message);
  if (error instanceof ToolError && error.timedOut) return unsupportedMedia("The file could not be identified as audio or video in time");
  return error;
}

/** Milliseconds between two looks at the database while waiting for a job run by another process. */
const SETTLE_POLL_MS = 250;

export class IngestPipeline {
  constructor(
    readonly library: VideoLibrary,
    private readonly queue: JobQueue,
    readonly tools: MediaTools | undefined,
    /** What uploads may be: every way in (multipart, tus, the CLI) goes through `accept`. */
    readonly limits: Readonly<IngestLimits> = DEFAULT_INGEST_LIMITS,
    /** Called when a job was queued here (the worker in this process, if any, looks at once). */
    private readonly queued: () => void = () => {},
  ) {}

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
   * queues its ingest job; it returns that row.
   */
  async accept(row: VideoRow, stagedFrom: string, options: AcceptOptions = {}): Promise<VideoRow> {
    const id = row.id;
    let info: MediaInfo;
    let size: number;
    try {
      const tools = this.requireTools();
      info = await tools.probe(stagedFrom);
      if (!options.trusted) checkLimits(info, this.limits);
      size = (await stat(stagedFrom)).size;
      // A cut-short MP4 often still probes (its index is whole); say so now, not after processing.
      if (isoMuxerFor(info.container)) await assertComplete(stagedFrom, size, info.container);
    } catch (error) {
      const refusal = await refusalFor(error, stagedFrom);
      if (options.keepRow && refusal instanceof HttpError) {
        await rm(stagedFrom, { force: true });
        await this.library.markFailed(id, refusal.message);
      } else await this.library.abandon(id, stagedFrom);
      throw refusal;
    }
    const staged = this.library.storage.stagedPath(id);
    try {
      // Durable before the row says so and the client hears 201 (src/lib/durable.ts): the bytes,
      // then the directory entries the rename (and a new video directory) made.
      await syncFile(stagedFrom);
      const videoDir = this.library.storage.videoDir(id);
      await makeDirectoryDurably(videoDir);
      await rename(stagedFrom, staged);
      await syncDirectory(videoDir);
    } catch (error) {
      await this.library.abandon(id, stagedFrom);
      throw error;
    }
    // STORAGE=s3: the job may run on another machine's worker (a separate `bun run worker`, a
    // replica), which has the database and the bucket but not this disk. A bucket that does not
    // answer now does not refuse the upload: the bytes stay here, and this machine's worker (or
    // a later one, once they are shared) processes them. Shared before the row says
    // `processing`: any worker's ingest sweep queues a job for a `processing` video without one,
    // and that job, run on a machine without these bytes while the put was still going (seconds
    // a gigabyte), found them neither on its disk nor in the bucket and failed the video as
    // "the uploaded file was lost" while its client was being told 201.
    let shared: boolean | undefined;
    try {
      shared = (await this.library.storage.shareStaged(id)) || undefined;
    } catch (error) {
      if (!(error instanceof StorageUnavailable)) {
        await this.library.abandon(id);
        throw error;
      }
      shared = false;
      logger("ingest").warn({ video: id, ...errorFields(error) }, "the bucket did not take the received bytes: only this machine's worker can process them");
    }
    let processing: VideoRow | undefined;
    try {
      processing = await this.library.markProcessing(id, mediaFields(info), { sha256: options.sha256, size });
    } catch (error) {
      await this.library.abandon(id);
      throw error;
    }
    if (!processing) {
      // Deleted while its bytes were arriving (or being shared).
      await this.library.storage.removeVideo(id);
      throw notFound(`Video ${id} was deleted during its upload`);
    }
    // A crash between these two writes leaves a `processing` video without a job: the ingest
    // handler's sweep queues it, once two sweeps have found it so (not a sweep in between).
    await this.queue.enqueue("ingest", id, { sha256: options.sha256, info, ...(shared === false ? { shared } : {}) } satisfies IngestPayload);
    this.queued();
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
   * Adds a local file through the whole pipeline and resolves with the row once processing has
   * finished: `ready`, or `failed` with its error (the `ingest` CLI, the demo seed, tests).
   * Rejects with 415 for non-media, 422 for media over the ingest limits, 503 without ffmpeg.
   */
  async ingestPath(sourcePath: string, meta: IngestMeta, options: IngestOptions = {}): Promise<VideoRow> {
    const row = await this.ingestFile(sourcePath, meta, options);
    return (await this.settled(row.id)) ?? row;
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
      await makeDirectoryDurably(storage.videoDir(row.id));
      await copyFile(sourcePath, final);
      await syncFile(final);
      await syncDirectory(storage.videoDir(row.id));
      const hashed = await hashFile(final);
      await this.library.markProcessing(row.id, media, hashed);
      return (await this.library.markReady(row.id, { storagePath: storage.relative(final), ...hashed }))!;
    } catch (error) {
      await this.library.abandon(row.id);
      throw error;
    }
  }

  /**
   * Resolves when the video is no longer being imported or processed (its jobs ran here or in
   * any other process), with its row; undefined when it was deleted.
   */
  async settled(id: string): Promise<VideoRow | undefined> {
    for (;;) {
      const row = await this.library.get(id);
      if (!row || (row.status !== "processing" && row.status !== "importing")) return row;
      // This process's writes are heard at once; other processes' are polled.
      await new Promise<void>((resolve) => {
        const done = (changed: string) => {
          if (changed !== id && changed !== "*") return;
          finish();
        };
        const timer = setTimeout(() => finish(), SETTLE_POLL_MS);
        const finish = () => {
          clearTimeout(timer);
          this.library.events.off("invalidated", done);
          resolve();
        };
        this.library.events.on("invalidated", done);
      });
    }
  }
}
