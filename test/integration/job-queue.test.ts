/**
 * The durable job queue on both real databases (SQLite and PostgreSQL): enqueue (one active job
 * per video and kind), atomic claims (also across processes), heartbeats and takeover of
 * abandoned jobs, retries with backoff, failure, release, cancellation and crash recovery by pid;
 * on PostgreSQL, all of it on the database's clock whatever the workers' clocks say.
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Database } from "bun:sqlite";
import { eq, sql, type AnyColumn } from "drizzle-orm";
import { openDatabase, type SpoolDb } from "../../src/db/client.ts";
import { JobQueue } from "../../src/queue/jobs.ts";
import { JobRunner, outageDelayMs, type JobHandler } from "../../src/queue/runner.ts";
import { localPid, newOwnerId } from "../../src/lib/process-identity.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

const CLAIM = { staleMs: 10_000, maxAttempts: 3 };
const FAIL = { maxAttempts: 3, baseMs: 1000, maxMs: 60_000 };

let pg: TestPostgres;
beforeAll(async () => {
  pg = await startPostgres();
}, 30_000);
afterAll(() => pg?.stop());

for (const dialect of ["sqlite", "postgres"] as const) {
  describe(dialect, () => {
    let dir: string;
    let url: string;
    let handle: SpoolDb;
    let clock: number;
    let queue: JobQueue;

    /**
     * Lets `ms` pass for the queue. SQLite: its clock is the injected one. PostgreSQL: the queue
     * reads the database's clock, which tests cannot step, so every stored job time moves back.
     */
    async function advance(ms: number) {
      clock += ms;
      if (dialect !== "postgres") return;
      const { jobs } = handle.tables;
      const back = (column: AnyColumn) => sql`${column} - ${ms}::double precision * interval '1 millisecond'`;
      await handle.db.update(jobs).set({ runAfter: back(jobs.runAfter), heartbeatAt: back(jobs.heartbeatAt), createdAt: back(jobs.createdAt), updatedAt: back(jobs.updatedAt) });
    }
    /**
     * Margin around a boundary in time: none needed on SQLite's stepped clock; on PostgreSQL the
     * database's clock moves on between two statements (by far less than this).
     */
    const slack = dialect === "postgres" ? 1000 : 1;

    async function addVideo(id: string) {
      const now = new Date(clock);
      await handle.db
        .insert(handle.tables.videos)
        .values({ id, title: id, originalFilename: `${id}.mp4`, storagePath: `videos/${id}/source.mp4`, status: "ready", createdAt: now, updatedAt: now });
    }

    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "spool-jobs-"));
      url = dialect === "sqlite" ? `file:${join(dir, "spool.db")}` : await pg.createDatabase();
      handle = await openDatabase(url);
      // Real time, so that other processes (which use the real clock) see queued jobs as due.
      clock = Date.now();
      queue = new JobQueue(handle, () => clock);
    });

    afterEach(async () => {
      await handle.close();
      await rm(dir, { recursive: true, force: true });
    });

    test("enqueue: one active job per video and kind, with its payload", async () => {
      await addVideo("aaaa");
      const job = await queue.enqueue("transcode", "aaaa");
      expect(job).toMatchObject({ kind: "transcode", videoId: "aaaa", state: "queued", attempts: 0, payload: null });
      expect(await queue.enqueue("transcode", "aaaa")).toBeNull();
      const ingest = await queue.enqueue("ingest", "aaaa", { sha256: "ab" });
      expect(ingest).toMatchObject({ kind: "ingest", payload: '{"sha256":"ab"}' });
      expect(await queue.hasActive("aaaa", "ingest")).toBe(true);
      // Done, a new one may be queued.
      const claimed = (await queue.claim("w1", ["ingest"], CLAIM)).job!;
      expect(await queue.complete(claimed, "w1")).toBe(true);
      expect(await queue.hasActive("aaaa", "ingest")).toBe(false);
      expect(await queue.enqueue("ingest", "aaaa")).not.toBeNull();
    });

    test("claim: atomic, of the asked kinds only", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      expect((await queue.claim("w1", ["ingest"], CLAIM)).job).toBeNull();
      const { job } = await queue.claim("w1", ["transcode"], CLAIM);
      expect(job).toMatchObject({ state: "running", lockedBy: "w1", attempts: 1 });
      expect(job!.heartbeatAt).toEqual(job!.updatedAt);
      if (dialect === "sqlite") expect(job!.heartbeatAt!.getTime()).toBe(clock);
      expect((await queue.claim("w2", ["transcode"], CLAIM)).job).toBeNull();
    });

    test("oldest due job first; jobs waiting for a retry are not due", async () => {
      for (const id of ["v001", "v002"]) {
        await addVideo(id);
        await queue.enqueue("transcode", id);
        await advance(1);
      }
      const first = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      expect(first.videoId).toBe("v001");
      await queue.fail(first, "w1", "boom", FAIL);
      expect((await queue.claim("w1", ["transcode"], CLAIM)).job!.videoId).toBe("v002");
      expect((await queue.claim("w1", ["transcode"], CLAIM)).job).toBeNull();
      await advance(1000);
      expect((await queue.claim("w1", ["transcode"], CLAIM)).job!.videoId).toBe("v001");
    });

    test("a job whose heartbeat went stale is taken over; the old worker is locked out", async () => {
      await addVideo("aaaa");
      await queue.enqueue("ingest", "aaaa");
      const job = (await queue.claim("w1", ["ingest"], CLAIM)).job!;
      await advance(5_000);
      expect(await queue.heartbeat(job.id, "w1")).toBe(true);
      await advance(CLAIM.staleMs - slack);
      expect((await queue.claim("w2", ["ingest"], CLAIM)).job).toBeNull();
      await advance(2 * slack);
      const taken = (await queue.claim("w2", ["ingest"], CLAIM)).job!;
      expect(taken).toMatchObject({ id: job.id, lockedBy: "w2", attempts: 2 });
      expect(await queue.heartbeat(job.id, "w1")).toBe(false);
      expect(await queue.complete(job, "w1")).toBe(false);
      expect(await queue.fail(job, "w1", "late", FAIL)).toBeUndefined();
      expect(await queue.complete(taken, "w2")).toBe(true);
      expect(await queue.get(job.id)).toMatchObject({ state: "done", lockedBy: null });
    });

    test("a stale job that used all its attempts fails instead of running again, and is reported", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      for (let i = 0; i < 3; i++) {
        expect((await queue.claim(`w${i}`, ["transcode"], CLAIM)).job).not.toBeNull();
        await advance(20_000);
      }
      const { job, exhausted } = await queue.claim("w9", ["transcode"], CLAIM);
      expect(job).toBeNull();
      expect(exhausted).toMatchObject([{ videoId: "aaaa", state: "failed", attempts: 3 }]);
      expect((await queue.forVideo("aaaa"))[0]!.error).toContain("stopped responding");
    });

    test("retries with exponential backoff, then fails with the error", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      let job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      const first = await queue.fail(job, "w1", "Invalid data found\nwhen processing input", { ...FAIL, jitter: 0 });
      // The backoff counts from the failure, on the queue's clock (the row's updatedAt).
      const failedAt = async () => (await queue.get(job.id))!.updatedAt.getTime();
      expect(first).toEqual({ retrying: true, runAfter: new Date((await failedAt()) + 1000), delayMs: 1000, attempts: 1 });
      if (dialect === "sqlite") expect(await failedAt()).toBe(clock);
      expect(await queue.get(job.id)).toMatchObject({ state: "queued", lockedBy: null, error: "Invalid data found when processing input" });
      await advance(1000);
      job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      const second = await queue.fail(job, "w1", "again", FAIL);
      expect(second).toEqual({ retrying: true, runAfter: new Date((await failedAt()) + 2000), delayMs: 2000, attempts: 2 });
      await advance(2000 - slack);
      expect((await queue.claim("w1", ["transcode"], CLAIM)).job).toBeNull();
      await advance(slack);
      job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      expect(job.attempts).toBe(3);
      expect(await queue.fail(job, "w1", "moov atom not found", FAIL)).toEqual({ retrying: false, attempts: 3 });
      expect(await queue.get(job.id)).toMatchObject({ state: "failed", error: "moov atom not found" });
      await advance(3_600_000);
      expect((await queue.claim("w1", ["transcode"], CLAIM)).job).toBeNull();
    });

    test("a job whose local worker died on each of its attempts fails instead of being requeued for ever, and is reported", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      const gone = Bun.spawn(["true"]);
      await gone.exited;
      const dead = `${hostname()}:${gone.pid}:dddd`;
      for (let i = 0; i < 3; i++) {
        expect((await queue.claim(dead, ["transcode"], CLAIM)).job).toMatchObject({ attempts: i + 1 });
        expect((await queue.requeueDead(() => false)).map((j) => j.videoId)).toEqual(["aaaa"]);
      }
      const { job, exhausted } = await queue.claim("w9", ["transcode"], CLAIM);
      expect(job).toBeNull();
      expect(exhausted).toMatchObject([{ videoId: "aaaa", state: "failed", attempts: 3 }]);
      expect((await queue.claim("w9", ["transcode"], CLAIM)).job).toBeNull();
    });

    for (const [name, finishes, expected] of [
      ["a job that finishes while a shutdown stops it is done, not handed back to run again", true, { state: "done", attempts: 1 }],
      ["a job that stops for a shutdown is handed back without spending its attempt", false, { state: "queued", attempts: 0 }],
    ] as const) {
      test(name, async () => {
        await addVideo("aaaa");
        let entered!: () => void;
        const started = new Promise<void>((resolve) => (entered = resolve));
        let runs = 0;
        const handler: JobHandler = {
          kind: "import",
          concurrency: 1,
          maxAttempts: 3,
          retryBaseMs: 1000,
          retryMaxMs: 1000,
          async run(_job, { signal }) {
            runs++;
            entered();
            await new Promise((resolve) => signal.addEventListener("abort", resolve));
            // Work that cannot be interrupted completes anyway; other work stops.
            if (!finishes) throw new Error("stopped");
          },
        };
        const runner = new JobRunner(queue, [handler], { heartbeatMs: 1000, staleMs: 10_000, pollMs: 50 }, { info() {}, warn() {} });
        await runner.start();
        const job = (await queue.enqueue("import", "aaaa"))!;
        runner.wake();
        await started;
        await runner.stop();
        expect(runs).toBe(1);
        expect(await queue.get(job.id)).toMatchObject(expected);
      });
    }

    test("a worker shutting down hands the job back without spending an attempt", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      const job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      expect(await queue.release(job, "w1")).toBe(true);
      expect(await queue.get(job.id)).toMatchObject({ state: "queued", attempts: 0, lockedBy: null });
      expect((await queue.claim("w2", ["transcode"], CLAIM)).job).toMatchObject({ attempts: 1, lockedBy: "w2" });
    });

    test("an attempt that met an outage waits, uncounted, however many times; the error is kept", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      for (let i = 0; i < 5; i++) {
        const job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
        expect(job.attempts).toBe(1);
        const runAfter = await queue.defer(job, "w1", "object storage did not answer", 5000);
        const row = (await queue.get(job.id))!;
        expect(runAfter).toEqual(new Date(row.updatedAt.getTime() + 5000));
        if (dialect === "sqlite") expect(row.updatedAt.getTime()).toBe(clock);
        expect(row).toMatchObject({ state: "queued", attempts: 0, lockedBy: null, error: "object storage did not answer" });
        expect((await queue.claim("w1", ["transcode"], CLAIM)).job).toBeNull();
        await advance(5000);
      }
      // Not this worker's any more: nothing changes.
      const job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      expect(await queue.defer(job, "w2", "x", 1000)).toBeUndefined();
    });

    test("a claimer out of touch lately takes no stale job over (its worker may have been cut off too), nor fails one", async () => {
      await addVideo("aaaa");
      await addVideo("bbbb");
      await queue.enqueue("transcode", "aaaa");
      const running = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      await queue.enqueue("transcode", "bbbb");
      const exhausted = (await queue.claim("w1", ["transcode"], { ...CLAIM, maxAttempts: 1 })).job!;
      await advance(CLAIM.staleMs + 1);
      // Both heartbeats are stale; the first job has attempts left, the second none.
      expect(await queue.claim("w2", ["transcode"], { ...CLAIM, maxAttempts: 1, takeOver: false })).toEqual({ job: null, exhausted: [] });
      expect(await queue.get(running.id)).toMatchObject({ state: "running", lockedBy: "w1" });
      expect(await queue.get(exhausted.id)).toMatchObject({ state: "running", lockedBy: "w1" });
      const taken = await queue.claim("w2", ["transcode"], { ...CLAIM, maxAttempts: 1, takeOver: true });
      expect(taken.exhausted.map((j) => j.id).sort()).toEqual([running.id, exhausted.id].sort());
    });

    // SQLite only: another connection's write lock is how a test makes the queue unreachable here.
    if (dialect === "sqlite") test("a worker that could not reach the queue waits a stale period before taking jobs over", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      const job = (await queue.claim("w-elsewhere", ["transcode"], CLAIM)).job!;
      // Stale to the queue (its clock), as every heartbeat is after an outage.
      clock += 60_000;
      const ran: number[] = [];
      const handler: JobHandler = { kind: "transcode", concurrency: 1, maxAttempts: 3, retryBaseMs: 1000, retryMaxMs: 1000, run: async (j) => void ran.push(j.id) };
      // Another connection holds SQLite's write lock: the worker's claims fail (busy) until it lets go.
      const blocker = new Database(url.slice("file:".length));
      blocker.exec("BEGIN IMMEDIATE");
      let failed!: () => void;
      const firstFailure = new Promise<void>((resolve) => (failed = resolve));
      const runner = new JobRunner(queue, [handler], { heartbeatMs: 1000, staleMs: 1500, pollMs: 50 }, { info() {}, warn: (m) => m.startsWith("queue error") && failed() });
      await runner.start();
      try {
        await firstFailure;
        blocker.exec("ROLLBACK");
        // In touch again, but not for a whole stale period yet: the job stays its worker's.
        await Bun.sleep(800);
        expect(await queue.get(job.id)).toMatchObject({ state: "running", lockedBy: "w-elsewhere" });
        expect(ran).toEqual([]);
        // Past it, a job whose worker still has not beaten is taken over.
        for (let i = 0; i < 60 && ran.length === 0; i++) await Bun.sleep(50);
        expect(ran).toEqual([job.id]);
      } finally {
        await runner.stop();
        blocker.close();
      }
    });

    test("cancelling locks the running worker out; deleting the video deletes its jobs", async () => {
      await addVideo("aaaa");
      await queue.enqueue("transcode", "aaaa");
      const job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
      expect(await queue.cancelForVideo("aaaa")).toBe(1);
      expect((await queue.get(job.id))!.state).toBe("cancelled");
      expect(await queue.heartbeat(job.id, "w1")).toBe(false);
      expect(await queue.complete(job, "w1")).toBe(false);
      await handle.db.delete(handle.tables.videos).where(eq(handle.tables.videos.id, "aaaa"));
      expect(await queue.forVideo("aaaa")).toEqual([]);
    });

    test("jobs of dead local workers are requeued at once; live and remote ones are left alone", async () => {
      for (const id of ["dead", "live", "remote", "mine"]) {
        await addVideo(id);
        await queue.enqueue("transcode", id);
        await advance(1);
      }
      const sleeper = Bun.spawn(["sleep", "30"]);
      const finished = Bun.spawn(["true"]);
      await finished.exited;
      const me = newOwnerId();
      const owners: Record<string, string> = {
        dead: `${hostname()}:${finished.pid}:aaaa`,
        live: `${hostname()}:${sleeper.pid}:bbbb`,
        remote: `elsewhere.example:${finished.pid}:cccc`,
        mine: me,
      };
      for (const [id, owner] of Object.entries(owners)) expect((await queue.claim(owner, ["transcode"], CLAIM)).job!.videoId).toBe(id);
      try {
        const requeued = await queue.requeueDead((id) => id === me);
        expect(requeued.map((j) => j.videoId)).toEqual(["dead"]);
        const states: Record<string, string> = {};
        for (const id of Object.keys(owners)) states[id] = (await queue.forVideo(id))[0]!.state;
        expect(states).toEqual({ dead: "queued", live: "running", remote: "running", mine: "running" });
        // The attempt the crash cost stays counted.
        expect((await queue.forVideo("dead"))[0]!.attempts).toBe(1);
      } finally {
        sleeper.kill();
      }
    });

    // PostgreSQL only: workers there may run on several machines, whose clocks disagree; the
    // queue reads the database's. (SQLite's processes share one machine, and its clock.)
    if (dialect === "postgres") describe("workers whose clocks are ten minutes off", () => {
      const SKEW = 10 * 60_000;
      let fast: JobQueue;
      let slow: JobQueue;
      beforeEach(() => {
        fast = new JobQueue(handle, () => Date.now() + SKEW);
        slow = new JobQueue(handle, () => Date.now() - SKEW);
      });
      /** The database runs on this machine: its clock is this process's, within a few seconds. */
      const near = (time: Date | null | undefined, expected: number) => expect(Math.abs(time!.getTime() - expected)).toBeLessThan(5_000);

      test("one ahead takes over no job whose worker beat moments ago, nor fails one; one behind beats on the database's clock", async () => {
        await addVideo("aaaa");
        await addVideo("bbbb");
        await queue.enqueue("transcode", "aaaa");
        const live = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
        await queue.enqueue("transcode", "bbbb");
        const lastTry = (await queue.claim("w1", ["transcode"], { ...CLAIM, maxAttempts: 1 })).job!;
        expect(await queue.heartbeat(live.id, "w1")).toBe(true);
        expect(await fast.claim("w2", ["transcode"], CLAIM)).toEqual({ job: null, exhausted: [] });
        expect(await fast.claim("w2", ["transcode"], { ...CLAIM, maxAttempts: 1 })).toEqual({ job: null, exhausted: [] });
        expect(await queue.get(live.id)).toMatchObject({ state: "running", lockedBy: "w1" });
        expect(await queue.get(lastTry.id)).toMatchObject({ state: "running", lockedBy: "w1" });
        // A job claimed and beaten by the slow worker looks fresh to everyone else.
        expect(await queue.cancelForVideo("aaaa")).toBe(1);
        await queue.enqueue("transcode", "aaaa");
        const slowJob = (await slow.claim("w3", ["transcode"], CLAIM)).job!;
        near(slowJob.heartbeatAt, Date.now());
        expect(await slow.heartbeat(slowJob.id, "w3")).toBe(true);
        near((await queue.get(slowJob.id))!.heartbeatAt, Date.now());
        expect((await queue.claim("w4", ["transcode"], CLAIM)).job).toBeNull();
        expect((await fast.claim("w4", ["transcode"], CLAIM)).job).toBeNull();
      });

      test("a job whose worker stopped beating is taken over after the stale period, by either", async () => {
        await addVideo("aaaa");
        await queue.enqueue("transcode", "aaaa");
        const job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
        await advance(CLAIM.staleMs - slack);
        expect((await fast.claim("w2", ["transcode"], CLAIM)).job).toBeNull();
        await advance(2 * slack);
        expect((await slow.claim("w2", ["transcode"], CLAIM)).job).toMatchObject({ id: job.id, lockedBy: "w2", attempts: 2 });
      });

      test("one behind claims a job due now; one ahead queues and hands back jobs that are due now, not in ten minutes", async () => {
        await addVideo("aaaa");
        await addVideo("bbbb");
        await queue.enqueue("transcode", "aaaa");
        expect((await slow.claim("w1", ["transcode"], CLAIM)).job).toMatchObject({ videoId: "aaaa", lockedBy: "w1" });
        const queued = (await fast.enqueue("transcode", "bbbb"))!;
        near(queued.runAfter, Date.now());
        near(queued.createdAt, Date.now());
        const job = (await queue.claim("w2", ["transcode"], CLAIM)).job!;
        expect(job).toMatchObject({ videoId: "bbbb", lockedBy: "w2" });
        expect(await fast.release(job, "w2")).toBe(true);
        expect((await slow.claim("w3", ["transcode"], CLAIM)).job).toMatchObject({ videoId: "bbbb", lockedBy: "w3" });
      });

      test("backoff and deferrals count from the database's clock", async () => {
        await addVideo("aaaa");
        await queue.enqueue("transcode", "aaaa");
        let job = (await queue.claim("w1", ["transcode"], CLAIM)).job!;
        const failed = await slow.fail(job, "w1", "boom", { ...FAIL, jitter: 0 });
        const row = (await queue.get(job.id))!;
        near(row.runAfter, Date.now() + 1000);
        expect(row.runAfter.getTime() - row.updatedAt.getTime()).toBe(1000);
        expect(failed).toEqual({ retrying: true, runAfter: row.runAfter, delayMs: 1000, attempts: 1 });
        // Not due yet, whoever asks.
        expect((await fast.claim("w2", ["transcode"], CLAIM)).job).toBeNull();
        expect((await queue.claim("w2", ["transcode"], CLAIM)).job).toBeNull();
        await advance(1000);
        job = (await queue.claim("w2", ["transcode"], CLAIM)).job!;
        expect(job).toMatchObject({ videoId: "aaaa", lockedBy: "w2", attempts: 2 });
        const runAfter = (await fast.defer(job, "w2", "object storage did not answer", 5000))!;
        near(runAfter, Date.now() + 5000);
        expect((await queue.claim("w3", ["transcode"], CLAIM)).job).toBeNull();
        await advance(5000);
        expect((await queue.claim("w3", ["transcode"], CLAIM)).job).toMatchObject({ videoId: "aaaa", lockedBy: "w3" });
      });
    });

    test("claims from several processes never take the same job twice", async () => {
      const ids = Array.from({ length: 30 }, (_, i) => `vid${String(i).padStart(3, "0")}`);
      for (const id of ids) {
        await addVideo(id);
        await queue.enqueue("transcode", id);
      }
      const script = `
        import { openDatabase } from ${JSON.stringify(resolve(import.meta.dir, "../../src/db/client.ts"))};
        import { JobQueue } from ${JSON.stringify(resolve(import.meta.dir, "../../src/queue/jobs.ts"))};
        const handle = await openDatabase(process.argv[2]);
        const queue = new JobQueue(handle);
        const got = [];
        for (;;) {
          const { job } = await queue.claim(process.argv[3], ["transcode"], { staleMs: 60000, maxAttempts: 3 });
          if (!job) break;
          got.push(job.videoId);
          await Bun.sleep(Math.random() * 3);
        }
        console.log(JSON.stringify(got));
        await handle.close();
      `;
      const file = join(dir, "claimer.ts");
      await Bun.write(file, script);
      const procs = [1, 2, 3].map((n) => Bun.spawn([process.execPath, file, url, `p${n}`], { stdout: "pipe", stderr: "inherit" }));
      const results = await Promise.all(procs.map(async (p) => JSON.parse(await new Response(p.stdout).text()) as string[]));
      const all = results.flat();
      expect(all.sort()).toEqual(ids);
      expect(new Set(all).size).toBe(ids.length);
    }, 30_000);
  });
}

test("worker ids name their host and pid", () => {
  const id = newOwnerId();
  expect(localPid(id)).toBe(process.pid);
  expect(localPid(`other-host:${process.pid}:x`)).toBeNull();
  expect(localPid("garbage")).toBeNull();
  expect(localPid(`${hostname()}:notapid:x`)).toBeNull();
});

test.each([
  // [job age, wait]: a quarter of the age, between the handler's base (5 s) and cap (60 s).
  [0, 5_000],
  [10_000, 5_000],
  [40_000, 10_000],
  [200_000, 50_000],
  [3_600_000, 60_000],
])("a job %p ms old that met an outage waits %p ms", (age, wait) => {
  const now = 1_800_000_000_000;
  expect(outageDelayMs({ createdAt: new Date(now - age) }, { retryBaseMs: 5_000, retryMaxMs: 60_000 }, now)).toBe(wait);
});
