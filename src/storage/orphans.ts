/**
 * The orphan sweep (STORAGE=s3): objects under `videos/<id>/` whose video has no row any more
 * (or a `failed` one, which holds no files), and whose newest object is older than a grace
 * period, are deleted. They are what a removal left when the bucket was down (Storage.removeVideo), what a job uploaded after its video was
 * deleted, or what a process that crashed mid-way left. A row always exists before its objects
 * do (uploads happen while it is `processing`), so the grace period only has to cover a delete
 * racing an upload. The primary server runs it (src/server.ts).
 */
import { errorFields, logger } from "../lib/log.ts";
import { videoKeys, type ObjectStore } from "./object-store.ts";

export const ORPHAN_SWEEP_INTERVAL_MS = 60 * 60_000;
export const ORPHAN_GRACE_MS = 60 * 60_000;
/**
 * The first pass, after start: a primary restarted more often than ORPHAN_SWEEP_INTERVAL_MS (a
 * deploy a day, a crash loop) would otherwise never sweep. Not at once: start-up has work enough.
 */
export const ORPHAN_FIRST_SWEEP_MS = 60_000;

const log = logger("storage");

export interface OrphanSweepOptions {
  intervalMs?: number;
  graceMs?: number;
  /** The first pass after `start` (ORPHAN_FIRST_SWEEP_MS). */
  firstMs?: number;
}

export class OrphanSweeper {
  private timer: ReturnType<typeof setInterval> | undefined;
  private first: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<string[]> | undefined;
  readonly intervalMs: number;
  readonly graceMs: number;
  readonly firstMs: number;

  constructor(
    private readonly store: ObjectStore,
    /** Whether a video id still has a row that may own objects. */
    private readonly known: (id: string) => Promise<boolean>,
    options: OrphanSweepOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? ORPHAN_SWEEP_INTERVAL_MS;
    this.graceMs = options.graceMs ?? ORPHAN_GRACE_MS;
    this.firstMs = options.firstMs ?? ORPHAN_FIRST_SWEEP_MS;
  }

  start(): void {
    this.stop();
    const pass = () => void this.sweep().catch((error) => log.warn(errorFields(error), "orphan sweep failed"));
    this.first = setTimeout(pass, Math.min(this.firstMs, this.intervalMs));
    this.first.unref?.();
    this.timer = setInterval(pass, this.intervalMs);
    this.timer.unref?.();
  }

  stop(): void {
    clearTimeout(this.first);
    clearInterval(this.timer);
    this.first = undefined;
    this.timer = undefined;
  }

  /** One pass; returns the ids whose objects were deleted. One pass at a time. */
  sweep(now = Date.now()): Promise<string[]> {
    this.running ??= this.pass(now).finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(now: number): Promise<string[]> {
    // Newest object per video prefix, in one listing (keys come in order, so a prefix is contiguous).
    const newest = new Map<string, number>();
    for await (const object of this.store.list("videos/")) {
      const id = object.key.split("/")[1];
      if (!id) continue;
      const at = object.lastModified?.getTime() ?? now;
      newest.set(id, Math.max(newest.get(id) ?? 0, at));
    }
    const removed: string[] = [];
    for (const [id, at] of newest) {
      if (now - at < this.graceMs || (await this.known(id))) continue;
      const count = await this.store.deletePrefix(videoKeys.prefix(id));
      log.info({ video: id, objects: count }, "deleted the objects of a video that no longer exists");
      removed.push(id);
    }
    return removed;
  }
}
