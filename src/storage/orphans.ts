/**
 * The orphan sweep: a video's files (objects under `videos/<id>/` in a bucket, or the
 * directory `DATA_DIR/videos/<id>/` on local disk) whose video has no row any more (or a
 * `failed` one, which holds no files), and whose newest file is older than a grace period, are
 * deleted. They are what a removal left when the bucket was down (Storage.removeVideo), what a
 * job wrote after its video was deleted, or what a process that crashed mid-way left (a DELETE
 * commits on the row first, then removes the files). A row always exists before its files do
 * (they are written while it is `processing`), so the grace period only has to cover a delete
 * racing a write. The primary server runs it (src/server.ts).
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

/** Where a sweep looks: the videos that have files, and how to delete them. */
export interface OrphanSource {
  /** Each video id with files, and when the newest of them was written (ms since the epoch). */
  videos(): AsyncIterable<[id: string, newest: number]>;
  /** Deletes every file of the video; returns how many there were. */
  remove(id: string): Promise<number>;
}

/** A bucket's videos, from one listing (keys come in order, so a prefix is contiguous). */
export function bucketOrphans(store: ObjectStore): OrphanSource {
  return {
    async *videos() {
      const newest = new Map<string, number>();
      for await (const object of store.list("videos/")) {
        const id = object.key.split("/")[1];
        if (!id) continue;
        const at = object.lastModified?.getTime() ?? Date.now();
        newest.set(id, Math.max(newest.get(id) ?? 0, at));
      }
      yield* newest;
    },
    remove: (id) => store.deletePrefix(videoKeys.prefix(id)),
  };
}

/**
 * Asked before anything is deleted: whether the store belongs to this database's library at all
 * (src/library/ownership.ts). Until it has said yes, a pass looks at every video in the store,
 * young or old, so that it can tell a store of another library from a few orphans: `unowned`
 * are the ids whose videos own no files, `owned` those whose videos do.
 */
export interface OrphanGuard {
  readonly confirmed: boolean;
  mayDelete(unowned: readonly string[], owned: readonly string[]): Promise<boolean>;
}

export class OrphanSweeper {
  private timer: ReturnType<typeof setInterval> | undefined;
  private first: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<string[]> | undefined;
  readonly intervalMs: number;
  readonly graceMs: number;
  readonly firstMs: number;

  constructor(
    private readonly source: OrphanSource,
    /** Whether a video id still has a row that may own files. */
    private readonly known: (id: string) => Promise<boolean>,
    options: OrphanSweepOptions = {},
    private readonly guard?: OrphanGuard,
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
    const removed: string[] = [];
    const undecided = this.guard !== undefined && !this.guard.confirmed;
    const unowned: { id: string; young: boolean }[] = [];
    const owned: string[] = [];
    for await (const [id, at] of this.source.videos()) {
      const young = now - at < this.graceMs;
      if (young && !undecided) continue;
      if (await this.known(id)) {
        if (undecided) owned.push(id);
        continue;
      }
      unowned.push({ id, young });
    }
    if (this.guard && !(await this.guard.mayDelete(unowned.map((u) => u.id), owned))) return removed;
    for (const { id, young } of unowned) {
      if (young) continue;
      const count = await this.source.remove(id);
      log.info({ video: id, files: count }, "deleted the files of a video that no longer exists");
      removed.push(id);
    }
    return removed;
  }
}
