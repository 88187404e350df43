/**
 * Processing is a durable job: a worker that dies mid-job (a crashed WORKERS process, a killed
 * `bun run worker`) leaves it `running`; a worker on the same host takes over the jobs of
 * processes that are certainly dead at its next sweep, and leaves live ones alone. A crash
 * between accepting an upload and queueing its job leaves a `processing` video without a job:
 * the sweep queues it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFile, mkdir, rm, stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { mediaFields } from "../../src/modules/ingest/pipeline.ts";
import { settledJobs } from "../helpers/jobs.ts";
import { makeVideo, sha256File } from "../helpers/media.ts";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";

const FIXTURE = resolve(import.meta.dir, "../../fixtures/demo.mp4");
let spool: TestSpool;

beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
});
afterAll(() => spool?.stop());

/** A video staged and `processing`, as an upload leaves it once accepted, but with no job yet. */
async function stagedProcessing(title: string): Promise<string> {
  const library = spool.ctx.library;
  const row = await library.begin({ originalFilename: "orphan.mp4", title });
  const staged = library.storage.stagedPath(row.id);
  await mkdir(library.storage.videoDir(row.id), { recursive: true });
  await copyFile(FIXTURE, staged);
  const info = await spool.ctx.media!.probe(staged);
  await library.markProcessing(row.id, mediaFields(info));
  return row.id;
}

/** Its ingest job, as a worker with this pid that then vanished would have left it: running. */
async function runningFor(id: string, pid: number): Promise<void> {
  const { db, tables } = spool.ctx.db;
  const now = new Date();
  await db.insert(tables.jobs).values({ kind: "ingest", videoId: id, state: "running", attempts: 1, runAfter: now, lockedBy: `${hostname()}:${pid}:crashed`, heartbeatAt: now, createdAt: now, updatedAt: now });
}

const statusOf = async (id: string) => (await spool.ctx.library.get(id))?.status;

async function waitForStatus(id: string, status: string, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await Bun.sleep(100)) if ((await statusOf(id)) === status) return true;
  return false;
}

test("a dead worker's job is taken over at the next sweep; a live worker's is left alone until it dies", async () => {
  const gone = Bun.spawn(["true"]);
  await gone.exited;
  const busy = Bun.spawn(["sleep", "30"]);
  try {
    const orphan = await stagedProcessing("dead worker");
    await runningFor(orphan, gone.pid);
    const owned = await stagedProcessing("live worker");
    await runningFor(owned, busy.pid);
    expect(await waitForStatus(orphan, "ready", 15_000)).toBe(true);
    const streamed = await fetch(`${spool.url}/api/stream/${orphan}`, { headers: { range: "bytes=0-3" } });
    expect(streamed.status).toBe(206);
    const [job] = await settledJobs(spool.ctx.jobs, orphan, "ingest");
    expect(job).toMatchObject({ state: "done", attempts: 2, lockedBy: null });
    // Two sweeps later, the live worker's job is still its own.
    await Bun.sleep(5500);
    expect(await statusOf(owned)).toBe("processing");
    busy.kill("SIGKILL");
    await busy.exited;
    expect(await waitForStatus(owned, "ready", 15_000)).toBe(true);
  } finally {
    busy.kill("SIGKILL");
  }
}, 60_000);

test("a processing video without a job (a crash between accepting and queueing) is queued by the sweep", async () => {
  const id = await stagedProcessing("never queued");
  expect(await spool.ctx.jobs.forVideo(id)).toEqual([]);
  expect(await waitForStatus(id, "ready", 20_000)).toBe(true);
  const jobs = await settledJobs(spool.ctx.jobs, id, "ingest");
  expect(jobs.map((j) => j.state)).toEqual(["done"]);
  // The received bytes' hash was computed by the job (nothing streamed them through a hasher).
  const row = (await spool.ctx.library.get(id))!;
  expect(row.sourceSha256).toBe(row.sha256);
  expect(row.sourceSize).toBe(row.size);
}, 60_000);

test("a run that stopped after its remux resumes from the remuxed file, and records that file's hash, not the upload's", async () => {
  const library = spool.ctx.library;
  const upload = await makeVideo({ seconds: 2, faststart: false });
  const uploadHash = await sha256File(upload);
  const row = await library.begin({ originalFilename: "late-index.mp4", title: "resumed after remux" });
  await mkdir(library.storage.videoDir(row.id), { recursive: true });
  const received = join(library.storage.videoDir(row.id), "received.mp4");
  await copyFile(upload, received);
  const info = await spool.ctx.media!.probe(received);
  // What a run stopped after its remux leaves: the faststart copy where the source goes, the
  // received bytes gone, and the job's payload still naming the upload's hash.
  const remuxed = library.storage.sourcePath(row.id, info.extension);
  await spool.ctx.media!.remuxFaststart(received, remuxed, info.demuxer, "mp4");
  await rm(received);
  const remuxedHash = await sha256File(remuxed);
  expect(remuxedHash).not.toBe(uploadHash);
  await library.markProcessing(row.id, mediaFields(info), { sha256: uploadHash, size: (await stat(upload)).size });
  await spool.ctx.jobs.enqueue("ingest", row.id, { sha256: uploadHash, info });
  expect(await waitForStatus(row.id, "ready", 20_000)).toBe(true);
  const ready = (await library.get(row.id))!;
  expect(ready.sha256).toBe(remuxedHash);
  expect(ready.size).toBe((await stat(remuxed)).size);
  // What the client sent is still what it sent.
  expect(ready.sourceSha256).toBe(uploadHash);
}, 60_000);
