/**
 * The durable job queue: rows in `jobs`, one table for all background work (`kind`: ingest,
 * transcode, import), so jobs survive restarts and any number of worker processes (in a
 * server, `bun run worker`, other machines on the same database) share them safely.
 *
 * A claim is atomic (./claim.ts: one small function per dialect). A running job carries its
 * worker's id and a heartbeat; a job whose heartbeat is older than `staleMs` is taken over by
 * the next claim (its worker died), and every later write by the old worker is refused because
 * each checks `locked_by`. At most one active (queued or running) job exists per video and kind
 * (a partial unique index), so enqueueing is idempotent. Every time the queue writes or compares
 * comes from one clock (see `clock`), so workers whose own clocks disagree neither take over
 * live jobs nor see due ones late.
 *
 * The queue knows nothing of videos beyond their ids: what a job's state means for a video
 * (its status, its HLS state) is written by the video library, called by the job's handler.
 */
import { and, asc, count, eq, gte, inArray, lt, or, sql } from "drizzle-orm";
import type { SpoolDb } from "../db/client.ts";
import { ACTIVE_JOB_STATES, type JobKind, type JobRow, type JobState } from "../db/schema.ts";
import { localPid, processAlive } from "../lib/process-identity.ts";
import { backoffMs, type BackoffOptions } from "./backoff.ts";
import { claimNext, type Moment } from "./claim.ts";

export interface ClaimOptions {
  /** A running job whose heartbeat is older than this is considered abandoned. */
  staleMs: number;
  maxAttempts: number;
  /** False: no stale job is taken over (the claimer was itself out of touch lately). Default true. */
  takeOver?: boolean;
}

export interface FailOptions extends BackoffOptions {
  maxAttempts: number;
}

/** `delayMs`: how long after the failure `runAfter` is (a difference, the same on any clock). */
export type FailOutcome = { retrying: true; runAfter: Date; delayMs: number; attempts: number } | { retrying: false; attempts: number };

const oneLine = (message: string, max = 1000) => message.replace(/\s+/g, " ").trim().slice(0, max);

export class JobQueue {
  constructor(
    readonly handle: SpoolDb,
    /** This process's clock: the queue's on SQLite only (see `clock`). */
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * One reading of the queue's clock, `now`, and `plus(ms)` that now plus `ms`, as the queue
   * writes and compares them. PostgreSQL: the database's clock, read by the statement itself
   * (`now()`, one value per statement), since workers on other machines share the jobs and
   * their clocks may disagree: one ahead by more than `staleMs` would take over jobs whose
   * workers are alive, one behind would see due jobs late. Truncated to the columns'
   * milliseconds: a stored time rounded up could be later than the next statement's now (a job
   * just queued not due yet). SQLite: this process's clock, since every process that opens the
   * file runs on this machine, with the same clock (and tests step it through `now`).
   */
  private clock(): { now: Moment; plus(ms: number): Moment } {
    if (this.handle.dialect !== "postgres") {
      const now = this.now();
      return { now: new Date(now), plus: (ms) => new Date(now + ms) };
    }
    const now = sql`date_trunc('milliseconds', now())`;
    return { now, plus: (ms) => sql`(${now} + ${ms}::double precision * interval '1 millisecond')` };
  }

  private get db() {
    return this.handle.db;
  }

  private get jobs() {
    return this.handle.tables.jobs;
  }

  /**
   * Queues a job unless the video already has an active one of that kind (then null).
   * `payload` is the kind's input, stored as JSON.
   */
  async enqueue(kind: JobKind, videoId: string, payload?: unknown): Promise<JobRow | null> {
    const now = this.clock().now;
    const rows = await this.db
      .insert(this.jobs)
      .values({ kind, videoId, state: "queued", attempts: 0, runAfter: now, payload: payload === undefined ? null : JSON.stringify(payload), createdAt: now, updatedAt: now })
      .onConflictDoNothing()
      .returning();
    return rows[0] ?? null;
  }

  /**
   * Takes the next runnable job of one of `kinds`: queued and due, or running with a stale
   * heartbeat (its worker died). Jobs that used all their attempts are failed instead and
   * returned in `exhausted`, for their handlers to record why: stale running ones, and queued
   * ones (a worker on this host that died is requeued at once, its attempt counted, so a job
   * that kills its worker every time would otherwise run for ever).
   */
  async claim(workerId: string, kinds: readonly JobKind[], options: ClaimOptions): Promise<{ job: JobRow | null; exhausted: JobRow[] }> {
    if (kinds.length === 0) return { job: null, exhausted: [] };
    const { now, plus } = this.clock();
    const stale = options.takeOver === false ? null : plus(-options.staleMs);
    const exhausted = await this.db
      .update(this.jobs)
      .set({ state: "failed", lockedBy: null, updatedAt: now, error: "The worker running it stopped responding, and it has no attempts left" })
      .where(
        and(
          inArray(this.jobs.kind, [...kinds]),
          stale ? or(and(eq(this.jobs.state, "running"), lt(this.jobs.heartbeatAt, stale)), eq(this.jobs.state, "queued")) : eq(this.jobs.state, "queued"),
          gte(this.jobs.attempts, options.maxAttempts),
        ),
      )
      .returning();
    const job = await claimNext(this.handle, { workerId, kinds, now, stale, maxAttempts: options.maxAttempts });
    return { job, exhausted };
  }

  private mine(jobId: number, workerId: string) {
    return and(eq(this.jobs.id, jobId), eq(this.jobs.lockedBy, workerId), eq(this.jobs.state, "running"));
  }

  /** Proves the worker alive. False: the job is no longer this worker's (cancelled, deleted, taken over). */
  async heartbeat(jobId: number, workerId: string): Promise<boolean> {
    const rows = await this.db.update(this.jobs).set({ heartbeatAt: this.clock().now }).where(this.mine(jobId, workerId)).returning({ id: this.jobs.id });
    return rows.length > 0;
  }

  /** Done. False when the job was lost meanwhile (its result must then not be published). */
  async complete(job: JobRow, workerId: string): Promise<boolean> {
    const rows = await this.db
      .update(this.jobs)
      .set({ state: "done", error: null, lockedBy: null, updatedAt: this.clock().now })
      .where(this.mine(job.id, workerId))
      .returning({ id: this.jobs.id });
    return rows.length > 0;
  }

  /**
   * An attempt failed: queued again after a backoff while attempts remain, else failed with
   * the error. Undefined when the job was no longer this worker's.
   */
  async fail(job: JobRow, workerId: string, message: string, options: FailOptions): Promise<FailOutcome | undefined> {
    const error = oneLine(message) || "failed";
    const { now, plus } = this.clock();
    const attempts = job.attempts;
    if (attempts >= options.maxAttempts) {
      const rows = await this.db
        .update(this.jobs)
        .set({ state: "failed", error, lockedBy: null, updatedAt: now })
        .where(this.mine(job.id, workerId))
        .returning({ id: this.jobs.id });
      return rows.length ? { retrying: false, attempts } : undefined;
    }
    const delayMs = backoffMs(attempts, options);
    const [row] = await this.db
      .update(this.jobs)
      .set({ state: "queued", runAfter: plus(delayMs), error, lockedBy: null, updatedAt: now })
      .where(this.mine(job.id, workerId))
      .returning({ runAfter: this.jobs.runAfter });
    return row ? { retrying: true, runAfter: row.runAfter, delayMs, attempts } : undefined;
  }

  /**
   * An attempt that met an outage (the bucket did not answer): queued again after `delayMs`, the
   * attempt not counted, since the job was not at fault and no number of tries says when the
   * outage ends. Undefined when the job was no longer this worker's.
   */
  async defer(job: JobRow, workerId: string, message: string, delayMs: number): Promise<Date | undefined> {
    const { now, plus } = this.clock();
    const [row] = await this.db
      .update(this.jobs)
      .set({ state: "queued", attempts: Math.max(0, job.attempts - 1), runAfter: plus(delayMs), error: oneLine(message) || "deferred", lockedBy: null, updatedAt: now })
      .where(this.mine(job.id, workerId))
      .returning({ runAfter: this.jobs.runAfter });
    return row?.runAfter;
  }

  /** A worker shutting down hands its job back: queued again at once, the attempt not counted. */
  async release(job: JobRow, workerId: string): Promise<boolean> {
    const now = this.clock().now;
    const rows = await this.db
      .update(this.jobs)
      .set({ state: "queued", attempts: Math.max(0, job.attempts - 1), runAfter: now, lockedBy: null, updatedAt: now })
      .where(this.mine(job.id, workerId))
      .returning({ id: this.jobs.id });
    return rows.length > 0;
  }

  /** Cancels a video's active jobs (of one kind, or all): it is being deleted, or is done with. */
  async cancelForVideo(videoId: string, kind?: JobKind): Promise<number> {
    const rows = await this.db
      .update(this.jobs)
      .set({ state: "cancelled", lockedBy: null, updatedAt: this.clock().now })
      .where(and(eq(this.jobs.videoId, videoId), kind ? eq(this.jobs.kind, kind) : undefined, inArray(this.jobs.state, [...ACTIVE_JOB_STATES])))
      .returning({ id: this.jobs.id });
    return rows.length;
  }

  /**
   * Running jobs whose worker ran on this host in a process that no longer exists (a crash, a
   * SIGKILL) are requeued at once instead of waiting for their heartbeat to go stale. The
   * attempt stays counted. `isLiveHere` says which worker ids of this process are running.
   */
  async requeueDead(isLiveHere: (workerId: string) => boolean): Promise<JobRow[]> {
    const running = await this.db.select().from(this.jobs).where(eq(this.jobs.state, "running"));
    const requeued: JobRow[] = [];
    for (const job of running) {
      if (!job.lockedBy) continue;
      const pid = localPid(job.lockedBy);
      if (pid === null) continue;
      const dead = pid === process.pid ? !isLiveHere(job.lockedBy) : !processAlive(pid);
      if (!dead) continue;
      const now = this.clock().now;
      const rows = await this.db
        .update(this.jobs)
        .set({ state: "queued", runAfter: now, lockedBy: null, updatedAt: now })
        .where(and(eq(this.jobs.id, job.id), eq(this.jobs.state, "running"), eq(this.jobs.lockedBy, job.lockedBy)))
        .returning();
      if (rows[0]) requeued.push(rows[0]);
    }
    return requeued;
  }

  async get(jobId: number): Promise<JobRow | undefined> {
    const [row] = await this.db.select().from(this.jobs).where(eq(this.jobs.id, jobId));
    return row;
  }

  /** A video's jobs, oldest first (optionally of one kind). */
  async forVideo(videoId: string, kind?: JobKind): Promise<JobRow[]> {
    return this.db
      .select()
      .from(this.jobs)
      .where(and(eq(this.jobs.videoId, videoId), kind ? eq(this.jobs.kind, kind) : undefined))
      .orderBy(asc(this.jobs.id));
  }

  /** Whether the video has a queued or running job of this kind. */
  async hasActive(videoId: string, kind: JobKind): Promise<boolean> {
    const [row] = await this.db
      .select({ id: this.jobs.id })
      .from(this.jobs)
      .where(and(eq(this.jobs.videoId, videoId), eq(this.jobs.kind, kind), inArray(this.jobs.state, [...ACTIVE_JOB_STATES])))
      .limit(1);
    return !!row;
  }

  /** How many jobs of each kind are in each active state (for /metrics). */
  async activeCounts(): Promise<{ kind: JobKind; state: JobState; n: number }[]> {
    const rows = await this.db
      .select({ kind: this.jobs.kind, state: this.jobs.state, n: count() })
      .from(this.jobs)
      .where(inArray(this.jobs.state, [...ACTIVE_JOB_STATES]))
      .groupBy(this.jobs.kind, this.jobs.state);
    return rows.map((r) => ({ ...r, n: Number(r.n) }));
  }
}
