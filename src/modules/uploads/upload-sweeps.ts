/**
 * The primary's periodic sweeps of the uploads: the expiry sweep (an upload not completed
 * UPLOAD_EXPIRY_MS after its creation, tus `Upload-Expires`, loses its bytes and its `uploading`
 * video row; what completed uploads left, the direct upload URLs that expired or were used long
 * ago and the locks of processes that died mid-PATCH go too), and the retry of the hand-overs that
 * met an outage (upload-hand-over.ts).
 */
import { errorFields, logger } from "../../lib/log.ts";
import { RETRY_AFTER_S } from "../../storage/error-response.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { DirectUploads } from "./direct.ts";
import type { UploadFiles } from "./upload-files.ts";
import type { UploadHandOver } from "./upload-hand-over.ts";
import { videoIdOfUpload } from "./upload-ids.ts";

/** How often the primary retries the hand-over of uploads whose bytes are complete (`retryHandOvers`). */
const HANDOVER_RETRY_MS = RETRY_AFTER_S * 1000;

export class UploadSweeps {
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** The retry pass for complete uploads (`retryHandOvers`), in the primary. */
  private handOverTimer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly library: VideoLibrary,
    private readonly directUploads: DirectUploads,
    private readonly files: UploadFiles,
    private readonly handOver: UploadHandOver,
    private readonly expiryMs: number,
  ) {}

  /**
   * Deletes uploads past their expiry (and stray files whose video is gone), with the
   * `uploading` video rows they created. Returns how many uploads were removed.
   */
  async sweepExpired(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const uploadId of await this.files.ids()) {
      const created = await this.files.createdAt(uploadId);
      const id = videoIdOfUpload(uploadId);
      const row = id ? await this.library.get(id) : undefined;
      const orphan = !row || row.status !== "uploading";
      if (!orphan && created + this.expiryMs > now) continue;
      await this.files.discardUpload(uploadId);
      if (id && row?.status === "uploading") await this.library.remove(id);
      removed++;
    }
    // What completed uploads left, once a client could no longer be resuming them.
    await this.files.sweepCompleted(this.expiryMs, now);
    await this.directUploads.sweep();
    await this.files.sweepLocks(now);
    return removed;
  }

  /** Runs `sweepExpired` every `intervalMs`, and `retryHandOvers` every HANDOVER_RETRY_MS (primary process only). */
  start(intervalMs: number): void {
    this.stop();
    this.sweeper = setInterval(() => {
      this.sweepExpired().catch((error) => logger("uploads").error(errorFields(error), "sweep failed"));
    }, intervalMs);
    this.sweeper.unref?.();
    this.handOverTimer = setInterval(() => {
      this.handOver.retryHandOvers().catch((error) => logger("uploads").error(errorFields(error), "hand-over retry failed"));
    }, HANDOVER_RETRY_MS);
    this.handOverTimer.unref?.();
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    if (this.handOverTimer) clearInterval(this.handOverTimer);
    this.sweeper = undefined;
    this.handOverTimer = undefined;
  }
}
