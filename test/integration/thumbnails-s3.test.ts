/**
 * Thumbnails of bucket videos (STORAGE=s3) read the `moov` and the GOP around the frame, not the
 * whole video: the frame is taken from a one-second clip of the object (src/files/clip.ts), and
 * it is the same picture a local-disk server takes from the whole file. Real s3rver, real ffmpeg.
 */
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtemp, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { uploadMultipart, waitUntilSettled } from "../helpers/library.ts";
import { jpegSize } from "../helpers/media.ts";
import { AUTH, startTestSpool, testBucketStorage, testS3, type TestSpool } from "../helpers/spool.ts";
import type { S3rver } from "../helpers/s3.ts";
import { hot } from "../../src/metrics/metrics.ts";

setDefaultTimeout(60_000);

let s3: S3rver;
let bucket: TestSpool;
let local: TestSpool;
let source: string;
let size: number;
const ids: Record<"bucket" | "local", string> = { bucket: "", local: "" };

/** 20 s of noise (it compresses badly: about 1 MB a second), a key frame every second, faststart. */
async function makeNoisyVideo(dir: string): Promise<string> {
  const out = join(dir, "noisy.mp4");
  const proc = Bun.spawn(
    ["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25,noise=alls=80:allf=t+u", "-t", "20",
      "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", "8M", "-g", "25", "-movflags", "+faststart", "-y", out],
    { stdout: "ignore", stderr: "pipe" },
  );
  const err = await new Response(proc.stderr).text();
  if ((await proc.exited) !== 0) throw new Error(`ffmpeg failed: ${err}`);
  return out;
}

async function ingest(spool: TestSpool): Promise<string> {
  const response = await uploadMultipart(spool.url, source, { name: "noisy.mp4", type: "video/mp4" });
  expect(response.status).toBe(201);
  const { id } = (await response.json()) as { id: string };
  expect((await waitUntilSettled(spool.url, id, 60_000)).status).toBe("ready");
  return id;
}

beforeAll(async () => {
  s3 = await testS3();
  const dir = await mkdtemp(join(tmpdir(), "spool-thumbs-s3-"));
  source = await makeNoisyVideo(dir);
  size = (await stat(source)).size;
  const dataDir = join(dir, "bucket");
  bucket = await startTestSpool({ dataDir, storage: await testBucketStorage(dataDir), seedDemo: false, jobKinds: ["ingest"] });
  local = await startTestSpool({ dataDir: join(dir, "local"), seedDemo: false, jobKinds: ["ingest"] });
  ids.bucket = await ingest(bucket);
  ids.local = await ingest(local);
});

afterAll(async () => {
  await bucket?.stop();
  await local?.stop();
});

test("a frame from the middle of a bucket video fetches a few blocks, not the video, and is the local server's frame", async () => {
  // The test video must be many blocks long, or the comparison below says nothing.
  const blocks = Math.ceil(size / (2 * 1024 * 1024));
  expect(blocks).toBeGreaterThanOrEqual(8);
  const before = hot.bucketReads;
  const fromBucket = await fetch(`${bucket.url}/api/videos/${ids.bucket}/thumbnail.jpg?t=12&width=320`);
  expect(fromBucket.status).toBe(200);
  const read = hot.bucketReads - before;
  // The head (the moov) and the blocks around 12 s; the whole video would be every block.
  expect(read).toBeGreaterThanOrEqual(1);
  expect(read).toBeLessThanOrEqual(4);
  expect(read).toBeLessThan(blocks / 2);

  const fromDisk = await fetch(`${local.url}/api/videos/${ids.local}/thumbnail.jpg?t=12&width=320`);
  expect(fromDisk.status).toBe(200);
  const a = new Uint8Array(await fromBucket.arrayBuffer());
  const b = new Uint8Array(await fromDisk.arrayBuffer());
  expect(jpegSize(a)).toEqual({ width: 320, height: 180 });
  // The same decoded frame, encoded the same way: the same JPEG.
  expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
});

test("frames at other times differ (the cut starts where asked)", async () => {
  const at = async (t: number) => new Uint8Array(await (await fetch(`${bucket.url}/api/videos/${ids.bucket}/thumbnail.jpg?t=${t}&width=320`)).arrayBuffer());
  const local7 = new Uint8Array(await (await fetch(`${local.url}/api/videos/${ids.local}/thumbnail.jpg?t=7&width=320`)).arrayBuffer());
  const bucket7 = await at(7);
  expect(Buffer.from(bucket7).equals(Buffer.from(local7))).toBe(true);
  expect(Buffer.from(bucket7).equals(Buffer.from(await at(12)))).toBe(false);
});

test("frames being made while their video is deleted: each answer is the frame or 404 (never 422), and nothing of the video is left in the bucket", async () => {
  for (const spool of [bucket, local]) {
    const id = await ingest(spool);
    // More distinct frames than runs (THUMBNAIL_CONCURRENCY: 2): some run, some wait.
    const frames = [3, 5, 7, 9, 11, 13].map((t) => fetch(`${spool.url}/api/videos/${id}/thumbnail.jpg?t=${t}&width=320`));
    await Bun.sleep(150);
    expect((await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    const statuses = await Promise.all(frames.map(async (answer) => (await answer).status));
    // A run cut off by the delete, or queued behind it, is for a video that is gone: 404.
    expect(statuses.filter((s) => s !== 200 && s !== 404)).toEqual([]);
    expect(statuses).toContain(404);
    // No frame put after the video's prefix was cleared stays behind (the orphan sweep would take an hour).
    const left: string[] = [];
    for await (const object of spool.ctx.store.list(`videos/${id}/`)) left.push(object.key);
    expect({ server: spool === bucket ? "bucket" : "local", left }).toEqual({ server: spool === bucket ? "bucket" : "local", left: [] });
  }
});

test("a source object removed from the bucket by hand: a new frame is the stream's 404, not a 422 (and not logged as a failed extraction)", async () => {
  const id = await ingest(bucket);
  const row = (await bucket.ctx.library.get(id))!;
  await bucket.ctx.store.delete(row.storagePath);
  const frame = await fetch(`${bucket.url}/api/videos/${id}/thumbnail.jpg?t=7.3`, { headers: AUTH });
  expect(frame.status).toBe(404);
  expect(((await frame.json()) as { error: { code: string; message: string } }).error).toEqual({ code: "not_found", message: "The file is no longer available" });
  const stream = await fetch(`${bucket.url}/api/stream/${id}`, { headers: { range: "bytes=0-1" } });
  expect(stream.status).toBe(404);
});
