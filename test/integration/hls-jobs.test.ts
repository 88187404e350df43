/**
 * The durable transcode queue on a real SQLite database: enqueue, atomic claims (also across
 * processes), heartbeats and takeover of abandoned jobs, retries with backoff, failure,
 * release, cancellation and crash recovery by pid.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { eq } from "drizzle-orm";
import { openDatabase, type DbHandle } from "../../src/db/client.ts";
import { transcodeJobs, videos } from "../../src/db/schema.ts";
import { TranscodeQueue, newWorkerId } from "../../src/queue/jobs.ts";
import { localPid } from "../../src/lib/process-identity.ts";

let dir: string;
let handle: DbHandle;
let clock: number;
let queue: TranscodeQueue;
let changes: string[];

const CLAIM = { staleMs: 10_000, maxAttempts: 3 };
const FAIL = { maxAttempts: 3, baseMs: 1000, maxMs: 60_000 };

function addVideo(id: string, status: "ready" | "processing" = "ready") {
  const now = new Date(clock);
  handle.db
    .insert(videos)
    .values({ id, title: id, originalFilename: `${id}.mp4`, storagePath: `videos/${id}/source.mp4`, status, createdAt: now, updatedAt: now })
    .run();
}

const videoHls = (id: string) => handle.db.select({ status: videos.hlsStatus, progress: videos.hlsProgress, error: videos.hlsError }).from(videos).where(eq(videos.id, id)).get();

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "spool-jobs-"));
  handle = openDatabase(`file:${join(dir, "spool.db")}`);
  // Real time, so that other processes (which use the real clock) see queued jobs as due.
  clock = Date.now();
  changes = [];
  queue = new TranscodeQueue(handle.db, (id) => changes.push(id), () => clock);
});

afterEach(async () => {
  handle.close();
  await rm(dir, { recursive: true, force: true });
});

describe("enqueue", () => {
  test("only a ready video without a build, once", () => {
    addVideo("aaaa");
    addVideo("bbbb", "processing");
    const job = queue.enqueue("aaaa");
    expect(job).toMatchObject({ videoId: "aaaa", state: "queued", attempts: 0 });
    expect(queue.enqueue("aaaa")).toBeNull();
    expect(queue.enqueue("bbbb")).toBeNull();
    expect(queue.enqueue("nope")).toBeNull();
    expect(videoHls("aaaa")).toEqual({ status: "queued", progress: 0, error: null });
    expect(videoHls("bbbb")!.status).toBe("none");
    expect(changes).toEqual(["aaaa"]);
  });

  test("the sweep queues every ready video still without a build", () => {
    for (const id of ["v001", "v002", "v003"]) addVideo(id);
    addVideo("v004", "processing");
    queue.enqueue("v002");
    expect(queue.enqueueMissing()).toBe(2);
    expect(queue.enqueueMissing()).toBe(0);
    expect(handle.db.select().from(transcodeJobs).all().map((j) => j.videoId).sort()).toEqual(["v001", "v002", "v003"]);
  });
});

describe("claim", () => {
  test("atomic: one worker gets the job, the video becomes processing", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    const job = queue.claim("w1", CLAIM)!;
    expect(job).toMatchObject({ state: "running", lockedBy: "w1", attempts: 1 });
    expect(job.heartbeatAt!.getTime()).toBe(clock);
    expect(queue.claim("w2", CLAIM)).toBeNull();
    expect(videoHls("aaaa")!.status).toBe("processing");
  });

  test("oldest due job first; jobs waiting for a retry are not due", () => {
    for (const id of ["v001", "v002"]) {
      addVideo(id);
      queue.enqueue(id);
      clock += 1;
    }
    const first = queue.claim("w1", CLAIM)!;
    expect(first.videoId).toBe("v001");
    queue.fail(first, "w1", "boom", FAIL);
    expect(queue.claim("w1", CLAIM)!.videoId).toBe("v002");
    expect(queue.claim("w1", CLAIM)).toBeNull();
    clock += 1000;
    expect(queue.claim("w1", CLAIM)!.videoId).toBe("v001");
  });

  test("a job whose heartbeat went stale is taken over; the old worker is locked out", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    const job = queue.claim("w1", CLAIM)!;
    clock += 5_000;
    expect(queue.heartbeat(job.id, "w1")).toBe(true);
    clock += 9_999;
    expect(queue.claim("w2", CLAIM)).toBeNull();
    clock += 2;
    const taken = queue.claim("w2", CLAIM)!;
    expect(taken).toMatchObject({ id: job.id, lockedBy: "w2", attempts: 2 });
    expect(queue.heartbeat(job.id, "w1")).toBe(false);
    expect(queue.progress(job, "w1", 50)).toBe(false);
    expect(queue.complete(job, "w1")).toBe(false);
    expect(queue.fail(job, "w1", "late", FAIL)).toBeUndefined();
    expect(queue.progress(taken, "w2", 42)).toBe(true);
    expect(videoHls("aaaa")).toEqual({ status: "processing", progress: 42, error: null });
    expect(queue.complete(taken, "w2")).toBe(true);
    expect(videoHls("aaaa")).toEqual({ status: "ready", progress: 100, error: null });
  });

  test("a stale job that used all its attempts fails instead of running again", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    for (let i = 0; i < 3; i++) {
      expect(queue.claim(`w${i}`, CLAIM)).not.toBeNull();
      clock += 20_000;
    }
    expect(queue.claim("w9", CLAIM)).toBeNull();
    expect(queue.get(1)).toMatchObject({ state: "failed", attempts: 3 });
    expect(videoHls("aaaa")).toMatchObject({ status: "failed", error: "The worker running the transcode stopped responding (3 attempts)" });
  });

  test("claims from several processes never take the same job twice", async () => {
    const ids = Array.from({ length: 30 }, (_, i) => `vid${String(i).padStart(3, "0")}`);
    for (const id of ids) {
      addVideo(id);
      queue.enqueue(id);
    }
    const script = `
      import { openDatabase } from ${JSON.stringify(resolve(import.meta.dir, "../../src/db/client.ts"))};
      import { TranscodeQueue } from ${JSON.stringify(resolve(import.meta.dir, "../../src/modules/hls/jobs.ts"))};
      const handle = openDatabase(process.argv[2]);
      const queue = new TranscodeQueue(handle.db);
      const got = [];
      for (;;) {
        const job = queue.claim(process.argv[3], { staleMs: 60000, maxAttempts: 3 });
        if (!job) break;
        got.push(job.videoId);
        await Bun.sleep(Math.random() * 3);
      }
      console.log(JSON.stringify(got));
      handle.close();
    `;
    const file = join(dir, "claimer.ts");
    await Bun.write(file, script);
    const procs = [1, 2, 3].map((n) => Bun.spawn([process.execPath, file, `file:${join(dir, "spool.db")}`, `p${n}`], { stdout: "pipe", stderr: "inherit" }));
    const results = await Promise.all(procs.map(async (p) => JSON.parse(await new Response(p.stdout).text()) as string[]));
    const all = results.flat();
    expect(all.sort()).toEqual(ids);
    expect(new Set(all).size).toBe(ids.length);
  });
});

describe("failures", () => {
  test("retries with exponential backoff, then fails the video with the error", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    let job = queue.claim("w1", CLAIM)!;
    expect(queue.fail(job, "w1", "Invalid data found\nwhen processing input", FAIL)).toEqual({ retrying: true, runAfter: new Date(clock + 1000) });
    expect(videoHls("aaaa")).toEqual({ status: "queued", progress: 0, error: "Attempt 1 of 3 failed (Invalid data found when processing input); retrying in 1 s" });
    expect(queue.get(job.id)).toMatchObject({ state: "queued", lockedBy: null, error: "Invalid data found when processing input" });

    clock += 1000;
    job = queue.claim("w1", CLAIM)!;
    expect(queue.fail(job, "w1", "again", FAIL)).toEqual({ retrying: true, runAfter: new Date(clock + 2000) });
    clock += 1999;
    expect(queue.claim("w1", CLAIM)).toBeNull();
    clock += 1;
    job = queue.claim("w1", CLAIM)!;
    expect(job.attempts).toBe(3);
    expect(queue.fail(job, "w1", "moov atom not found", FAIL)).toEqual({ retrying: false });
    expect(queue.get(job.id)).toMatchObject({ state: "failed", error: "moov atom not found" });
    expect(videoHls("aaaa")).toEqual({ status: "failed", progress: 0, error: "moov atom not found" });
    clock += 3_600_000;
    expect(queue.claim("w1", CLAIM)).toBeNull();
  });

  test("a worker shutting down hands the job back without spending an attempt", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    const job = queue.claim("w1", CLAIM)!;
    queue.progress(job, "w1", 30);
    expect(queue.release(job, "w1")).toBe(true);
    expect(queue.get(job.id)).toMatchObject({ state: "queued", attempts: 0, lockedBy: null });
    expect(videoHls("aaaa")).toEqual({ status: "queued", progress: 0, error: null });
    expect(queue.claim("w2", CLAIM)).toMatchObject({ attempts: 1, lockedBy: "w2" });
  });

  test("skipping marks the video with the reason", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    const job = queue.claim("w1", CLAIM)!;
    expect(queue.skip(job, "w1", "no video stream")).toBe(true);
    expect(videoHls("aaaa")).toEqual({ status: "skipped", progress: 0, error: "no video stream" });
    expect(queue.get(job.id)!.state).toBe("done");
  });
});

describe("cancellation and crashes", () => {
  test("cancelling locks the running worker out; deleting the video deletes its jobs", () => {
    addVideo("aaaa");
    queue.enqueue("aaaa");
    const job = queue.claim("w1", CLAIM)!;
    expect(queue.cancelForVideo("aaaa")).toBe(1);
    expect(queue.get(job.id)!.state).toBe("cancelled");
    expect(queue.heartbeat(job.id, "w1")).toBe(false);
    expect(queue.complete(job, "w1")).toBe(false);
    handle.db.delete(videos).where(eq(videos.id, "aaaa")).run();
    expect(queue.forVideo("aaaa")).toEqual([]);
  });

  test("jobs of dead local workers are requeued at once; live and remote ones are left alone", async () => {
    for (const id of ["dead", "live", "remote", "mine"]) {
      addVideo(id);
      queue.enqueue(id);
    }
    const sleeper = Bun.spawn(["sleep", "30"]);
    const finished = Bun.spawn(["true"]);
    await finished.exited;
    const me = newWorkerId();
    const owners: Record<string, string> = {
      dead: `${hostname()}:${finished.pid}:aaaa`,
      live: `${hostname()}:${sleeper.pid}:bbbb`,
      remote: `elsewhere.example:${finished.pid}:cccc`,
      mine: me,
    };
    for (const [id, owner] of Object.entries(owners)) {
      const job = queue.claim(owner, CLAIM)!;
      expect(job.videoId).toBe(id);
    }
    try {
      expect(queue.requeueDead(me)).toBe(1);
      const states = Object.fromEntries(queue.forVideo("dead").concat(queue.forVideo("live"), queue.forVideo("remote"), queue.forVideo("mine")).map((j) => [j.videoId, j.state]));
      expect(states).toEqual({ dead: "queued", live: "running", remote: "running", mine: "running" });
      expect(videoHls("dead")!.status).toBe("queued");
      // The attempt the crash cost stays counted.
      expect(queue.forVideo("dead")[0]!.attempts).toBe(1);
    } finally {
      sleeper.kill();
    }
  });

  test("worker ids name their host and pid", () => {
    const id = newWorkerId();
    expect(localPid(id)).toBe(process.pid);
    expect(localPid(`other-host:${process.pid}:x`)).toBeNull();
    expect(localPid("garbage")).toBeNull();
    expect(localPid(`${hostname()}:notapid:x`)).toBeNull();
  });
});
