/**
 * The hand-over of completed uploads to the ingest pipeline: once per upload however many
 * requests complete it (`finishOnce`), from the final PATCH (tus.ts), from a PATCH that ran past
 * the declared length (`finishIfComplete`), at start-up for uploads a crash cut short
 * (`resumeCompleted`), and in the primary for uploads whose hand-over met an outage
 * (`retryHandOvers`).
 */
import { errorFields, logger } from "../../lib/log.ts";
import { HttpError } from "../../http/errors.ts";
import { isDatabaseUnavailable } from "../../db/unavailable.ts";
import { StorageUnavailable } from "../../storage/object-store.ts";
import type { IngestPipeline } from "../ingest/pipeline.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { FileLocker } from "./file-locker.ts";
import type { UploadFiles } from "./upload-files.ts";
import { videoIdOfUpload } from "./upload-ids.ts";

/**
 * A complete upload whose bytes are younger than this may be in its final PATCH still, between
 * its last byte and its own hand-over (@tus/server lets go of the upload's lock in between):
 * the retry pass leaves it to that request.
 */
const HANDOVER_GRACE_MS = 5_000;

export class UploadHandOver {
  /**
   * Videos whose upload is being handed over in this process: a refusal or a failure in the
   * middle removes the video row (IngestPipeline.accept), and that removal must not take the
   * upload's bytes with it; the hand-over's caller removes them once the row is really gone.
   */
  private readonly handingOver = new Set<string>();
  private retryPass: Promise<number> | undefined;
  /** Uploads whose retried hand-over failed and was logged: logged once, not at every pass. */
  private readonly stalled = new Set<string>();

  constructor(
    private readonly library: VideoLibrary,
    private readonly ingest: IngestPipeline,
    private readonly files: UploadFiles,
    /** The cross-process locker, loaded on first use (see tus.ts). */
    private readonly fileLocker: () => Promise<FileLocker>,
  ) {}

  /** Whether video `videoId`'s upload is being handed over in this process (see `handingOver`). */
  isHandingOver(videoId: string): boolean {
    return this.handingOver.has(videoId);
  }

  /**
   * Hands a completed upload over once, however many requests complete it. @tus/server 2.4.5
   * lets go of the upload's lock before its finish hook, so a final PATCH sent again (a client
   * that lost the first one's answer, or an empty PATCH at the final offset) handed the same
   * bytes over twice: two ingests, and a staged copy left in tmp/ each time. The hand-over
   * holds a lock of its own (across the processes sharing DATA_DIR); one that comes second
   * finds the upload completed and answers as the first did. A completed upload leaves its
   * size behind (`UploadFiles.completedSize`), so that its URL still says it is complete.
   */
  async finishOnce(uploadId: string, size: number): Promise<void> {
    const lock = (await this.fileLocker()).newLock(this.files.completionLockId(uploadId));
    // Nobody is asked to let go: a second hand-over waits for the first (at most the locker's timeout).
    await lock.lock(new AbortController().signal, async () => {});
    try {
      if ((await this.files.completedSize(uploadId)) !== undefined) return;
      const id = videoIdOfUpload(uploadId);
      if (id) this.handingOver.add(id);
      try {
        await this.finish(uploadId);
      } finally {
        if (id) this.handingOver.delete(id);
      }
      await this.files.markCompleted(uploadId, size);
    } finally {
      await lock.unlock();
    }
  }

  /**
   * A PATCH that ran past the declared length stored every byte up to it before @tus/server
   * refused the rest (413) and skipped its finish hook: the upload is complete, and a client
   * resuming it hears so and sends nothing more. So it is handed over here, as the hook would
   * have; the request itself still gets its 413.
   */
  async finishIfComplete(uploadId: string): Promise<void> {
    const complete = await this.files.storedWhole(uploadId);
    if (!complete) return;
    try {
      await this.finishOnce(uploadId, complete.declared);
    } catch (error) {
      // Refused (415/422: the video is gone, as after a final PATCH) or failed: logged, not answered.
      if (!(error instanceof HttpError)) logger("uploads").error({ video: videoIdOfUpload(uploadId), ...errorFields(error) }, "a completed upload could not be handed over");
    }
  }

  /**
   * The last byte arrived: the bytes go to the ingest pipeline. They are handed over as a hard
   * link (no copy), because @tus/server still reads the upload after this hook; `handle`
   * (tus.ts) removes the tus files once the response is made.
   */
  private async finish(uploadId: string): Promise<void> {
    const id = videoIdOfUpload(uploadId);
    const row = id ? await this.library.get(id) : undefined;
    if (!row || row.status !== "uploading") throw new HttpError(410, "upload_expired", `This upload no longer belongs to a video being uploaded`);
    const staged = this.library.storage.tempPath();
    await this.files.linkData(uploadId, staged);
    await this.ingest.accept(row, staged);
  }

  /**
   * Uploads whose last byte was stored but whose hand-over to ingest a crash cut short (the
   * video still `uploading`): a client asking for the offset hears that the upload is complete
   * and sends nothing more, so nothing would ever finish them. At start-up they are handed over
   * as the final PATCH would have (a refusal ends them as it would have: 415 or 422 leaves no
   * video). Without ffmpeg they are left for a later start. Returns how many were handed over.
   */
  async resumeCompleted(): Promise<number> {
    // Without ffmpeg every hand-over would be refused (503) and the upload dropped with it.
    if (!this.ingest.available) return 0;
    let resumed = 0;
    for (const { uploadId, id, declared } of await this.files.completeUploads()) {
      if ((await this.library.get(id))?.status !== "uploading") continue;
      try {
        await this.finishOnce(uploadId, declared);
        resumed++;
      } catch (error) {
        // A refusal ends the upload as the final PATCH's would have. Anything else (a full disk,
        // the database) leaves it for the next start, and must not stop this one.
        if (error instanceof HttpError) logger("uploads").warn({ video: id, code: error.code, reason: error.message }, "a completed upload was refused at start-up");
        else logger("uploads").error({ video: id, ...errorFields(error) }, "a completed upload could not be handed over; it is retried shortly");
      }
      if ((await this.library.get(id))?.status !== "uploading") await this.files.discardUpload(uploadId);
    }
    return resumed;
  }

  /**
   * Uploads whose bytes are complete but whose video is still `uploading`: their final PATCH's
   * hand-over failed (the database or the bucket did not answer: that PATCH got 503), and their
   * client, told by HEAD that the upload is complete, sends nothing more. The primary hands them
   * over every HANDOVER_RETRY_MS (`UploadSweeps.start`), as `resumeCompleted` does at start-up and
   * under the same lock as a PATCH's hand-over (`finishOnce`), so never twice: a refusal (415,
   * 422) ends the upload as the final PATCH would have; a database still down leaves it for the
   * next pass, logged once. Uploads written to in the last HANDOVER_GRACE_MS are left to their
   * own final PATCH. One pass at a time; returns how many were handed over.
   */
  retryHandOvers(now = Date.now()): Promise<number> {
    if (this.retryPass) return this.retryPass;
    const pass = (this.retryPass = this.retryPassOnce(now).finally(() => {
      if (this.retryPass === pass) this.retryPass = undefined;
    }));
    return pass;
  }

  private async retryPassOnce(now: number): Promise<number> {
    // Without ffmpeg every hand-over would be refused (503) and the upload dropped with it.
    if (!this.ingest.available) return 0;
    const log = logger("uploads");
    let handed = 0;
    const seen = new Set<string>();
    for (const { uploadId, id, declared } of await this.files.completeUploads(HANDOVER_GRACE_MS, now)) {
      seen.add(uploadId);
      try {
        // Not a video being uploaded (any more): the expiry sweep removes what is left.
        if ((await this.library.get(id))?.status !== "uploading") continue;
        try {
          await this.finishOnce(uploadId, declared);
          handed++;
          log.info({ video: id }, "a completed upload whose hand-over had failed was handed to processing");
        } catch (error) {
          if (!(error instanceof HttpError)) throw error;
          log.warn({ video: id, code: error.code, reason: error.message }, "a completed upload whose hand-over had failed was refused");
        }
        this.stalled.delete(uploadId);
        if ((await this.library.get(id))?.status !== "uploading") await this.files.discardUpload(uploadId);
      } catch (error) {
        // The database or the bucket still down (or a full disk): the next pass tries again.
        if (this.stalled.has(uploadId)) continue;
        this.stalled.add(uploadId);
        const fields = { video: id, ...errorFields(error) };
        const message = "a completed upload could not be handed over; retrying";
        if (isDatabaseUnavailable(error) || error instanceof StorageUnavailable) log.warn(fields, message);
        else log.error(fields, message);
      }
    }
    for (const uploadId of this.stalled) if (!seen.has(uploadId)) this.stalled.delete(uploadId);
    return handed;
  }
}
