/**
 * HLS for one process: queues a video's ladder build when it becomes ready, and builds a failed
 * one again on request. The builds are `transcode` jobs (./worker.ts) in the durable queue; the
 * ladder's state is a part of the video's row, so its changes are heard like any other.
 */
import { join } from "node:path";
import { logger } from "../../lib/log.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { JobQueue } from "../../queue/jobs.ts";
import { HLS_DIR } from "./worker.ts";

export class HlsService {
  constructor(
    readonly library: VideoLibrary,
    readonly queue: JobQueue,
    /** Called when a job was queued here (the worker in this process, if any, looks at once). */
    private readonly queued: () => void = () => {},
  ) {
    library.events.on("changed", (id: string) => void this.videoChanged(id));
  }

  /** Where a video's published ladder lives. */
  hlsDir(videoId: string): string {
    return join(this.library.storage.videoDir(videoId), HLS_DIR);
  }

  private async videoChanged(id: string): Promise<void> {
    try {
      const row = await this.library.get(id);
      if (row?.status === "ready" && row.hlsStatus === "none") await this.queueFrom(id, "none");
    } catch (error) {
      // The database may be closing (shutdown); the worker's sweep catches anything missed.
      if (!String(error).includes("closed")) logger("hls").warn({ video: id, err: String(error) }, "could not queue the HLS build");
    }
  }

  /**
   * Queues a build when the ladder is in state `from` (race-free: only the caller whose
   * compare-and-set moves it to `queued` inserts the job). A crash in between is repaired by
   * the transcode handler's sweep.
   */
  private async queueFrom(id: string, from: "none" | "failed"): Promise<boolean> {
    if (!(await this.library.setHls(id, { status: "queued", progress: 0, error: null }, [from]))) return false;
    await this.queue.enqueue("transcode", id);
    this.queued();
    return true;
  }

  /** Builds a failed ladder again; false when the video is not ready with a failed ladder. */
  retry(id: string): Promise<boolean> {
    return this.queueFrom(id, "failed");
  }
}
