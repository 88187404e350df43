/**
 * The primary's local housekeeping, every HOUSEKEEPING_MS: what this machine's disk holds that
 * nothing else will clean up or send on.
 * - tmp/ directories of dead processes (killed CLI ingests and workers);
 * - STORAGE=s3: working copies of uploads this machine accepted and another machine's worker
 *   has processed;
 * - STORAGE=s3 and no ingest worker here: uploads accepted while the bucket was down, shared with
 *   it once it answers, for the workers elsewhere (their jobs wait for them meanwhile).
 */
import { errorFields, logger } from "../lib/log.ts";
import { StorageUnavailable } from "../storage/object-store.ts";
import type { VideoLibrary } from "./videos.ts";

export const HOUSEKEEPING_MS = 10_000;

const log = logger("housekeeping");

export class LocalHousekeeping {
  private timer: ReturnType<typeof setInterval> | undefined;
  /** The sharing pass in progress: one at a time, as a large upload takes longer than the interval to send. */
  private sharing: Promise<void> | undefined;

  constructor(
    private readonly library: VideoLibrary,
    /** Whether this process's worker takes ingest jobs (then it sends its own uploads on). */
    private readonly ingestsHere: () => boolean,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.pass(), HOUSEKEEPING_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  private pass(): void {
    this.library.storage.sweepTmp().catch((error) => log.error(errorFields(error), "tmp sweep failed"));
    this.library.sweepLocalCopies().catch((error) => log.warn(errorFields(error), "sweep of local working copies failed"));
    if (this.ingestsHere() || this.sharing) return;
    this.sharing = this.library
      .shareWaitingUploads()
      .then(
        (ids) => ids.forEach((id) => log.info({ video: id }, "shared the received bytes of an upload accepted while the bucket was down")),
        (error) => {
          if (!(error instanceof StorageUnavailable)) log.warn(errorFields(error), "sharing uploads accepted during a bucket outage failed");
        },
      )
      .finally(() => (this.sharing = undefined));
  }
}
