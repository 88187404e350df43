/**
 * The `ingest` job: what happens to an accepted upload after the response, run by any worker
 * (./pipeline.ts queues it). A stream-copy remux of ISO BMFF files whose `moov` box follows
 * their media data (faststart) and of Matroska/WebM recordings whose header has no duration,
 * the poster (or, for audio, a decode test), the SHA-256 of the stored bytes, and only then
 * `ready`: nothing half-written is ever served.
 *
 * Idempotent, because a job can run again (its worker died, or shut down mid-way): it starts
 * from the staged bytes, or from the stored file when an earlier run got that far, and does
 * nothing for a video that is no longer `processing`. Media that fails here (it does not decode)
 * fails the video at once; only a worker that vanished makes the queue run it again.
 */
import { DiskFull, isDiskFull } from "../../lib/disk-full.ts";
import { rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { TranscodeConfig } from "../../config.ts";
import type { JobRow } from "../../db/schema.ts";
import { HttpError } from "../../http/errors.ts";
import { syncDirectory, syncFile } from "../../lib/durable.ts";
import { hashFile } from "../../lib/hash.ts";
import { logger } from "../../lib/log.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { isoMuxerFor, matroskaMuxerFor } from "../../media/formats.ts";
import { BoxError, isFaststart, scanFile } from "../../media/mp4-atoms.ts";
import { DEFAULT_INGEST_LIMITS, NotMediaError, checkLimits, type IngestLimits, type MediaInfo } from "../../media/probe.ts";
import { ToolError, type MediaTools } from "../../media/tools.ts";
import type { JobContext, JobHandler, Settled } from "../../queue/runner.ts";
import { StorageUnavailable } from "../../storage/object-store.ts";
import type { Thumbnails } from "../thumbnails/service.ts";
import { mediaFields, type IngestPayload } from "./pipeline.ts";

const log = logger("ingest");

/**
 * How long an ingest waits for received bytes that only the machine that accepted them has (the
 * bucket was down then; that machine shares them once it is back) before the video fails.
 */
export const STAGED_ELSEWHERE_PATIENCE_MS = 24 * 60 * 60 * 1000;

/** The bytes are on another machine, not yet in the bucket: not the media's fault; try again later. */
class StagedElsewhere extends Error {
  override name = "StagedElsewhere";
  readonly transient = true;
}

function describe(error: unknown): string {
  if (error instanceof ToolError || error instanceof BoxError || error instanceof NotMediaError || error instanceof HttpError) return error.message;
  return error instanceof Error ? error.message : String(error);
}

async function exists(path: string): Promise<boolean> {
  return !!(await stat(path).catch(() => undefined));
}

function parsePayload(text: string | null): IngestPayload {
  try {
    return text ? (JSON.parse(text) as IngestPayload) : {};
  } catch {
    return {};
  }
}

export class IngestJobs implements JobHandler {
  readonly kind = "ingest" as const;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Videos seen `processing` without a job by the last sweep (queued if still so). */
  private suspects = new Set<string>();
  constructor(
    private readonly library: VideoLibrary,
    private readonly tools: MediaTools,
    private readonly thumbnails: Thumbnails,
    private readonly queue: { enqueue(kind: "ingest", videoId: string): Promise<unknown>; hasActive(videoId: string, kind: "ingest"): Promise<boolean> },
    settings: Pick<TranscodeConfig, "maxAttempts" | "retryBaseMs">,
    /** The server's limits, for what only processing can tell (the duration of a file whose header has none). */
    private readonly limits: Readonly<IngestLimits> = DEFAULT_INGEST_LIMITS,
    /** Processing jobs at once in one worker (each runs ffmpeg). */
    readonly concurrency = 2,
  ) {
    this.maxAttempts = settings.maxAttempts;
    // A crashed ingest is retried soon: the client is waiting for its video.
    this.retryBaseMs = Math.min(settings.retryBaseMs, 5000);
    this.retryMaxMs = 60_000;
  }

  async run(job: JobRow, { signal }: JobContext): Promise<void> {
    const id = job.videoId;
    const row = await this.library.get(id);
    const storage = this.library.storage;
    if (!row || row.status !== "processing") {
      // Run again after the video became ready: its worker died between `markReady` and dropping
      // the bucket's copy of the received bytes, which no sweep would ever remove (its row owns
      // `videos/<id>/`), a second full-size object for the video's whole life.
      if (row?.status === "ready") await storage.dropShared(id);
      return;
    }
    const staged = storage.stagedPath(id);
    const payload = parsePayload(job.payload);
    const stored = row.container ? storage.sourcePath(id, row.container) : undefined;
    // An earlier run got as far as moving the bytes into place: start again from them. They may
    // be that run's remux, so the received bytes' hash (payload.sha256) no longer describes them.
    const resumed = !(await exists(staged)) && stored !== undefined && (await exists(stored));
    if (resumed) await rename(stored, staged);
    // STORAGE=s3: accepted by another machine (a replica; this may be a separate worker): its
    // bytes are in the bucket. A bucket that does not answer throws, and the job runs again.
    if (!(await exists(staged)) && !(await storage.fetchStaged(id))) {
      // Kept only by the machine that accepted them (the bucket was down then): its worker, or a
      // later run once that machine has shared them (VideoLibrary.shareWaitingUploads),
      // processes them; this attempt is not the media's fault, and is not counted.
      if (payload.shared === false) {
        // Both times on the queue's clock (the claim stamped heartbeatAt), not this machine's.
        if ((job.heartbeatAt ?? new Date()).getTime() - job.createdAt.getTime() < STAGED_ELSEWHERE_PATIENCE_MS) {
          throw new StagedElsewhere(`the received bytes of video ${id} are only on the machine that accepted them, which shares them once the bucket answers`);
        }
        await this.library.markFailed(id, "The server that accepted the upload never shared its bytes through object storage", "processing");
        return;
      }
      // Said in the log too: with local storage, a worker that does not share the accepting
      // server's DATA_DIR ends up here (an unsupported setup, README "Scaling out").
      log.warn({ video: id, staged }, "the received bytes are neither here nor in the bucket: the video fails (do this worker and the server that accepted the upload share DATA_DIR or object storage?)");
      await this.library.markFailed(id, "Processing was interrupted and the uploaded file was lost", "processing");
      return;
    }
    const remuxed = join(storage.videoDir(id), "remux.part");
    try {
      let info: MediaInfo = payload.info ?? (await this.tools.probe(staged, { signal }));
      // Known only now: what ffprobe says about the remux of a file whose header had no duration.
      let found: MediaInfo | undefined;
      const final = storage.sourcePath(id, info.extension);
      let digest = resumed ? undefined : payload.sha256;
      // The received bytes' hash, for clients to check what they sent (the stored file's differs
      // after a remux). Uploads that streamed through a hasher already have it; otherwise it is
      // recorded before the bytes are moved, so a resumed run finds it. A resumed run without it
      // may hold a remux, not the received bytes: unknown is better than wrong.
      const source = row.sourceSha256 || resumed ? undefined : await hashFile(staged);
      if (source) await this.library.recordReceived(id, source);
      digest ??= source?.sha256;
      const muxer = isoMuxerFor(info.container);
      const matroska = info.duration === null ? matroskaMuxerFor(info.container) : undefined;
      let remux = true;
      if (muxer && !isFaststart(await scanFile(staged))) {
        await this.tools.remuxFaststart(staged, remuxed, info.demuxer, muxer, { signal });
        if (!isFaststart(await scanFile(remuxed))) throw new Error("the remuxed file still has its index after the media data");
      } else if (matroska) {
        // A recording's WebM (MediaRecorder) names neither its duration nor its cues: browsers
        // could not seek in it, HLS could not segment it, thumbnails had no end to snap to, and
        // MAX_DURATION_S could not judge it when it was accepted. The remux has both: judged now.
        await this.tools.remuxIndexed(staged, remuxed, info.demuxer, matroska, { signal });
        found = await this.tools.probe(remuxed, { signal });
        checkLimits(found, this.limits);
        info = found;
      } else remux = false;
      if (remux) {
        await rename(remuxed, final);
        await rm(staged, { force: true });
        digest = undefined;
      } else {
        await rename(staged, final);
      }
      try {
        // Prove the media decodes: a poster frame for video, a few seconds for audio.
        const poster = info.hasVideo ? await this.thumbnails.makePoster(id, final, info, { signal }) : undefined;
        if (!info.hasVideo) await this.tools.decodeAudio(final, info.demuxer, 2, { signal });
        if (signal.aborted) throw new ToolError("cancelled");
        // Durable before the row says ready (src/lib/durable.ts): a remux and the poster are new
        // files, and the renames changed the video's directory.
        await syncFile(final);
        if (poster) await syncFile(poster);
        await syncDirectory(storage.videoDir(id));
        const hashed = digest ? { sha256: digest, size: (await stat(final)).size } : await hashFile(final);
        await this.library.markReady(id, { storagePath: storage.relative(final), ...hashed }, source, found && mediaFields(found));
        await storage.dropShared(id);
      } catch (error) {
        // Stopped (a shutdown, the job taken away): the next run starts from the staged bytes
        // when they are the received ones; a remux stays where it is, and the next run starts
        // from it as from any file already in place (hashing it anew).
        if (signal.aborted && digest !== undefined && !(await exists(staged))) await rename(final, staged).catch(() => {});
        throw error;
      }
    } catch (error) {
      await rm(remuxed, { force: true });
      // The bucket is down (STORAGE=s3): not the media's fault. The job runs again later, from
      // the stored file (see the start of run).
      if (signal.aborted || error instanceof StorageUnavailable) throw error;
      // A full disk: the received bytes stay, and the job runs again (it waits, uncounted).
      if (isDiskFull(error)) throw new DiskFull("to process the upload", error);
      // The media itself is at fault: the video fails now; a retry would fail the same way.
      const reason = describe(error);
      log.warn({ video: id, reason }, "processing failed");
      await this.library.markFailed(id, `Processing failed: ${reason}`, "processing");
      throw new IngestFailed(reason);
    }
  }

  async settled(job: JobRow, outcome: Settled): Promise<void> {
    // Only a worker that kept dying gets here with a video still processing.
    if (outcome.outcome === "failed") {
      await this.library.markFailed(job.videoId, `Processing failed: ${outcome.error}`, "processing");
    }
  }

  /** `processing` videos without an ingest job (a crash between accepting and queueing). */
  async sweep(): Promise<void> {
    // Seen twice, a sweep interval apart: accepting marks the video `processing`, then queues its
    // job, and a job queued by a sweep in between would take the place of the accept's (one active
    // job per video), without its payload: its hash, its probe, and `shared: false`, without
    // which a worker elsewhere fails the video as lost instead of waiting for its bytes.
    const suspects = new Set<string>();
    for (const id of await this.library.idsWithStatus("processing")) {
      if (await this.queue.hasActive(id, "ingest")) continue;
      if (this.suspects.has(id)) await this.queue.enqueue("ingest", id);
      else suspects.add(id);
    }
    this.suspects = suspects;
  }
}

/** The media failed to process: recorded on the video; the job fails without retrying. */
export class IngestFailed extends Error {
  override name = "IngestFailed";
  readonly permanent = true;
}
