/**
 * Servers and workers that share the database and the bucket and nothing else (STORAGE=s3, a
 * DATA_DIR each, as on different machines): an upload accepted by a server that runs no worker is
 * processed by a worker elsewhere, from the bytes the server put in the bucket. Real s3rver, real
 * ffmpeg, and a real database shared by both: the suite's (SPOOL_TEST_DATABASE), so a SQLite file
 * on the default pass and, on the PostgreSQL pass, one PostgreSQL database (what a deployment on
 * more than one machine runs, README "Scaling out"), its NOTIFY/LISTEN between the two.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectError, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { AUTH, databaseFor, serverAndWorker, startTestSpool, TEST_DIALECT, testBucketStorage, testS3, type TestSpool } from "../helpers/spool.ts";

setDefaultTimeout(60_000);

/**
 * How long each node keeps what it cached of a video. On PostgreSQL, ten minutes, as in
 * test/integration/multi-node.test.ts: every write is announced (NOTIFY) and the other node
 * LISTENs, so anything one node sees of the other's writes within a test came by notification,
 * not by time. SQLite has no such channel between machines (README "Scaling out"): there the
 * other node's writes are seen once its entry expires, so the suite's one second is kept.
 */
const CACHE_TTL_MS = TEST_DIALECT === "postgres" ? 600_000 : 1000;

let root: string;
let server: TestSpool;
let worker: TestSpool;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "spool-nodes-s3-"));
  ({ server, worker } = await serverAndWorker(root, { cacheTtlMs: CACHE_TTL_MS }));
});

afterAll(async () => {
  await server?.stop();
  await worker?.stop();
  await rm(root, { recursive: true, force: true });
});

test("an upload to a server without a worker is processed by a worker on another machine, from the bucket, and nothing of it stays behind", async () => {
  const source = await makeVideo({ seconds: 2 });
  const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
  const response = await uploadMultipart(server.url, source, { name: "elsewhere.mp4", type: "video/mp4" });
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  const video = await waitUntilSettled(server.url, id, 60_000);
  // Before: "Processing was interrupted and the uploaded file was lost" (the bytes were on the server's disk).
  expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
  const streamed = await fetch(`${server.url}/api/stream/${id}`);
  expect(streamed.status).toBe(200);
  expect((await streamed.arrayBuffer()).byteLength).toBe(video.size);
  expect(video.sourceSha256).toBe(new Bun.CryptoHasher("sha256").update(bytes).digest("hex"));
  // The bucket's copy of the received bytes went once they were processed.
  expect(await server.ctx.store.exists(`videos/${id}/incoming`)).toBe(false);
  // The server's own working copy is swept (the primary's housekeeping runs this every 10 s, src/library/housekeeping.ts).
  expect(existsSync(join(server.dataDir, "videos", id))).toBe(true);
  expect(await server.ctx.library.sweepLocalCopies()).toBe(1);
  expect(existsSync(join(server.dataDir, "videos", id))).toBe(false);
});

test("a change made through one node reaches what the other has cached: playback closed on the worker's machine is refused token-less by the server, a rename shows in its list", async () => {
  const response = await uploadMultipart(server.url, await makeVideo({ seconds: 1 }), { name: "shared.mp4", type: "video/mp4", title: "Before" });
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  expect((await waitUntilSettled(server.url, id, 60_000)).status).toBe("ready");
  // The server caches the stream's entry (public) and its list page.
  expect((await fetch(`${server.url}/api/stream/${id}`, { headers: { range: "bytes=0-0" } })).status).toBe(206);
  const listed = (await (await fetch(`${server.url}/api/videos`, { headers: AUTH })).json()) as { items: VideoJson[] };
  expect(listed.items.find((v) => v.id === id)?.title).toBe("Before");

  const changed = await fetch(`${worker.url}/api/videos/${id}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ playback: "signed", title: "After" }) });
  expect(changed.status).toBe(200);
  // "Soon" is 10 s, for a loaded machine. On PostgreSQL that is far below the nodes' ten-minute
  // cache, so only the worker's NOTIFY can explain it; on SQLite it is the one-second cache's expiry.
  let status = 0;
  for (const end = Date.now() + 10_000; Date.now() < end; await Bun.sleep(20)) {
    status = (await fetch(`${server.url}/api/stream/${id}`, { method: "HEAD", headers: { range: "bytes=0-0" } })).status;
    if (status === 403) break;
  }
  expect(status).toBe(403);
  await expectError(await fetch(`${server.url}/api/stream/${id}`, { headers: { range: "bytes=0-0" } }), 403, "token_missing");
  const page = (await (await fetch(`${server.url}/api/videos`, { headers: AUTH })).json()) as { items: VideoJson[] };
  expect(page.items.find((v) => v.id === id)).toMatchObject({ title: "After", playback: "signed" });
});

/** The video's status and its ingest job's state, counted attempts and last error, as the database has them. */
async function state(id: string): Promise<{ status: string | undefined; job: { state: string; attempts: number; error: string | null } | undefined }> {
  const [job] = await worker.ctx.jobs.forVideo(id, "ingest");
  return { status: (await worker.ctx.library.get(id))?.status, job: job && { state: job.state, attempts: job.attempts, error: job.error } };
}

/**
 * Uploads a new 2 s video to `spool` while the bucket is stopped, checks that once the worker has
 * met the outage the video waits (its ingest job queued again with no attempt counted: with one
 * attempt per job, a counted one would have failed it), then starts the bucket again. Returns the
 * video's id and bytes.
 */
async function uploadDuringOutage(spool: TestSpool, name: string): Promise<{ id: string; bytes: Uint8Array }> {
  const s3 = await testS3();
  const source = await makeVideo({ seconds: 2 });
  const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
  await s3.stop();
  try {
    const response = await uploadMultipart(spool.url, source, { name, type: "video/mp4" });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    // Until the worker has met the outage and put the job back to wait (not while it runs).
    let seen = await state(id);
    for (let i = 0; i < 100 && !(seen.job?.state === "queued" && seen.job.error); i++) seen = (await Bun.sleep(100), await state(id));
    expect(seen).toMatchObject({ status: "processing", job: { state: "queued", attempts: 0 } });
    expect(seen.job?.error).toContain("object storage");
    return { id, bytes };
  } finally {
    await s3.start();
  }
}

test("an upload the worker-less server accepted while the bucket was down: its job waits, uncounted; the server shares the bytes once the bucket is back, and the worker elsewhere processes them", async () => {
  // The worker has tried (the bytes are not in the bucket, only on the server's disk).
  const { id, bytes } = await uploadDuringOutage(server, "during-outage.mp4");
  expect(existsSync(join(server.dataDir, "videos", id, "incoming"))).toBe(true);
  // Back: the server's primary shares the bytes (every 10 s), the worker's job finds them.
  const video = await waitUntilSettled(server.url, id, 45_000);
  expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
  expect(video.sourceSha256).toBe(new Bun.CryptoHasher("sha256").update(bytes).digest("hex"));
  expect((await fetch(`${server.url}/api/stream/${id}`).then((r) => r.arrayBuffer())).byteLength).toBe(video.size);
  expect(await server.ctx.store.exists(`videos/${id}/incoming`)).toBe(false);
});

test("a server with its own worker, the bucket down during processing: the video waits, uncounted, and is ready once the bucket is back", async () => {
  // Processed here up to the bucket's put, which failed: waiting, the received bytes kept.
  const { id } = await uploadDuringOutage(worker, "waits.mp4");
  const video = await waitUntilSettled(worker.url, id, 45_000);
  expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
  const streamed = await fetch(`${worker.url}/api/stream/${id}`, { headers: AUTH });
  expect((await streamed.arrayBuffer()).byteLength).toBe(video.size);
});

test("a first start while the bucket is down: the server listens within seconds, its demo waits (not failed) and is ready once the bucket is back", async () => {
  const s3 = await testS3();
  const dataDir = join(root, "first-start");
  const storage = await testBucketStorage(dataDir);
  await s3.stop();
  let fresh: TestSpool | undefined;
  try {
    const started = Date.now();
    fresh = await startTestSpool({ dataDir, databaseUrl: await databaseFor(join(root, "first-start-db")), storage, seedDemo: true, jobKinds: ["ingest"] });
    // The demo's processing is waited for 10 s at most; the job itself waits for the bucket.
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await fetch(`${fresh.url}/health`)).status).toBe(200);
    expect((await fresh.ctx.library.get("demo"))?.status).toBe("processing");
  } finally {
    await s3.start();
  }
  try {
    expect((await waitUntilSettled(fresh.url, "demo", 45_000)).status).toBe("ready");
    expect((await fetch(`${fresh.url}/api/stream/demo`, { headers: { range: "bytes=0-1" } })).status).toBe(206);
  } finally {
    await fresh.stop();
  }
});

test("a large upload still being put into the bucket is not failed by a worker elsewhere whose sweep found its video processing without a job", async () => {
  const source = await makeVideo({ seconds: 2 });
  // The server's put of the received bytes takes as long as a gigabyte's would (held until the
  // worker has run a job for the video, or long enough for its ingest sweep, every 5 s, to have looked).
  const store = server.ctx.store;
  const putFile = store.putFile.bind(store);
  let heldFor: string | undefined;
  store.putFile = async (key, path, options) => {
    if (key.endsWith("/incoming")) {
      heldFor = key.split("/")[1];
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, 8000);
        function done() {
          clearTimeout(timer);
          worker.ctx.worker?.events.off("job", onJob);
          resolve();
        }
        function onJob(event: { videoId: string }) {
          if (event.videoId === heldFor) done();
        }
        worker.ctx.worker?.events.on("job", onJob);
      });
    }
    return putFile(key, path, options);
  };
  try {
    const response = await uploadMultipart(server.url, source, { name: "large.mp4", type: "video/mp4" });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    expect(heldFor).toBe(id);
    const video = await waitUntilSettled(server.url, id, 60_000);
    // Before: failed, "Processing was interrupted and the uploaded file was lost", after its 201.
    expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
  } finally {
    store.putFile = putFile;
  }
});

test("an ingest run again after its video became ready (its worker died before dropping the bucket's copy of the received bytes) drops that copy", async () => {
  const source = await makeVideo({ seconds: 2 });
  const response = await uploadMultipart(server.url, source, { name: "dropped.mp4", type: "video/mp4" });
  const { id } = (await response.json()) as { id: string };
  expect((await waitUntilSettled(server.url, id, 60_000)).status).toBe("ready");
  // The first run is over: the row says ready before that run drops the bucket's copy and its
  // job is marked done, and an enqueue in between finds the job still active and queues nothing
  // (seen on the PostgreSQL pass, where those steps are round-trips apart).
  for (let i = 0; i < 100 && (await worker.ctx.jobs.hasActive(id, "ingest")); i++) await Bun.sleep(50);
  expect(await worker.ctx.jobs.hasActive(id, "ingest")).toBe(false);
  // As the dead worker left it: the video ready, `incoming` still in the bucket, its job to run again.
  await server.ctx.store.putFile(`videos/${id}/incoming`, source);
  const job = await worker.ctx.jobs.enqueue("ingest", id);
  expect(job).not.toBeNull();
  for (let i = 0; i < 100 && (await worker.ctx.jobs.get(job!.id))?.state !== "done"; i++) await Bun.sleep(100);
  expect((await worker.ctx.jobs.get(job!.id))?.state).toBe("done");
  // Before: kept for as long as the video exists (the orphan sweep skips videos with a row).
  expect(await server.ctx.store.exists(`videos/${id}/incoming`)).toBe(false);
});
