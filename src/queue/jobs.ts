/**
 * The durable transcode queue: rows in `transcode_jobs`, so jobs survive restarts and any number
 * of worker processes (in the server, `bun run worker`, other machines on the same database)
 * share them safely.
 *
 * Every state change is one IMMEDIATE transaction (SQLite's single writer lock), so a claim is
 * atomic: two workers can never both take a job. A running job carries its worker's id and a
 * heartbeat; a job whose heartbeat is older than `staleMs` is taken over by the next claim (its
 * worker died), and every later write by the old worker is refused because it checks
 * `locked_by`. The video's user-facing HLS state (`videos.hls_*`) changes in the same
 * transactions, so the two never disagree.
 */
import { localPid, newOwnerId, processAlive } from "../lib/process-identity.ts";
import { and, asc, eq, inArray, lt, lte, or } from "drizzle-orm";
import type { Db } from "../db/client.ts";
import { transcodeJobs, videos, type HlsStatus, type TranscodeJobRow } from "../db/schema.ts";
import { backoffMs, type BackoffOptions } from "./backoff.ts";

export interface ClaimOptions {
  /** A running job whose heartbeat is older than this is considered abandoned. */
  staleMs: number;
  maxAttempts: number;
}

export interface FailOptions extends BackoffOptions {
  maxAttempts: number;
}

export type FailOutcome = { retrying: true; runAfter: Date } | { retrying: false };

/** Worker ids alive in this process (tests and embedders may run several). */
const liveHere = new Set<string>();

/** `<hostname>:<pid>:<random>`: unique per worker instance, and says where it ran. */
export function newWorkerId(): string {
  const id = newOwnerId();
  liveHere.add(id);
  return id;
}

/** A stopped worker's id: its jobs, if any are left running, belong to no one. */
export function retireWorkerId(id: string): void {
  liveHere.delete(id);
}

const oneLine = (message: string, max = 1000) => message.replace(/\s+/g, " ").trim().slice(0, max);

export class TranscodeQueue {
  constructor(
    private readonly db: Db,
    /** Called with a video id after any change to its HLS state or progress. */
    private readonly onChange: (videoId: string) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  private tx<T>(fn: (tx: Db) => T): T {
    return this.db.transaction((tx) => fn(tx as unknown as Db), { behavior: "immediate" });
  }

  /**
   * Queues the HLS build of a ready video that has none yet. Idempotent and race-free: only the
   * caller that moves `hls_status` from "none" to "queued" inserts the job.
   */
  enqueue(videoId: string): TranscodeJobRow | null {
    return this.queueFrom(videoId, "none");
  }

  /**
   * Queues a fresh build (attempts from zero) for a ready video whose last build failed, once
   * its cause is fixed (a timeout too short, a full disk). Race-free like `enqueue`: null when
   * the video is not ready with a failed ladder.
   */
  retryFailed(videoId: string): TranscodeJobRow | null {
    return this.queueFrom(videoId, "failed");
  }

  private queueFrom(videoId: string, from: HlsStatus): TranscodeJobRow | null {
    const job = this.tx((tx) => {
      const now = new Date(this.now());
      const moved = tx
        .update(videos)
        .set({ hlsStatus: "queued", hlsProgress: 0, hlsError: null })
        .where(and(eq(videos.id, videoId), eq(videos.status, "ready"), eq(videos.hlsStatus, from)))
        .returning({ id: videos.id })
        .all();
      if (moved.length === 0) return null;
      return tx.insert(transcodeJobs).values({ videoId, state: "queued", attempts: 0, runAfter: now, createdAt: now, updatedAt: now }).returning().get()!;
    });
    if (job) this.onChange(videoId);
    return job;
  }

  /** Queues every ready video still without an HLS build (a start-up and periodic sweep). */
  enqueueMissing(limit = 100): number {
    const rows = this.db
      .select({ id: videos.id })
      .from(videos)
      .where(and(eq(videos.status, "ready"), eq(videos.hlsStatus, "none")))
      .orderBy(asc(videos.createdAt))
      .limit(limit)
      .all();
    let queued = 0;
    for (const row of rows) if (this.enqueue(row.id)) queued++;
    return queued;
  }

  /**
   * Takes the next runnable job: queued and due, or running with a stale heartbeat (its worker
   * died). A stale job that already used all its attempts fails instead of running again.
   */
  claim(workerId: string, options: ClaimOptions): TranscodeJobRow | null {
    const claimed = this.tx((tx) => {
      const now = this.now();
      const stale = new Date(now - options.staleMs);
      for (;;) {
        const candidate = tx
          .select()
          .from(transcodeJobs)
          .where(
            or(
              and(eq(transcodeJobs.state, "queued"), lte(transcodeJobs.runAfter, new Date(now))),
              and(eq(transcodeJobs.state, "running"), lt(transcodeJobs.heartbeatAt, stale)),
            ),
          )
          .orderBy(asc(transcodeJobs.runAfter), asc(transcodeJobs.id))
          .limit(1)
          .get();
        if (!candidate) return null;
        if (candidate.state === "running" && candidate.attempts >= options.maxAttempts) {
          const error = `The worker running the transcode stopped responding (${candidate.attempts} attempts)`;
          this.finishFailed(tx, candidate, error, now);
          continue;
        }
        const job = tx
          .update(transcodeJobs)
          .set({ state: "running", lockedBy: workerId, heartbeatAt: new Date(now), attempts: candidate.attempts + 1, updatedAt: new Date(now) })
          .where(eq(transcodeJobs.id, candidate.id))
          .returning()
          .get()!;
        tx.update(videos).set({ hlsStatus: "processing", hlsProgress: 0 }).where(eq(videos.id, job.videoId)).run();
        return job;
      }
    });
    if (claimed) this.onChange(claimed.videoId);
    return claimed;
  }

  private mine(jobId: number, workerId: string) {
    return and(eq(transcodeJobs.id, jobId), eq(transcodeJobs.lockedBy, workerId), eq(transcodeJobs.state, "running"));
  }

  /** Proves the worker alive. False: the job is no longer this worker's (cancelled, deleted, taken over). */
  heartbeat(jobId: number, workerId: string): boolean {
    const now = new Date(this.now());
    const rows = this.db.update(transcodeJobs).set({ heartbeatAt: now }).where(this.mine(jobId, workerId)).returning({ id: transcodeJobs.id }).all();
    return rows.length > 0;
  }

  /** Records progress (0-100) on the video, if the job is still this worker's. */
  progress(job: TranscodeJobRow, workerId: string, percent: number): boolean {
    const ok = this.tx((tx) => {
      const held = tx.select({ id: transcodeJobs.id }).from(transcodeJobs).where(this.mine(job.id, workerId)).get();
      if (!held) return false;
      tx.update(videos).set({ hlsProgress: Math.max(0, Math.min(100, Math.round(percent))) }).where(eq(videos.id, job.videoId)).run();
      return true;
    });
    if (ok) this.onChange(job.videoId);
    return ok;
  }

  /** The ladder is published: job done, video's HLS ready. False when the job was lost meanwhile. */
  complete(job: TranscodeJobRow, workerId: string): boolean {
    return this.finish(job, workerId, { hlsStatus: "ready", hlsProgress: 100, hlsError: null });
  }

  /** Nothing to build (e.g. an audio-only file): done, and the video says why. */
  skip(job: TranscodeJobRow, workerId: string, reason: string): boolean {
    return this.finish(job, workerId, { hlsStatus: "skipped", hlsProgress: 0, hlsError: reason });
  }

  private finish(job: TranscodeJobRow, workerId: string, video: Partial<typeof videos.$inferInsert>): boolean {
    const ok = this.tx((tx) => {
      const now = new Date(this.now());
      const rows = tx
        .update(transcodeJobs)
        .set({ state: "done", error: null, lockedBy: null, updatedAt: now })
        .where(this.mine(job.id, workerId))
        .returning({ id: transcodeJobs.id })
        .all();
      if (rows.length === 0) return false;
      tx.update(videos).set(video).where(eq(videos.id, job.videoId)).run();
      return true;
    });
    if (ok) this.onChange(job.videoId);
    return ok;
  }

  private finishFailed(tx: Db, job: TranscodeJobRow, error: string, now: number): void {
    tx.update(transcodeJobs).set({ state: "failed", error, lockedBy: null, updatedAt: new Date(now) }).where(eq(transcodeJobs.id, job.id)).run();
    tx.update(videos).set({ hlsStatus: "failed", hlsProgress: 0, hlsError: error }).where(eq(videos.id, job.videoId)).run();
  }

  /**
   * An attempt failed: retried after a backoff while attempts remain, else the job and the
   * video's HLS state are failed with the error. Undefined when the job was no longer ours.
   */
  fail(job: TranscodeJobRow, workerId: string, message: string, options: FailOptions): FailOutcome | undefined {
    const error = oneLine(message) || "ffmpeg failed";
    const outcome = this.tx((tx): FailOutcome | undefined => {
      const now = this.now();
      const current = tx.select().from(transcodeJobs).where(this.mine(job.id, workerId)).get();
      if (!current) return undefined;
      if (current.attempts >= options.maxAttempts) {
        this.finishFailed(tx, current, error, now);
        return { retrying: false };
      }
      const runAfter = new Date(now + backoffMs(current.attempts, options));
      tx.update(transcodeJobs).set({ state: "queued", runAfter, error, lockedBy: null, updatedAt: new Date(now) }).where(eq(transcodeJobs.id, job.id)).run();
      const seconds = Math.ceil((runAfter.getTime() - now) / 1000);
      tx.update(videos)
        .set({ hlsStatus: "queued", hlsProgress: 0, hlsError: `Attempt ${current.attempts} of ${options.maxAttempts} failed (${error}); retrying in ${seconds} s` })
        .where(eq(videos.id, job.videoId))
        .run();
      return { retrying: true, runAfter };
    });
    if (outcome) this.onChange(job.videoId);
    return outcome;
  }

  /** A worker shutting down hands its job back: queued again, the attempt not counted. */
  release(job: TranscodeJobRow, workerId: string): boolean {
    const ok = this.tx((tx) => {
      const now = new Date(this.now());
      const current = tx.select().from(transcodeJobs).where(this.mine(job.id, workerId)).get();
      if (!current) return false;
      tx.update(transcodeJobs)
        .set({ state: "queued", attempts: Math.max(0, current.attempts - 1), runAfter: now, lockedBy: null, updatedAt: now })
        .where(eq(transcodeJobs.id, job.id))
        .run();
      tx.update(videos).set({ hlsStatus: "queued", hlsProgress: 0 }).where(eq(videos.id, job.videoId)).run();
      return true;
    });
    if (ok) this.onChange(job.videoId);
    return ok;
  }

  /** Cancels a video's pending or running jobs (the video is being deleted). */
  cancelForVideo(videoId: string): number {
    const now = new Date(this.now());
    const rows = this.db
      .update(transcodeJobs)
      .set({ state: "cancelled", lockedBy: null, updatedAt: now })
      .where(and(eq(transcodeJobs.videoId, videoId), inArray(transcodeJobs.state, ["queued", "running"])))
      .returning({ id: transcodeJobs.id })
      .all();
    if (rows.length) this.onChange(videoId);
    return rows.length;
  }

  /**
   * Running jobs whose worker ran on this host in a process that no longer exists (a crash, a
   * SIGKILL) are requeued at once instead of waiting for their heartbeat to go stale. The
   * attempt stays counted. In this process, ids of workers that are not running are dead too.
   */
  requeueDead(selfId: string): number {
    const running = this.db.select().from(transcodeJobs).where(eq(transcodeJobs.state, "running")).all();
    let requeued = 0;
    for (const job of running) {
      if (!job.lockedBy || job.lockedBy === selfId) continue;
      const pid = localPid(job.lockedBy);
      if (pid === null) continue;
      const dead = pid === process.pid ? !liveHere.has(job.lockedBy) : !processAlive(pid);
      if (!dead) continue;
      const ok = this.tx((tx) => {
        const now = new Date(this.now());
        const rows = tx
          .update(transcodeJobs)
          .set({ state: "queued", runAfter: now, lockedBy: null, updatedAt: now })
          .where(and(eq(transcodeJobs.id, job.id), eq(transcodeJobs.state, "running"), eq(transcodeJobs.lockedBy, job.lockedBy!)))
          .returning({ id: transcodeJobs.id })
          .all();
        if (rows.length) tx.update(videos).set({ hlsStatus: "queued", hlsProgress: 0 }).where(eq(videos.id, job.videoId)).run();
        return rows.length > 0;
      });
      if (ok) {
        requeued++;
        this.onChange(job.videoId);
      }
    }
    return requeued;
  }

  get(jobId: number): TranscodeJobRow | undefined {
    return this.db.select().from(transcodeJobs).where(eq(transcodeJobs.id, jobId)).get();
  }

  forVideo(videoId: string): TranscodeJobRow[] {
    return this.db.select().from(transcodeJobs).where(eq(transcodeJobs.videoId, videoId)).orderBy(asc(transcodeJobs.id)).all();
  }
}
