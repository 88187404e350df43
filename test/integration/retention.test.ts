/**
 * FAILED_RETENTION_MS: the server's primary process periodically deletes, with their files,
 * `failed` videos older than the retention and `uploading` rows nothing will ever complete,
 * and leaves everything younger, and every upload that can still be resumed, alone.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { eq } from "drizzle-orm";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expectError, filesUnder, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeUndecodableVideo } from "../helpers/media.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { RetentionSweeper } from "../../src/modules/videos/retention.ts";

const RETENTION_MS = 6000;
const DAY = 24 * 60 * 60 * 1000;

let spool: TestSpool;
let scratch: string;
beforeAll(async () => {
  // The sweep runs every quarter of the retention (at least every second): here every 1.5 s.
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"], failedRetentionMs: RETENTION_MS });
  scratch = await mkdtemp(join(tmpdir(), "spool-retention-"));
});
afterAll(async () => {
  await spool?.stop();
  await rm(scratch, { recursive: true, force: true });
});

const videoDir = (id: string) => join(spool.dataDir, "videos", id);

/** Moves a row's last change into the past, as another connection to the database would. */
async function backdate(id: string, ms: number): Promise<void> {
  const { db, tables } = spool.ctx.db;
  const row = (await spool.ctx.library.get(id))!;
  await db.update(tables.videos).set({ updatedAt: new Date(row.updatedAt.getTime() - ms) }).where(eq(tables.videos.id, id));
}

/** A real failed video: media whose index is fine but whose data does not decode. */
async function failedVideo(): Promise<string> {
  const path = await makeUndecodableVideo(scratch);
  const response = await uploadMultipart(spool.url, path);
  expect(response.status).toBe(201);
  const video = await waitUntilSettled(spool.url, ((await response.json()) as VideoJson).id);
  expect(video.status).toBe("failed");
  return video.id;
}

/** Something on disk in a video's directory (a failed video's files are mostly gone already). */
async function leaveFile(id: string): Promise<void> {
  await mkdir(videoDir(id), { recursive: true });
  await writeFile(join(videoDir(id), "leftover.bin"), "bytes");
}

test("failed and abandoned videos older than FAILED_RETENTION_MS are deleted with their files; younger ones and resumable uploads stay", async () => {
  const library = spool.ctx.library;
  // A failed video well past the retention, and one that has just failed.
  const oldFailed = await failedVideo();
  await leaveFile(oldFailed);
  await backdate(oldFailed, RETENTION_MS + 10_000);
  const youngFailed = await failedVideo();
  await leaveFile(youngFailed);
  // An `uploading` row nothing is behind (a killed CLI ingest), older than UPLOAD_EXPIRY_MS too.
  const abandoned = (await library.begin({ originalFilename: "killed.mp4" })).id;
  await leaveFile(abandoned);
  await backdate(abandoned, 2 * DAY);
  // An `uploading` row past the retention but younger than UPLOAD_EXPIRY_MS: it could be a
  // multipart upload still arriving. It stays.
  const arriving = (await library.begin({ originalFilename: "slow.mp4" })).id;
  await backdate(arriving, RETENTION_MS + 10_000);
  // A resumable upload whose row is old: the tus store (and its own expiry) decides, not this sweep.
  const created = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "100" } });
  expect(created.status).toBe(201);
  const resumable = created.headers.get("spool-video-id")!;
  await backdate(resumable, 2 * DAY);
  const uploadFiles = () => filesUnder(join(spool.dataDir, "uploads")).filter((f) => f.startsWith(`${resumable}.`));
  expect(uploadFiles()).toHaveLength(2);

  // The periodic sweep (no call from here) removes the old ones within a couple of seconds.
  for (let i = 0; i < 60 && ((await library.get(oldFailed)) || (await library.get(abandoned))); i++) await Bun.sleep(100);
  expect(await library.get(oldFailed)).toBeUndefined();
  expect(await library.get(abandoned)).toBeUndefined();
  expect(filesUnder(videoDir(oldFailed))).toEqual([]);
  expect(filesUnder(videoDir(abandoned))).toEqual([]);
  // Through the API too: every cache heard of it.
  await expectError(await fetch(`${spool.url}/api/videos/${oldFailed}`, { headers: AUTH }), 404, "not_found");
  const failedList = (await (await fetch(`${spool.url}/api/videos?status=failed`, { headers: AUTH })).json()) as { items: VideoJson[] };
  expect(failedList.items.map((v) => v.id)).toEqual([youngFailed]);

  // The young failed video, the upload that may still be arriving and the resumable one stay.
  expect((await library.get(youngFailed))?.status).toBe("failed");
  expect(filesUnder(videoDir(youngFailed))).toEqual(["leftover.bin"]);
  expect((await library.get(arriving))?.status).toBe("uploading");
  expect((await library.get(resumable))?.status).toBe("uploading");
  expect(uploadFiles()).toHaveLength(2);

  // Once it is older than the retention, the young one goes too.
  for (let i = 0; i < 120 && (await library.get(youngFailed)); i++) await Bun.sleep(100);
  expect(await library.get(youngFailed)).toBeUndefined();
  expect(filesUnder(videoDir(youngFailed))).toEqual([]);
  expect((await library.get(resumable))?.status).toBe("uploading");
}, 30_000);

test("sweep(now): FAILED_RETENTION_MS=0 keeps failed videos forever", async () => {
  const keeper = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"], failedRetentionMs: 0 });
  try {
    const row = await keeper.ctx.library.begin({ originalFilename: "x.mp4" });
    await keeper.ctx.library.markFailed(row.id, "Processing failed: test");
    expect(await keeper.ctx.retention.sweep(Date.now() + 365 * DAY)).toEqual([]);
    expect((await keeper.ctx.library.get(row.id))?.status).toBe("failed");
    // With a retention, the same call removes it (and only once it is due).
    const sweeper = new RetentionSweeper(keeper.ctx.library, async () => [], { retentionMs: DAY, uploadExpiryMs: DAY });
    expect(await sweeper.sweep(Date.now() + DAY / 2)).toEqual([]);
    expect(await sweeper.sweep(Date.now() + 2 * DAY)).toEqual([row.id]);
    expect(await keeper.ctx.library.get(row.id)).toBeUndefined();
  } finally {
    await keeper.stop();
  }
});
