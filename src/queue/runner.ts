/**
 * A worker: claims jobs of the kinds it has handlers for and runs them, each kind with its own
 * concurrency. It runs inside a server (TRANSCODE_IN_SERVER, the default) or alone
 * (`bun run worker`, on any machine with the same DATABASE_URL and storage); any number may
 * run at once.
 *
 * While a job runs, the worker heartbeats it; a refused heartbeat (the job was cancelled,
 * deleted, or taken over after this worker looked dead) aborts the handler. On shutdown running
 * jobs are aborted and handed back to the queue without counting the attempt; one whose handler
 * returns anyway (it finished meanwhile) is done, not run again. An attempt that throws a
 * `transient` error (object storage did not answer) is not counted either: the job waits and
 * runs again, however long the outage lasts, instead of failing a video for it.
 */
import { EventEmitter } from "node:events";
import type { JobKind, JobRow } from "../db/schema.ts";
import { newOwnerId } from "../lib/process-identity.ts";
import { driverError } from "../db/unavailable.ts";
import { jobDuration } from "../metrics/metrics.ts";
import type { JobQueue } from "./jobs.ts";

/** Why a running job was stopped from outside. */
export type StopReason = "cancelled" | "lost" | "shutdown";

export interface JobContext {
  signal: AbortSignal;
  workerId: string;
  /** Whether the job is still this worker's (call before publishing a result). */
  stillMine(): Promise<boolean>;
}

/** What a handler's run resolved with: done, or done with nothing to do (`skipped` says why). */
export type JobResult = void | { skipped: string };

export interface JobHandler {
  readonly kind: JobKind;
  /** Jobs of this kind at once in one worker. */
  readonly concurrency: number;
  readonly maxAttempts: number;
  readonly retryBaseMs: number;
  readonly retryMaxMs: number;
  /** Does the work. Throws to fail the attempt (retried after a backoff while attempts remain). */
  run(job: JobRow, context: JobContext): Promise<JobResult>;
  /** The job was claimed (record it where users see it). */
  claimed?(job: JobRow): Promise<void>;
  /** The job finished: its outcome is final ("done", "skipped", "failed") or a retry is queued. */
  settled?(job: JobRow, outcome: Settled): Promise<void>;
  /** Called every sweep interval: queue what was missed (a crash between two writes). */
  sweep?(): Promise<void>;
}

export type Settled =
  | { outcome: "done" }
  | { outcome: "skipped"; reason: string }
  /** `runAfter` is on the queue's clock, which may not be this process's; `delayMs` is how long from now it is. */
  | { outcome: "retrying"; error: string; runAfter: Date; delayMs: number; attempts: number; maxAttempts: number }
  /** It met an outage (a `transient` error): it runs again at `runAfter`, the attempt not counted. */
  | { outcome: "waiting"; error: string; runAfter: Date; delayMs: number }
  | { outcome: "failed"; error: string }
  | { outcome: "released" };

export interface RunnerSettings {
  heartbeatMs: number;
  staleMs: number;
  pollMs: number;
  /** How often handlers' sweeps run. */
  sweepMs?: number;
}

export interface WorkerLog {
  info(message: string): void;
  warn(message: string): void;
}

interface Active {
  job: JobRow;
  abort: AbortController;
  reason?: StopReason;
  done: Promise<void>;
}

/** Worker ids alive in this process (tests and embedders may run several). */
const liveHere = new Set<string>();

const messageOf = (error: unknown): string => {
  const cause = driverError(error);
  return cause instanceof Error ? cause.message : String(cause);
};

export class JobRunner {
  readonly id = newOwnerId();
  /** "job" events: { videoId, jobId, kind, outcome } after each attempt, for logs and tests. */
  readonly events = new EventEmitter();
  private readonly active = new Map<number, Active>();
  private readonly handlers = new Map<JobKind, JobHandler>();
  private stopped = true;
  private loopDone: Promise<void> = Promise.resolve();
  private wakeUp: (() => void) | null = null;
  /** A wake that came while the loop was busy: it looks again before sleeping. */
  private wakePending = false;
  private lastSweep = 0;
  /**
   * When this worker last failed to reach the queue (0: never). Every heartbeat goes stale while
   * the database is down, so a worker takes over stale jobs only once it has itself been in
   * touch for a whole stale period: their workers, alive through the outage, have beaten again
   * by then. (Before, the first worker back took over, or failed for want of attempts, jobs
   * whose workers were still running them.)
   */
  private unreachableAt = 0;
  /** Queue operations that failed since it last answered: logged once, then when it answers. */
  private failures = 0;

  constructor(
    private readonly queue: JobQueue,
    handlers: readonly JobHandler[],
    private readonly settings: RunnerSettings,
    private readonly log: WorkerLog,
  ) {
    for (const handler of handlers) this.handlers.set(handler.kind, handler);
  }

  get busy(): number {
    return this.active.size;
  }

  get kinds(): JobKind[] {
    return [...this.handlers.keys()];
  }

  async start(): Promise<void> {
    if (!this.stopped) return;
    this.stopped = false;
    liveHere.add(this.id);
    this.loopDone = this.loop();
  }

  /** Look for work now (a job was just queued in this process). */
  wake(): void {
    if (this.wakeUp) this.wakeUp();
    else this.wakePending = true;
  }

  /** Stops the video's jobs in this worker, if any, and waits until they let go. */
  async cancelVideo(videoId: string, reason: StopReason = "cancelled"): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const active of this.active.values()) {
      if (active.job.videoId !== videoId) continue;
      active.reason ??= reason;
      active.abort.abort();
      waits.push(active.done);
    }
    await Promise.all(waits);
  }

  /** Stops claiming, aborts running jobs and hands them back to the queue (those that finish anyway are done). */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    for (const active of this.active.values()) {
      active.reason ??= "shutdown";
      active.abort.abort();
    }
    await Promise.all([this.loopDone, ...[...this.active.values()].map((a) => a.done)]);
    liveHere.delete(this.id);
  }

  /** A queue operation failed: remembered (see `unreachableAt`), logged once per outage. */
  private unreachable(message: string): void {
    this.unreachableAt = Date.now();
    if (this.failures++ === 0) this.log.warn(`${message} (further failures are not logged until the queue answers)`);
  }

  private reachable(): void {
    if (this.failures === 0) return;
    this.log.info(`the queue answers again, after ${this.failures} failed operation(s)`);
    this.failures = 0;
  }

  private running(kind: JobKind): number {
    let n = 0;
    for (const a of this.active.values()) if (a.job.kind === kind) n++;
    return n;
  }

  /** Kinds with a free slot, and the tightest attempt limit among them for the claim. */
  private freeKinds(): JobHandler[] {
    return [...this.handlers.values()].filter((h) => this.running(h.kind) < h.concurrency);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      this.wakePending = false;
      try {
        if (Date.now() - this.lastSweep >= (this.settings.sweepMs ?? 5000)) {
          this.lastSweep = Date.now();
          // Jobs of workers on this host that died are taken over now, not when they go stale.
          const requeued = await this.queue.requeueDead((id) => liveHere.has(id));
          if (requeued.length) this.log.warn(`${requeued.length} job(s) of a worker that died were requeued`);
          for (const handler of this.handlers.values()) await handler.sweep?.();
        }
        await this.claimWhileFree();
        this.reachable();
      } catch (error) {
        // SQLITE_BUSY beyond the busy timeout, a lost connection...: try again on the next tick.
        this.unreachable(`queue error: ${messageOf(error)}`);
      }
      if (this.stopped) break;
      if (this.wakePending) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, this.settings.pollMs);
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wakeUp = done;
      });
      this.wakeUp = null;
    }
  }

  private async claimWhileFree(): Promise<void> {
    // One claim per kind, so each kind's attempt limit applies to its own jobs.
    for (;;) {
      let claimed = false;
      for (const handler of this.freeKinds()) {
        if (this.stopped) return;
        const takeOver = Date.now() - this.unreachableAt >= this.settings.staleMs;
        const { job, exhausted } = await this.queue.claim(this.id, [handler.kind], { staleMs: this.settings.staleMs, maxAttempts: handler.maxAttempts, takeOver });
        for (const gone of exhausted) {
          const error = gone.error ?? "The worker running it stopped responding";
          this.log.warn(`${gone.kind} job ${gone.id} of video ${gone.videoId}: ${error}`);
          await handler.settled?.(gone, { outcome: "failed", error });
        }
        if (job) {
          claimed = true;
          this.launch(handler, job);
        }
      }
      if (!claimed) return;
    }
  }

  private launch(handler: JobHandler, job: JobRow): void {
    const active: Active = { job, abort: new AbortController(), done: Promise.resolve() };
    this.active.set(job.id, active);
    active.done = this.run(handler, active)
      .catch((error) => {
        // Only the bookkeeping can get here (the database refused a write): the job's heartbeat
        // stops, so it is taken over once stale.
        this.log.warn(`${job.kind} job ${job.id}: ${messageOf(error)}`);
      })
      .finally(() => {
        this.active.delete(job.id);
        this.wake();
      });
  }

  private async run(handler: JobHandler, active: Active): Promise<void> {
    const { job, abort } = active;
    const heartbeat = setInterval(() => {
      this.queue.heartbeat(job.id, this.id).then(
        (ok) => {
          if (!ok) {
            active.reason ??= "lost";
            abort.abort();
          }
        },
        (error) => this.unreachable(`heartbeat for job ${job.id} failed: ${messageOf(error)}`),
      );
    }, this.settings.heartbeatMs);
    const started = Date.now();
    let outcome = "done";
    const context: JobContext = {
      signal: abort.signal,
      workerId: this.id,
      stillMine: async () => !abort.signal.aborted && (await this.queue.heartbeat(job.id, this.id)),
    };
    try {
      await handler.claimed?.(job);
      const result = await handler.run(job, context);
      // A handler that returned has done its work, even if a shutdown asked it to stop while it
      // finished: handing it back would run it again (an import would download anew and could
      // fail a video that is by then ready). A delete or a lost claim still ends it here.
      if (abort.signal.aborted && active.reason !== "shutdown") throw new Error("stopped");
      if (!(await this.queue.complete(job, this.id))) outcome = "lost";
      else if (result && "skipped" in result) {
        outcome = "skipped";
        await handler.settled?.(job, { outcome: "skipped", reason: result.skipped });
      } else await handler.settled?.(job, { outcome: "done" });
    } catch (error) {
      if (abort.signal.aborted) {
        outcome = active.reason ?? "cancelled";
        if (outcome === "shutdown" && (await this.queue.release(job, this.id))) await handler.settled?.(job, { outcome: "released" });
        else if (outcome === "cancelled") await this.queue.cancelForVideo(job.videoId, job.kind);
      } else if ((error as { transient?: boolean }).transient) {
        const message = messageOf(error);
        // Now on the queue's clock, which stamped createdAt and may not be this process's: the
        // claim's heartbeat plus how long this run has taken here.
        const queueNow = (job.heartbeatAt?.getTime() ?? started) + (Date.now() - started);
        const delayMs = outageDelayMs(job, handler, queueNow);
        const runAfter = await this.queue.defer(job, this.id, message, delayMs);
        outcome = runAfter === undefined ? "lost" : "waiting";
        this.log.warn(`video ${job.videoId}: ${job.kind} waits for an outage to end: ${message}`);
        if (runAfter) await handler.settled?.(job, { outcome: "waiting", error: message, runAfter, delayMs });
      } else {
        const message = messageOf(error);
        // A permanent failure (the media itself is at fault) is not retried.
        const maxAttempts = (error as { permanent?: boolean }).permanent ? 0 : handler.maxAttempts;
        const result = await this.queue.fail(job, this.id, message, { maxAttempts, baseMs: handler.retryBaseMs, maxMs: handler.retryMaxMs, jitter: 0.2 });
        outcome = result === undefined ? "lost" : result.retrying ? "retrying" : "failed";
        this.log.warn(`video ${job.videoId}: ${job.kind} attempt ${job.attempts} failed: ${message}${result?.retrying ? " (will retry)" : ""}`);
        if (result?.retrying) await handler.settled?.(job, { outcome: "retrying", error: message, runAfter: result.runAfter, delayMs: result.delayMs, attempts: job.attempts, maxAttempts: handler.maxAttempts });
        else if (result) await handler.settled?.(job, { outcome: "failed", error: message });
      }
    } finally {
      clearInterval(heartbeat);
      jobDuration.observe({ kind: job.kind, outcome }, (Date.now() - started) / 1000);
      this.events.emit("job", { videoId: job.videoId, jobId: job.id, kind: job.kind, outcome });
    }
  }
}

/**
 * How long a job that met an outage waits: a quarter of its age, between the handler's retry
 * base and its cap, so a short outage costs seconds and a long one a try a minute or so.
 */
export function outageDelayMs(job: Pick<JobRow, "createdAt">, handler: Pick<JobHandler, "retryBaseMs" | "retryMaxMs">, now = Date.now()): number {
  return Math.round(Math.min(handler.retryMaxMs, Math.max(handler.retryBaseMs, (now - job.createdAt.getTime()) / 4)));
}
