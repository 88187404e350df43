/**
 * Servers and workers that share the database and the bucket and nothing else (STORAGE=s3, a
 * DATA_DIR each, as on different machines): an upload accepted by a server that runs no worker is
 * processed by a worker elsewhere, from the bytes the server put in the bucket. Real s3rver, real
 * SQLite file shared by both, real ffmpeg.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { uploadMultipart, waitUntilSettled } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { startTestSpool, testBucketStorage, type TestSpool } from "../helpers/spool.ts";

setDefaultTimeout(60_000);

let root: string;
let server: TestSpool;
let worker: TestSpool;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "spool-nodes-s3-"));
  const storage = await testBucketStorage(join(root, "server"));
  const databaseUrl = `file:${join(root, "shared.db")}`;
  // The server takes uploads and runs no worker (TRANSCODE_IN_SERVER=0); the "worker machine"
  // has its own DATA_DIR and cache, the same database and bucket.
  server = await startTestSpool({ dataDir: join(root, "server"), databaseUrl, storage, seedDemo: false, transcode: { inServer: false } });
  worker = await startTestSpool({ dataDir: join(root, "worker"), databaseUrl, storage: { ...storage, cacheDir: join(root, "worker", "cache") }, seedDemo: false, jobKinds: ["ingest"] });
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
  // The server's own working copy is swept (the primary's tmp sweep runs this every 10 s).
  expect(existsSync(join(server.dataDir, "videos", id))).toBe(true);
  expect(await server.ctx.library.sweepLocalCopies()).toBe(1);
  expect(existsSync(join(server.dataDir, "videos", id))).toBe(false);
});
