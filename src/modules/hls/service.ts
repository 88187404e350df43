/**
 * HLS wiring for one process: the durable queue, the hook that queues a build when a video
 * becomes ready, cancellation when a video is deleted, and (when this process runs one) the
 * worker. `events` emits "changed" with a video id whenever its HLS state or progress changes
 * here or in a sibling `WORKERS` process, which the SSE route relays at once (changes made by
 * other processes, such as a separate worker, are polled).
 */
import { logger } from "../../lib/log.ts";
import { EventEmitter } from "node:events";
import { join } from "node:path";
import { transcodeConfig, type Config, type TranscodeConfig } from "../../config.ts";
import type { MediaTools } from "../../media/tools.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import { TranscodeQueue } from "../../queue/jobs.ts";
import { HLS_DIR, TranscodeWorker, type WorkerLog } from "./worker.ts";

export class HlsService {
  readonly events = new EventEmitter();
  readonly queue: TranscodeQueue;
  readonly settings: TranscodeConfig;
  private worker: TranscodeWorker | undefined;

  constructor(
    readonly library: VideoLibrary,
    config: Pick<Config, "transcode">,
  ) {
    this.events.setMaxListeners(0);
    this.settings = transcodeConfig(config);
    this.queue = new TranscodeQueue(library.db, (id) => this.events.emit("changed", id));
    library.events.on("changed", (id: string) => void this.videoChanged(id));
    library.onRemove(async (id) => {
      this.queue.cancelForVideo(id);
      await this.worker?.cancelVideo(id);
    });
  }

  /** Where a video's published ladder lives. */
  hlsDir(videoId: string): string {
    return join(this.library.storage.videoDir(videoId), HLS_DIR);
  }

  get runningWorker(): TranscodeWorker | undefined {
    return this.worker;
  }

  private async videoChanged(id: string): Promise<void> {
    try {
      const row = await this.library.get(id);
      if (row?.status === "ready" && row.hlsStatus === "none" && this.queue.enqueue(id)) this.worker?.wake();
    } catch (error) {
      // The database may be closing (shutdown); the worker's sweep catches anything missed.
      if (!String(error).includes("closed")) logger("hls").warn({ video: id, err: String(error) }, "could not queue the HLS build");
    }
  }

  /** Builds a failed ladder again; false when the video is not ready with a failed ladder. */
  retry(id: string): boolean {
    if (!this.queue.retryFailed(id)) return false;
    this.worker?.wake();
    return true;
  }

  /** Starts a worker in this process; undefined (with a warning) when ffmpeg is missing. */
  startWorker(tools: MediaTools | undefined, log?: WorkerLog): TranscodeWorker | undefined {
    if (this.worker) return this.worker;
    if (!tools) {
      logger("hls").warn("ffmpeg/ffprobe not found: no transcode worker in this process (HLS builds stay queued)");
      return undefined;
    }
    this.worker = new TranscodeWorker(this.library, this.queue, tools, this.settings, log);
    this.worker.start();
    return this.worker;
  }

  async stopWorker(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.stop();
  }
}
