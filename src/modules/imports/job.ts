/**
 * The `import` job: downloads a video's source URL and hands it to ingest (ImportService.runImport),
 * run by any worker. Stopped by a shutdown, it is queued again and starts the download over;
 * stopped by a delete, it is cancelled. A worker that keeps dying fails the video in the end.
 */
import type { TranscodeConfig } from "../../config.ts";
import type { JobRow } from "../../db/schema.ts";
import type { VideoLibrary } from "../../library/videos.ts";
import type { JobContext, JobHandler, Settled } from "../../queue/runner.ts";
import type { ImportPayload, ImportService } from "./service.ts";

export class ImportJobs implements JobHandler {
  readonly kind = "import" as const;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs = 60_000;
  /** Videos seen `importing` without a job by the last sweep (failed if still so). */
  private suspects = new Set<string>();

  constructor(
    private readonly imports: ImportService,
    private readonly library: VideoLibrary,
    private readonly queue: { hasActive(videoId: string, kind: "import"): Promise<boolean> },
    settings: Pick<TranscodeConfig, "maxAttempts" | "retryBaseMs">,
    /** Downloads at once in one worker. */
    readonly concurrency = 2,
  ) {
    this.maxAttempts = settings.maxAttempts;
    this.retryBaseMs = Math.min(settings.retryBaseMs, 5000);
  }

  async run(job: JobRow, { signal }: JobContext): Promise<void> {
    const payload = JSON.parse(job.payload ?? "{}") as Partial<ImportPayload>;
    if (!payload.url) {
      await this.library.markFailed(job.videoId, "The import's source URL was lost", "importing");
      return;
    }
    await this.imports.runImport(job.videoId, payload.url, { signal });
  }

  async settled(job: JobRow, outcome: Settled): Promise<void> {
    if (outcome.outcome !== "failed") return;
    await this.library.markFailed(job.videoId, `The import failed: ${outcome.error}`, "importing");
  }

  /** `importing` videos whose job is gone (a crash between the two writes of `start`): failed. */
  async sweep(): Promise<void> {
    const suspects = new Set<string>();
    for (const id of await this.library.idsWithStatus("importing")) {
      if (await this.queue.hasActive(id, "import")) continue;
      if (this.suspects.has(id)) await this.library.markFailed(id, "The import was interrupted before it started; try again", "importing");
      else suspects.add(id);
    }
    this.suspects = suspects;
  }
}
