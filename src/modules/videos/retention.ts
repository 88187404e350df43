/**
 * Failed and abandoned videos do not stay in the library forever. A periodic sweep, run by the
 * server's primary process only, deletes through the VideoLibrary (so every cache hears of it):
 *
 *  - `failed` videos not changed for FAILED_RETENTION_MS (default 7 days): long enough to read
 *    the error, short enough that a flood of refused or broken uploads does not pile up;
 *  - `uploading` videos with no resumable upload behind them (a CLI ingest that was killed, a
 *    serving process that crashed mid-upload), once unchanged for both FAILED_RETENTION_MS and
 *    UPLOAD_EXPIRY_MS: no upload may take longer than that, so a live one is never touched.
 *    Those that do have a tus upload in the store are the uploads sweeper's (src/modules/uploads).
 *
 * FAILED_RETENTION_MS=0 keeps them forever.
 */
import { errorFields, logger } from "../../lib/log.ts";
import type { VideoLibrary } from "../../library/videos.ts";

export const DEFAULT_FAILED_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

export interface RetentionOptions {
  /** FAILED_RETENTION_MS; 0: never delete. */
  retentionMs: number;
  /** UPLOAD_EXPIRY_MS: the longest an upload may take. */
  uploadExpiryMs: number;
}

export class RetentionSweeper {
  private timer: ReturnType<typeof setInterval> | undefined;

  constructor(
    private readonly library: VideoLibrary,
    /** The videos whose resumable uploads are still in the store (they expire on their own). */
    private readonly resumable: () => Promise<Iterable<string>>,
    readonly options: RetentionOptions,
  ) {}

  /** Deletes what is due at `now`; returns the ids removed. */
  async sweep(now = Date.now()): Promise<string[]> {
    const { retentionMs, uploadExpiryMs } = this.options;
    if (retentionMs <= 0) return [];
    return this.library.removeStale({
      failedBefore: new Date(now - retentionMs),
      abandonedBefore: new Date(now - Math.max(retentionMs, uploadExpiryMs)),
      keep: await this.resumable(),
    });
  }

  /** Runs `sweep` periodically: a quarter of the retention, between 1 s and 15 min. */
  start(intervalMs = Math.min(Math.max(Math.floor(this.options.retentionMs / 4), 1000), 15 * 60 * 1000)): void {
    this.stop();
    if (this.options.retentionMs <= 0) return;
    let running = false;
    this.timer = setInterval(() => {
      if (running) return;
      running = true;
      this.sweep()
        .then((removed) => {
          if (removed.length) logger("retention").info({ removed: removed.length }, "removed failed or abandoned videos");
        })
        .catch((error) => logger("retention").error(errorFields(error), "sweep failed"))
        .finally(() => (running = false));
    }, intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
