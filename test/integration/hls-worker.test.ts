/**
 * The transcode worker under real conditions: a separate `bun run worker` process, SIGKILL in
 * the middle of a transcode and recovery, a graceful restart, retries with backoff up to
 * failure, cancellation by deleting the video (ffmpeg killed), and TRANSCODE_CONCURRENCY.
 * Real ffmpeg, real processes, a real database (SQLite, or PostgreSQL with
 * SPOOL_TEST_DATABASE=postgres), no mocks.
 */
import { afterEach, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { startWorker as startInProcess, stopWorker } from "../../src/app.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { getVideo, hlsSettled, makeSource, processesMentioning, readEvents, upload, waitForVideo, type VideoJson } from "./hls-support.ts";
import { settledJobs } from "../helpers/jobs.ts";

const WORKER_CLI = resolve(import.meta.dir, "../../src/cli/worker.ts");
/** Long enough to be caught mid-transcode on a busy 2-core machine, short enough for a test. */
const LONG = { seconds: 24, width: 640, height: 360, bitrate: 1_200_000 };

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A server that processes uploads but builds no ladders: a worker elsewhere will. */
const NO_TRANSCODES = { jobKinds: ["ingest"] as const };

/** Lets the server's own worker build ladders too, from now on. */
async function transcodeInServer(spool: TestSpool): Promise<void> {
  await stopWorker(spool.ctx);
  spool.ctx.config.jobKinds = undefined;
  await startInProcess(spool.ctx);
}

const transcodeJob = async (spool: TestSpool, id: string) => (await spool.ctx.jobs.forVideo(id, "transcode"))[0];

async function spoolWithout(overrides: Parameters<typeof startTestSpool>[0] = {}): Promise<TestSpool> {
  const spool = await startTestSpool({ seedDemo: false, ...overrides });
  cleanups.push(() => spool.stop());
  return spool;
}

interface WorkerProcess {
  proc: ReturnType<typeof Bun.spawn>;
  output: () => string;
}

function startWorker(spool: TestSpool, env: Record<string, string> = {}): WorkerProcess {
  let output = "";
  const proc = Bun.spawn([process.execPath, WORKER_CLI], {
    env: {
      ...process.env,
      DATA_DIR: spool.dataDir,
      DATABASE_URL: spool.config.databaseUrl,
      TRANSCODE_HEARTBEAT_MS: "300",
      TRANSCODE_POLL_MS: "100",
      ...env,
    },
    stdout: "pipe",
    stderr: "pipe",
  });
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) output += new TextDecoder().decode(chunk);
  };
  void drain(proc.stdout as ReadableStream<Uint8Array>);
  void drain(proc.stderr as ReadableStream<Uint8Array>);
  cleanups.push(async () => {
    proc.kill("SIGKILL");
    await proc.exited;
  });
  return { proc, output: () => output };
}

const processing = (min: number) => (v: VideoJson) => v.hls.status === "processing" && v.hls.progress >= min;

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await Bun.sleep(50);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`);
}

describe("a separate worker process", () => {
  test("builds the ladder for a server that runs no worker; its progress reaches the server's SSE", async () => {
    const spool = await spoolWithout(NO_TRANSCODES);
    const source = await makeSource({ seconds: 8 });
    const video = await upload(spool.url, source);
    const queued = await waitForVideo(spool.url, video.id, (v) => v.status === "ready" && v.hls.status === "queued");
    expect(queued.hls.progress).toBe(0);
    // Nothing happens without a worker.
    await Bun.sleep(500);
    expect((await getVideo(spool.url, video.id)).hls.status).toBe("queued");

    const events = readEvents(`${spool.url}/api/videos/${video.id}/events`, (e) => JSON.parse(e.data).hls.status === "ready", 45_000);
    const worker = startWorker(spool);
    const { events: seen } = await events;
    const states = seen.map((e) => JSON.parse(e.data).hls.status);
    expect(states[0]).toBe("queued");
    expect(states).toContain("processing");
    expect(states.at(-1)).toBe("ready");
    const master = await fetch(`${spool.url}/api/hls/${video.id}/master.m3u8`);
    expect(master.status).toBe(200);
    expect(worker.output()).toContain("HLS ladder ready");
  }, 60_000);

  test("SIGKILL mid-transcode: ffmpeg dies with it, the next worker picks the job up and finishes", async () => {
    const spool = await spoolWithout(NO_TRANSCODES);
    const source = await makeSource(LONG);
    const video = await upload(spool.url, source);
    await waitForVideo(spool.url, video.id, (v) => v.hls.status === "queued");

    const first = startWorker(spool);
    await waitForVideo(spool.url, video.id, processing(5), 45_000);
    const ffmpegs = await processesMentioning(video.id);
    expect(ffmpegs.length).toBe(1);
    first.proc.kill("SIGKILL");
    await first.proc.exited;
    // PR_SET_PDEATHSIG: the kernel kills ffmpeg when its worker dies.
    await waitUntil("ffmpeg to die with its worker", async () => (await processesMentioning(video.id)).length === 0, 5000);
    const orphaned = await transcodeJob(spool, video.id);
    // Still the dead worker's, or already handed back by a sweep of the server's own worker
    // (which runs other kinds and requeues a dead local pid's jobs): never failed, never lost.
    expect(["running", "queued"]).toContain(orphaned?.state ?? "missing");
    expect(orphaned).toMatchObject({ attempts: 1 });
    expect(readdirSync(join(spool.dataDir, "videos", video.id)).some((n) => n.startsWith(".hls-tmp-"))).toBe(true);

    // A worker on this host (the new one, or the server's own, which works other kinds) sees
    // the dead pid and requeues the job at its next sweep: no waiting for staleness.
    startWorker(spool);
    const done = await waitForVideo(spool.url, video.id, hlsSettled, 60_000);
    expect(done.hls).toMatchObject({ status: "ready", progress: 100, error: null });
    const job = await transcodeJob(spool, video.id);
    expect(job).toMatchObject({ state: "done", attempts: 2 });
    // The dead attempt's temporary directory is gone.
    expect(readdirSync(join(spool.dataDir, "videos", video.id)).filter((n) => n.startsWith(".hls-tmp-"))).toEqual([]);
  }, 90_000);

  test("a worker on another machine that stops heartbeating is taken over after TRANSCODE_STALE_MS", async () => {
    const spool = await spoolWithout(NO_TRANSCODES);
    const source = await makeSource({ seconds: 4 });
    const video = await upload(spool.url, source);
    await waitForVideo(spool.url, video.id, (v) => v.hls.status === "queued");
    // A claim by a worker whose host is not this one: only its heartbeat can tell it is gone.
    // (The ladder is marked `queued` just before its job row is written: claim once it is there.)
    const claim = async () => (await spool.ctx.jobs.claim("gone.example:4242:dead", ["transcode"], { staleMs: 60_000, maxAttempts: 3 })).job;
    let job = await claim();
    for (const deadline = Date.now() + 5000; !job && Date.now() < deadline; job = await claim()) await Bun.sleep(50);
    if (!job) throw new Error("the transcode job was never queued");
    expect(job.videoId).toBe(video.id);
    // What that worker's claim recorded before it vanished.
    await spool.ctx.library.setHls(video.id, { status: "processing" });
    const worker = startWorker(spool, { TRANSCODE_STALE_MS: "1500" });
    await Bun.sleep(500);
    expect((await getVideo(spool.url, video.id)).hls.status).toBe("processing");
    const done = await waitForVideo(spool.url, video.id, hlsSettled, 45_000);
    expect(done.hls.status).toBe("ready");
    expect(await spool.ctx.jobs.get(job.id)).toMatchObject({ state: "done", attempts: 2 });
    expect(worker.output()).toContain("HLS ladder ready");
  }, 60_000);
});

describe("retrying a failed ladder", () => {
  test("POST /api/videos/:id/hls/retry queues a fresh build of a failed ladder, and only of a failed one", async () => {
    const spool = await spoolWithout(NO_TRANSCODES);
    const video = await upload(spool.url, await makeSource({ seconds: 2 }));
    await waitForVideo(spool.url, video.id, (v) => v.hls.status === "queued");
    const retry = (id = video.id) => fetch(`${spool.url}/api/videos/${id}/hls/retry`, { method: "POST", headers: AUTH });
    const conflict = async (state: string) => {
      const r = await retry();
      expect(r.status).toBe(409);
      expect(await r.json()).toEqual({ error: { code: "hls_not_failed", message: `Only a failed HLS build can be retried, and its HLS ladder is ${state}` } });
    };
    await conflict("queued");
    expect((await retry("AAAAAAAAAAAAAAAAAAAAAA")).status).toBe(404);
    expect((await retry("no!such*id")).status).toBe(400);

    // The build fails for good, as after its last attempt (a worker elsewhere ran out of disk).
    const queue = spool.ctx.jobs;
    const job = (await queue.claim("builder.example:7:w", ["transcode"], { staleMs: 60_000, maxAttempts: 1 })).job!;
    expect(await queue.fail(job, "builder.example:7:w", "No space left on device", { maxAttempts: 1, baseMs: 1000, maxMs: 1000 })).toEqual({ retrying: false, attempts: 1 });
    // ...and, as that worker's handler does, the video says so.
    await spool.ctx.library.setHls(video.id, { status: "failed", error: "No space left on device" });
    expect((await getVideo(spool.url, video.id)).hls).toMatchObject({ status: "failed", error: "No space left on device" });

    const accepted = await retry();
    expect(accepted.status).toBe(202);
    expect(((await accepted.json()) as VideoJson).hls).toMatchObject({ status: "queued", progress: 0, error: null, masterUrl: null });
    expect(await queue.forVideo(video.id, "transcode")).toMatchObject([
      { state: "failed", error: "No space left on device" },
      { state: "queued", attempts: 0 },
    ]);
    await conflict("queued");

    await transcodeInServer(spool);
    const done = await waitForVideo(spool.url, video.id, hlsSettled, 45_000);
    expect(done.hls).toMatchObject({ status: "ready", progress: 100, error: null });
    expect((await fetch(`${spool.url}/api/hls/${video.id}/master.m3u8`)).status).toBe(200);
    await conflict("ready");
  }, 60_000);
});

describe("the in-server worker", () => {
  test("a graceful stop hands the job back; the next start finishes it", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-hls-restart-"));
    cleanups.push(() => rm(dataDir, { recursive: true, force: true }));
    const first = await startTestSpool({ seedDemo: false, dataDir });
    const source = await makeSource(LONG);
    const video = await upload(first.url, source);
    await waitForVideo(first.url, video.id, processing(5), 45_000);
    await first.stop();
    expect(await processesMentioning(video.id)).toEqual([]);

    const second = await spoolWithout({ dataDir, ...NO_TRANSCODES });
    const paused = await getVideo(second.url, video.id);
    expect(paused.hls).toMatchObject({ status: "queued", progress: 0 });
    expect(await second.ctx.jobs.forVideo(video.id, "transcode")).toMatchObject([{ state: "queued", attempts: 0 }]);
    await second.stop();
    cleanups.pop();

    const third = await spoolWithout({ dataDir });
    const done = await waitForVideo(third.url, video.id, hlsSettled, 60_000);
    expect(done.hls.status).toBe("ready");
    expect(await settledJobs(third.ctx.jobs, video.id, "transcode")).toMatchObject([{ state: "done", attempts: 1 }]);
  }, 120_000);

  test("failures retry with backoff, then the video's HLS state is failed with ffmpeg's error", async () => {
    const spool = await spoolWithout({ transcode: { maxAttempts: 2, retryBaseMs: 400, timeoutMs: 300 } });
    const source = await makeSource(LONG);
    const video = await upload(spool.url, source);
    const retrying = await waitForVideo(spool.url, video.id, (v) => v.hls.status === "queued" && v.hls.error !== null, 30_000);
    expect(retrying.hls.error).toMatch(/^Attempt 1 of 2 failed \(ffmpeg took longer than 0\.3 s \(TRANSCODE_TIMEOUT_MS\) and was stopped\); retrying in \d s$/);
    const failed = await waitForVideo(spool.url, video.id, hlsSettled, 30_000);
    expect(failed.hls).toMatchObject({ status: "failed", progress: 0, error: "ffmpeg took longer than 0.3 s (TRANSCODE_TIMEOUT_MS) and was stopped", masterUrl: null });
    const job = await transcodeJob(spool, video.id);
    expect(job).toMatchObject({ state: "failed", attempts: 2, error: "ffmpeg took longer than 0.3 s (TRANSCODE_TIMEOUT_MS) and was stopped" });
    // The original still streams; nothing half-built was published.
    expect(failed.status).toBe("ready");
    expect((await fetch(`${spool.url}${failed.streamUrl}`, { headers: { range: "bytes=0-1" } })).status).toBe(206);
    expect(readdirSync(join(spool.dataDir, "videos", video.id)).filter((n) => n === "hls" || n.startsWith(".hls-tmp-"))).toEqual([]);
  }, 60_000);

  test("a source that became unreadable fails with the tool's message", async () => {
    const spool = await spoolWithout({ ...NO_TRANSCODES, transcode: { maxAttempts: 1 } });
    const source = await makeSource({ seconds: 2 });
    const video = await upload(spool.url, source);
    const ready = await waitForVideo(spool.url, video.id, (v) => v.hls.status === "queued");
    // The stored file is damaged after ingest (disk corruption, an operator's mistake).
    const stored = join(spool.dataDir, "videos", video.id, readdirSync(join(spool.dataDir, "videos", video.id)).find((n) => n.startsWith("source"))!);
    await writeFile(stored, Buffer.alloc(4096, 7));
    // And a partial ladder a worker killed earlier left (its attempt never came back to clean it).
    await mkdir(join(spool.dataDir, "videos", video.id, ".hls-tmp-999-1-deadbeef", "v0"), { recursive: true });
    await transcodeInServer(spool);
    const failed = await waitForVideo(spool.url, ready.id, hlsSettled, 30_000);
    expect(failed.hls.status).toBe("failed");
    // Failed for good: no attempt will come back for the partial ladders.
    expect(readdirSync(join(spool.dataDir, "videos", video.id)).filter((n) => n.startsWith(".hls-tmp-"))).toEqual([]);
    // ffprobe's verdict, as the ingest module words it.
    expect(failed.hls.error).toMatch(/no movie index \(moov\)|Invalid data found when processing input/);
  }, 60_000);

  test("deleting a video cancels its job and kills its ffmpeg", async () => {
    const spool = await spoolWithout();
    const source = await makeSource(LONG);
    const video = await upload(spool.url, source);
    await waitForVideo(spool.url, video.id, processing(1), 45_000);
    expect((await processesMentioning(video.id)).length).toBe(1);
    const events = readEvents(`${spool.url}/api/videos/${video.id}/events`, (e) => e.event === "deleted", 20_000);
    const response = await fetch(`${spool.url}/api/videos/${video.id}`, { method: "DELETE", headers: AUTH });
    expect(response.status).toBe(204);
    // The delete returns after ffmpeg is gone.
    expect(await processesMentioning(video.id)).toEqual([]);
    expect((await events).events.at(-1)).toMatchObject({ event: "deleted", data: JSON.stringify({ id: video.id }) });
    await Bun.sleep(300);
    expect(existsSync(join(spool.dataDir, "videos", video.id))).toBe(false);
    expect(await spool.ctx.jobs.forVideo(video.id)).toEqual([]);
    expect(spool.ctx.worker!.busy).toBe(0);
  }, 60_000);

  test("TRANSCODE_CONCURRENCY bounds the ffmpeg processes", async () => {
    const spool = await spoolWithout({ transcode: { concurrency: 1 } });
    const source = await makeSource({ seconds: 10 });
    const videos = await Promise.all([upload(spool.url, source, "a.mp4"), upload(spool.url, source, "b.mp4")]);
    let maxRunning = 0;
    let maxFfmpeg = 0;
    const sampler = setInterval(async () => {
      const running = (await spool.ctx.jobs.activeCounts()).find((c) => c.kind === "transcode" && c.state === "running")?.n ?? 0;
      maxRunning = Math.max(maxRunning, running);
      maxFfmpeg = Math.max(maxFfmpeg, (await processesMentioning(spool.dataDir)).length);
    }, 50);
    try {
      for (const v of videos) expect((await waitForVideo(spool.url, v.id, hlsSettled, 60_000)).hls.status).toBe("ready");
    } finally {
      clearInterval(sampler);
    }
    expect(maxRunning).toBe(1);
    expect(maxFfmpeg).toBe(1);
  }, 90_000);
});
