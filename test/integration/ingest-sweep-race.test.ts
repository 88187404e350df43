/**
 * A worker's ingest sweep that falls between accepting an upload (the video marked `processing`)
 * and queueing its job must not queue a job of its own: it would take the place of the accept's
 * (one active job per video) without its payload. Here the bucket is down while the upload is
 * accepted (STORAGE=s3), so only the accepting server has the bytes and its payload says so
 * (`shared: false`); a worker elsewhere that lacked that word failed the video as "the uploaded
 * file was lost" instead of waiting for the server to share them. Real s3rver, real database
 * (SQLite or PostgreSQL, SPOOL_TEST_DATABASE), real ffmpeg.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { transcodeConfig } from "../../src/config.ts";
import { IngestJobs } from "../../src/modules/ingest/job.ts";
import { uploadMultipart, waitUntilSettled } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { serverAndWorker, testS3, type TestSpool } from "../helpers/spool.ts";

setDefaultTimeout(60_000);

let root: string;
let server: TestSpool;
let worker: TestSpool;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "spool-sweep-race-"));
  ({ server, worker } = await serverAndWorker(root));
});

afterAll(async () => {
  await server?.stop();
  await worker?.stop();
  await rm(root, { recursive: true, force: true });
});

test("an ingest sweep between accepting an upload and queueing its job leaves the job to the accept, payload and all", async () => {
  const s3 = await testS3();
  const source = await makeVideo({ seconds: 2 });
  // A sweep of a worker on the other machine, run at the moment the accept has marked the video
  // `processing` and not yet queued its job (the worker's own sweeps run every 5 s, mostly not then).
  const sweeper = new IngestJobs(worker.ctx.library, worker.ctx.media!, worker.ctx.thumbnails, worker.ctx.jobs, transcodeConfig(worker.ctx.config));
  const library = server.ctx.library;
  const markProcessing = library.markProcessing.bind(library);
  let swept: string | undefined;
  library.markProcessing = async (id, media, received) => {
    const row = await markProcessing(id, media, received);
    await sweeper.sweep();
    swept = id;
    return row;
  };
  await s3.stop();
  let id: string;
  try {
    const response = await uploadMultipart(server.url, source, { name: "race.mp4", type: "video/mp4" });
    expect(response.status).toBe(201);
    id = ((await response.json()) as { id: string }).id;
  } finally {
    library.markProcessing = markProcessing;
    await s3.start();
  }
  expect(swept).toBe(id);
  // One job, the accept's. Before: the sweep's, with no payload.
  const jobs = await worker.ctx.jobs.forVideo(id, "ingest");
  expect(jobs).toHaveLength(1);
  expect(JSON.parse(jobs[0]!.payload ?? "{}")).toMatchObject({ shared: false, info: { container: "mp4" } });
  // The worker waits until the server shares the bytes (its housekeeping, every 10 s). Before:
  // failed, "Processing was interrupted and the uploaded file was lost".
  const video = await waitUntilSettled(server.url, id, 45_000);
  expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
});
