/**
 * The ingest pipeline against a real server, real ffmpeg-made media and real SQLite:
 * uploading → processing → ready with the right metadata, faststart remux, refusal of
 * non-media with nothing kept, MAX_UPLOAD_BYTES while streaming, the library API, the CLI,
 * restarts, and a server without ffmpeg.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { chmod, copyFile, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { eq } from "drizzle-orm";
import { join, resolve } from "node:path";
import { VideoLibrary } from "../../src/library/videos.ts";
import { Storage } from "../../src/library/storage.ts";
import { openDatabase } from "../../src/db/client.ts";
import { mediaFields } from "../../src/modules/ingest/pipeline.ts";
import { expectError, filesUnder, listAll, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeAudio, makeUndecodableVideo, makeVideo, probeDuration, sha256File, topLevelBoxes } from "../helpers/media.ts";
import { startWorker, stopWorker } from "../../src/app.ts";
import { sendUntilAnswered, type RawAnswer } from "../helpers/http.ts";
import { AUTH, startTestSpool, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";
import { settledJobs } from "../helpers/jobs.ts";

// Uploads, processing and ffmpeg on a busy 2-core machine take longer than bun's default 5 s.
setDefaultTimeout(30_000);

const ROOT = resolve(import.meta.dir, "../..");
const FIXTURE = resolve(ROOT, "fixtures/demo.mp4");
const LIMIT = 4 * 1024 * 1024;
/** The HLS worker would add its own files under videos/<id>/; these tests look at ingest's. */
const NO_HLS = ["ingest"] as const;

let spool: TestSpool;
let scratch: string;
beforeAll(async () => {
  // A long cache TTL: the stream route must still see every change at once (library events).
  spool = await startTestSpool({ seedDemo: false, maxUploadBytes: LIMIT, cacheTtlMs: 60_000, jobKinds: NO_HLS });
  scratch = await mkdtemp(join(tmpdir(), "spool-ingest-"));
});
afterAll(async () => {
  await spool?.stop();
  await rm(scratch, { recursive: true, force: true });
});

const videoDir = (id: string) => join(spool.dataDir, "videos", id);
const tmpFiles = () => filesUnder(join(spool.dataDir, "tmp"));

async function created(response: Response): Promise<VideoJson> {
  const body = (await response.json()) as VideoJson;
  if (response.status !== 201) throw new Error(`expected 201, got ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** Stream-copied packets are identical: ffmpeg's per-stream packet hash proves no re-encode. */
async function packetHashes(path: string): Promise<string> {
  const proc = Bun.spawn(["ffmpeg", "-v", "error", "-i", path, "-map", "0", "-c", "copy", "-f", "streamhash", "-hash", "sha256", "-"], { stdout: "pipe" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  return out;
}

/** Everything the library holds: rows (via the API) and files under videos/ and tmp/. */
async function snapshot() {
  return { ids: (await listAll(spool.url)).map((v) => v.id).sort(), videos: filesUnder(join(spool.dataDir, "videos")), tmp: tmpFiles() };
}

describe("upload → processing → ready", () => {
  test("a faststart MP4: 201 `processing` with its probed metadata, then `ready`; stored bytes identical", async () => {
    const source = await makeVideo({ seconds: 2, width: 320, height: 240 });
    const response = await uploadMultipart(spool.url, source, { name: "clip.mp4", type: "video/mp4", title: "  My clip " });
    const first = await created(response);
    expect(response.headers.get("location")).toBe(`/api/videos/${first.id}`);
    expect(first).toMatchObject({
      title: "My clip",
      originalFilename: "clip.mp4",
      status: "processing",
      error: null,
      size: 0,
      sha256: null,
      container: "mp4",
      contentType: "video/mp4",
      width: 320,
      height: 240,
      duration: 2,
      videoCodec: "h264",
      audioCodec: "aac",
      thumbnailUrl: null,
    });
    expect(first.bitrate).toBeGreaterThan(10_000);

    const video = await waitUntilSettled(spool.url, first.id);
    const sha = await sha256File(source);
    expect(video).toMatchObject({ status: "ready", error: null, size: Bun.file(source).size, sha256: sha, thumbnailUrl: `/api/videos/${first.id}/thumbnail.jpg` });
    expect(Date.parse(video.updatedAt)).toBeGreaterThanOrEqual(Date.parse(first.updatedAt));

    const row = (await spool.ctx.library.get(first.id))!;
    expect(row).toMatchObject({ status: "ready", storagePath: `videos/${first.id}/source.mp4`, container: "mp4", width: 320, height: 240, videoCodec: "h264", audioCodec: "aac", sha256: sha });
    expect(filesUnder(videoDir(first.id))).toEqual(["poster.jpg", "source.mp4"]);
    expect(Buffer.from(await Bun.file(join(videoDir(first.id), "source.mp4")).arrayBuffer())).toEqual(Buffer.from(await Bun.file(source).arrayBuffer()));
    expect(tmpFiles()).toEqual([]);

    const streamed = await fetch(spool.url + video.streamUrl);
    expect(streamed.status).toBe(200);
    expect(streamed.headers.get("content-type")).toBe("video/mp4");
    expect(streamed.headers.get("etag")).toBe(`"${sha.slice(0, 32)}"`);
    expect(await sha256OfResponse(streamed)).toBe(sha);
  });

  test("an MP4 with its moov after the media data is remuxed to faststart, without re-encoding", async () => {
    const source = await makeVideo({ seconds: 2, width: 320, height: 240, faststart: false });
    const before = await topLevelBoxes(source);
    expect(before.indexOf("mdat")).toBeLessThan(before.indexOf("moov"));

    const first = await created(await uploadMultipart(spool.url, source, { name: "late-index.mp4" }));
    // The stream is not there while processing (and that 404 is cached for the TTL)...
    expect((await fetch(`${spool.url}${first.streamUrl}`)).status).toBe(404);
    const video = await waitUntilSettled(spool.url, first.id);
    expect(video.status).toBe("ready");

    const stored = join(videoDir(first.id), "source.mp4");
    const after = await topLevelBoxes(stored);
    expect(after.indexOf("moov")).toBeGreaterThan(-1);
    expect(after.indexOf("moov")).toBeLessThan(after.indexOf("mdat"));
    expect(await packetHashes(stored)).toBe(await packetHashes(source));
    // The checksum (and so the ETag) is of the stored, remuxed bytes.
    expect(video.sha256).toBe(await sha256File(stored));
    expect(video.sha256).not.toBe(await sha256File(source));
    expect(video.size).toBe(Bun.file(stored).size);

    // ...but the library's "changed" event makes it streamable at once, TTL or not. The first
    // 64 KiB hold the index, so a browser can start playing without the file's tail.
    const head = await fetch(`${spool.url}${video.streamUrl}`, { headers: { range: "bytes=0-65535" } });
    expect(head.status).toBe(206);
    const bytes = Buffer.from(await head.arrayBuffer());
    expect(bytes.indexOf("moov")).toBeGreaterThan(0);
    expect(bytes.indexOf("moov")).toBeLessThan(bytes.indexOf("mdat") < 0 ? Infinity : bytes.indexOf("mdat"));
  });

  test.each([
    ["faststart", true, 1024],
    ["index last", false, 4],
  ])("an MP4 (%s) with zero padding after its last box (a camera's preallocated file): ready, and clips cut from it", async (_name, faststart, padding) => {
    const source = await makeVideo({ seconds: 3, faststart });
    const path = join(scratch, `padded-${padding}.mp4`);
    await writeFile(path, Buffer.concat([new Uint8Array(await Bun.file(source).arrayBuffer()), new Uint8Array(padding)]));
    const video = await waitUntilSettled(spool.url, (await created(await uploadMultipart(spool.url, path, { name: "padded.mp4" }))).id);
    expect({ status: video.status, error: video.error }).toEqual({ status: "ready", error: null });
    const clip = await fetch(`${spool.url}${video.streamUrl}?start=1&end=2`);
    expect(clip.status).toBe(200);
    const cut = join(scratch, `padded-${padding}-clip.mp4`);
    await writeFile(cut, new Uint8Array(await clip.arrayBuffer()));
    expect(await topLevelBoxes(cut)).toEqual(expect.arrayContaining(["ftyp", "moov", "mdat"]));
  });

  test("a QuickTime movie stays QuickTime (remuxed with the mov muxer)", async () => {
    const source = await makeVideo({ container: "mov", faststart: false });
    const video = await waitUntilSettled(spool.url, (await created(await uploadMultipart(spool.url, source, { name: "camera.MOV" }))).id);
    expect(video).toMatchObject({ status: "ready", container: "mov", contentType: "video/quicktime" });
    const boxes = await topLevelBoxes(join(videoDir(video.id), "source.mov"));
    expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));
  });

  test("the bytes decide: a WebM named .mp4 and sent as video/mp4 is stored as WebM", async () => {
    const source = await makeVideo({ container: "webm", seconds: 1 });
    const first = await created(await uploadMultipart(spool.url, source, { name: "not-really.mp4", type: "video/mp4" }));
    expect(first).toMatchObject({ container: "webm", contentType: "video/webm", videoCodec: "vp9", audioCodec: "opus" });
    const video = await waitUntilSettled(spool.url, first.id);
    expect(video.status).toBe("ready");
    expect(filesUnder(videoDir(video.id))).toEqual(["poster.jpg", "source.webm"]);
    expect((await fetch(spool.url + video.streamUrl, { method: "HEAD" })).headers.get("content-type")).toBe("video/webm");
  });

  test("a recording's WebM with no duration in its header (MediaRecorder) is remuxed: stored with its duration and cues, the received bytes' hash kept", async () => {
    const source = await makeVideo({ container: "webm", seconds: 3, recorded: true });
    expect(await probeDuration(source)).toBeNull();
    const first = await created(await uploadMultipart(spool.url, source, { name: "recording.webm" }));
    expect(first).toMatchObject({ container: "webm", duration: null });
    const video = await waitUntilSettled(spool.url, first.id);
    expect(video).toMatchObject({ status: "ready", container: "webm", contentType: "video/webm", sourceSha256: await sha256File(source) });
    // What the stored file says, and the row with it.
    expect(video.duration).toBeCloseTo(3, 1);
    expect(video.bitrate).toBeGreaterThan(0);
    const stored = join(videoDir(video.id), "source.webm");
    expect(await probeDuration(stored)).toBeCloseTo(3, 1);
    expect(filesUnder(videoDir(video.id))).toEqual(["poster.jpg", "source.webm"]);
    // The stream answers the stored bytes, and it is no longer the received file.
    const streamed = new Uint8Array(await (await fetch(spool.url + video.streamUrl)).arrayBuffer());
    expect(streamed).toEqual(await Bun.file(stored).bytes());
    expect(video.sha256).toBe(await sha256File(stored));
    expect(video.sha256).not.toBe(video.sourceSha256);
  });

  test("a recording's WebM longer than MAX_DURATION_S, which only its remux can tell, fails with the limit's reason", async () => {
    const limited = await startTestSpool({ seedDemo: false, maxDurationS: 2, jobKinds: NO_HLS });
    try {
      const source = await makeVideo({ container: "webm", seconds: 3, recorded: true });
      const first = await created(await uploadMultipart(limited.url, source, { name: "recording.webm" }));
      const video = await waitUntilSettled(limited.url, first.id);
      expect(video.status).toBe("failed");
      expect(video.error).toContain("MAX_DURATION_S");
      expect(filesUnder(join(limited.dataDir, "videos", video.id))).toEqual([]);
      // A file whose header tells its duration is refused at once, as before.
      const told = await uploadMultipart(limited.url, await makeVideo({ container: "webm", seconds: 3 }), { name: "told.webm" });
      await expectError(told, 422, "media_limit_exceeded");
    } finally {
      await limited.stop();
    }
  });

  test("audio only: ready, with no picture and no poster", async () => {
    const source = await makeAudio({ format: "mp3", seconds: 2 });
    const video = await waitUntilSettled(spool.url, (await created(await uploadMultipart(spool.url, source, { name: "song.bin", type: "application/octet-stream" }))).id);
    expect(video).toMatchObject({ status: "ready", container: "mp3", contentType: "audio/mpeg", audioCodec: "mp3", videoCodec: null, width: null, height: null, thumbnailUrl: null });
    expect(filesUnder(videoDir(video.id))).toEqual(["source.mp3"]);
  });
});

describe("anything that is not playable media is refused: 415, nothing kept", () => {
  test("a text file renamed .mp4", async () => {
    const before = await snapshot();
    const path = join(scratch, "notes.mp4");
    await writeFile(path, "These are my notes, not a video.\n".repeat(100));
    const body = await expectError(await uploadMultipart(spool.url, path, { name: "notes.mp4", type: "video/mp4" }), 415, "unsupported_media_type");
    expect(body.error.message).toContain("not in a recognised video or audio format");
    expect(body.error.message).not.toContain(spool.dataDir);
    expect(await snapshot()).toEqual(before);
  });

  test("an HLS playlist disguised as a video: refused before ffmpeg opens any URL or file it names", async () => {
    const before = await snapshot();
    let hits = 0;
    const bait = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => (hits++, new Response("#EXTM3U\n")) });
    try {
      const segment = await makeVideo({ container: "mp4", seconds: 1 });
      const path = join(scratch, "movie.mp4");
      await writeFile(
        path,
        `#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\nhttp://127.0.0.1:${bait.port}/segment.ts\n#EXTINF:10.0,\nfile://${segment}\n#EXTINF:10.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n`,
      );
      const body = await expectError(await uploadMultipart(spool.url, path, { name: "movie.mp4", type: "video/mp4" }), 415, "unsupported_media_type");
      expect(body.error.message).toContain("HLS playlist");
      await Bun.sleep(100);
      expect(hits).toBe(0);
      expect(await snapshot()).toEqual(before);
    } finally {
      bait.stop(true);
    }
  });

  test("an ffmpeg concat script disguised as a video: the real video it names is never read", async () => {
    const before = await snapshot();
    // If ffmpeg followed the script, this would be perfectly good media and be accepted.
    const target = await makeVideo({ seconds: 1 });
    const path = join(scratch, "concat.mkv");
    await writeFile(path, `ffconcat version 1.0\nfile '${target}'\nfile '${target}'\n`);
    const body = await expectError(await uploadMultipart(spool.url, path, { name: "holiday.mkv", type: "video/x-matroska" }), 415, "unsupported_media_type");
    expect(body.error.message).toContain("concat script");
    expect(await snapshot()).toEqual(before);
  });

  test("a picture", async () => {
    const before = await snapshot();
    const path = join(scratch, "frame.png");
    const proc = Bun.spawn(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=64x64", "-frames:v", "1", "-f", "image2", "-c:v", "png", "-y", path]);
    expect(await proc.exited).toBe(0);
    await expectError(await uploadMultipart(spool.url, path, { name: "frame.mp4", type: "video/mp4" }), 415, "unsupported_media_type");
    expect(await snapshot()).toEqual(before);
  });

  test("random bytes and an empty file", async () => {
    const before = await snapshot();
    const noise = join(scratch, "noise.mp4");
    await writeFile(noise, crypto.getRandomValues(new Uint8Array(64 * 1024)));
    await expectError(await uploadMultipart(spool.url, noise), 415, "unsupported_media_type");
    const empty = join(scratch, "empty.mp4");
    await writeFile(empty, "");
    await expectError(await uploadMultipart(spool.url, empty), 415, "unsupported_media_type");
    expect(await snapshot()).toEqual(before);
  });

  // A faststart file cut short keeps its index (ffprobe is satisfied) and loses media data; one
  // whose index was at its end loses the index (ffprobe cannot identify it). Both are told the same.
  for (const [name, faststart] of [["faststart", true], ["index at the end", false]] as const) {
    test(`a cut-short MP4 (${name}; a copy or download that stopped): 415 saying how much of it arrived, nothing kept`, async () => {
      const source = await makeVideo({ seconds: 2, faststart });
      const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
      const path = join(scratch, `truncated-${faststart}.mp4`);
      await writeFile(path, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
      const before = await snapshot();
      const response = await uploadMultipart(spool.url, path, { name: "truncated.mp4" });
      expect(response.status).toBe(415);
      const body = (await response.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe("unsupported_media_type");
      expect(body.error.message).toMatch(/^incomplete file: [\d.]+ kB of an MP4 whose index expects [\d.]+ kB$/);
      expect(await snapshot()).toEqual(before);
    });
  }

  test("media that identifies but does not hold together: accepted, then `failed` with a readable error and its files removed", async () => {
    const path = await makeUndecodableVideo(scratch);
    const first = await created(await uploadMultipart(spool.url, path, { name: "undecodable.mp4" }));
    expect(first.status).toBe("processing");
    const video = await waitUntilSettled(spool.url, first.id);
    expect(video.status).toBe("failed");
    expect(video.error).toStartWith("Processing failed: ");
    expect(video).toMatchObject({ size: 0, sha256: null, thumbnailUrl: null });
    expect(filesUnder(videoDir(video.id))).toEqual([]);
    await expectError(await fetch(spool.url + video.streamUrl), 404, "not_found");
    expect((await fetch(`${spool.url}/api/videos?status=failed`, { headers: AUTH }).then((r) => r.json()) as { items: VideoJson[] }).items.map((v) => v.id)).toContain(video.id);
    // Failed for a reason a retry cannot fix: the job is not run again.
    expect((await settledJobs(spool.ctx.jobs, video.id, "ingest")).map((j) => [j.state, j.attempts])).toEqual([["failed", 1]]);
  });
});

/** Sends a multipart upload over a raw socket; resolves with what was sent when the answer came. */
function rawUpload(port: number, options: { declaredLength?: number; chunked?: boolean; sendBytes: number }): Promise<RawAnswer> {
  const boundary = "spoolboundary";
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n`;
  const length = options.chunked ? "Transfer-Encoding: chunked" : `Content-Length: ${options.declaredLength}`;
  const request = `POST /api/videos HTTP/1.1\r\nHost: x\r\nAuthorization: ${AUTH.authorization}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\n${length}\r\n\r\n`;
  return sendUntilAnswered(port, request, !!options.chunked, async (write, stop, sent) => {
    if (options.sendBytes > 0) write(Buffer.from(head));
    const piece = Buffer.alloc(64 * 1024, 0x2a);
    while (!stop() && sent() < options.sendBytes) {
      write(piece);
      await Bun.sleep(1);
    }
  });
}

describe("MAX_UPLOAD_BYTES", () => {
  test("a declared Content-Length over the limit: 413 before a byte of the body is read", async () => {
    const before = await snapshot();
    // (Beyond MAX_UPLOAD_BYTES + 1 MiB, Bun's own maxRequestBodySize answers first.)
    const result = await rawUpload(spool.port, { declaredLength: LIMIT + 512 * 1024, sendBytes: 0 });
    expect(result.status).toBe(413);
    expect(result.sent).toBe(0);
    expect(JSON.parse(result.body).error.code).toBe("payload_too_large");
    expect(await snapshot()).toEqual(before);
  });

  test("a streamed body: 413 as soon as the file passes the limit, while the client is still sending", async () => {
    const before = await snapshot();
    const result = await rawUpload(spool.port, { chunked: true, sendBytes: LIMIT * 8 });
    expect(result.status).toBe(413);
    expect(JSON.parse(result.body)).toEqual({ error: { code: "payload_too_large", message: `The upload exceeds the limit of ${LIMIT} bytes (MAX_UPLOAD_BYTES)` } });
    // Answered early: well before the 32 MiB the client meant to send.
    expect(result.sent).toBeGreaterThan(LIMIT);
    expect(result.sent).toBeLessThan(LIMIT * 2);
    for (let i = 0; i < 50 && tmpFiles().length; i++) await Bun.sleep(20);
    expect(await snapshot()).toEqual(before);
  });
});

describe("library API", () => {
  let ids: string[] = [];
  beforeAll(async () => {
    const source = await makeVideo({ seconds: 1, width: 160, height: 120 });
    ids = [];
    for (const title of ["first", "second", "third"]) {
      ids.push((await created(await uploadMultipart(spool.url, source, { title }))).id);
      await Bun.sleep(5); // distinct creation times
    }
    for (const id of ids) await waitUntilSettled(spool.url, id);
  });

  test("list: newest first, limit + cursor pagination, status filter", async () => {
    const page1 = (await (await fetch(`${spool.url}/api/videos?limit=2`, { headers: AUTH })).json()) as { items: VideoJson[]; nextCursor: string | null };
    expect(page1.items.map((v) => v.title)).toEqual(["third", "second"]);
    expect(page1.nextCursor).toEqual(expect.any(String));
    const page2 = (await (await fetch(`${spool.url}/api/videos?limit=2&cursor=${page1.nextCursor}`, { headers: AUTH })).json()) as { items: VideoJson[]; nextCursor: string | null };
    expect(page2.items[0]!.title).toBe("first");
    const all = await listAll(spool.url);
    for (let i = 1; i < all.length; i++) expect(Date.parse(all[i - 1]!.createdAt)).toBeGreaterThanOrEqual(Date.parse(all[i]!.createdAt));
    const failed = (await (await fetch(`${spool.url}/api/videos?status=failed`, { headers: AUTH })).json()) as { items: VideoJson[] };
    expect(failed.items.every((v) => v.status === "failed")).toBe(true);
    const ready = (await (await fetch(`${spool.url}/api/videos?status=ready&limit=200`, { headers: AUTH })).json()) as { items: VideoJson[] };
    expect(ready.items.map((v) => v.id)).toEqual(expect.arrayContaining(ids));
  });

  test("list: a strong ETag per page, 304 while nothing changed, 412 for a failed If-Match", async () => {
    const first = await fetch(`${spool.url}/api/videos?limit=2`, { headers: AUTH });
    expect(first.status).toBe(200);
    expect(first.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(first.headers.get("cache-control")).toBe("private, no-cache");
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    const body = await first.text();
    const again = await fetch(`${spool.url}/api/videos?limit=2`, { headers: AUTH });
    expect(again.headers.get("etag")).toBe(etag);
    expect(await again.text()).toBe(body);
    for (const inm of [etag, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const revalidated = await fetch(`${spool.url}/api/videos?limit=2`, { headers: { ...AUTH, "if-none-match": inm } });
      expect(revalidated.status).toBe(304);
      expect(revalidated.headers.get("etag")).toBe(etag);
      expect(await revalidated.text()).toBe("");
    }
    expect((await fetch(`${spool.url}/api/videos?limit=2`, { headers: { ...AUTH, "if-none-match": '"stale"' } })).status).toBe(200);
    // Another page is another representation.
    expect((await fetch(`${spool.url}/api/videos?limit=1`, { headers: AUTH })).headers.get("etag")).not.toBe(etag);
    await expectError(await fetch(`${spool.url}/api/videos?limit=2`, { headers: { ...AUTH, "if-match": '"stale"' } }), 412, "precondition_failed");
  });

  test("list: a change is visible at once, whether made by this server or by another connection", async () => {
    const titles = async () => {
      const r = await fetch(`${spool.url}/api/videos?limit=200`, { headers: AUTH });
      return { etag: r.headers.get("etag"), titles: ((await r.json()) as { items: VideoJson[] }).items.map((v) => v.title) };
    };
    const before = await titles();
    // This server's own write.
    const patched = await fetch(`${spool.url}/api/videos/${ids[0]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "patched here" }) });
    expect(patched.status).toBe(200);
    const afterPatch = await titles();
    expect(afterPatch.titles).toContain("patched here");
    expect(afterPatch.etag).not.toBe(before.etag);
    // A write by another process's library on the same database (as a CLI ingest or a worker
    // makes): on SQLite seen through data_version, on PostgreSQL through its announcement.
    const other = await openDatabase(spool.config.databaseUrl);
    try {
      await new VideoLibrary(other, new Storage(spool.dataDir)).rename(ids[0]!, "renamed elsewhere");
      // An announcement takes a moment to arrive; SQLite's check is exact at once.
      if (other.dialect === "postgres") await Bun.sleep(200);
    } finally {
      await other.close();
    }
    const afterOther = await titles();
    expect(afterOther.titles).toContain("renamed elsewhere");
    expect(afterOther.titles).not.toContain("patched here");
    expect(afterOther.etag).not.toBe(afterPatch.etag);
  });

  test.each([
    ["limit=0", "query limit: must be an integer from 1 to 200"],
    ["limit=201", "query limit: must be an integer from 1 to 200"],
    ["limit=abc", "query limit: must be an integer from 1 to 200"],
    ["status=done", "query status: must be one of importing, uploading, processing, ready, failed"],
    ["cursor=bm9wZQ", "cursor is not one this API returned"],
    // A safe integer, but no Date: it once bound as NaN and answered an empty page.
    [`cursor=${Buffer.from("9007199254740991:x").toString("base64url")}`, "cursor is not one this API returned"],
    [`cursor=${Buffer.from("8640000000000000:x").toString("base64url")}`, "cursor is not one this API returned"],
  ])("list ?%s: 400 %j", async (query, message) => {
    const body = await expectError(await fetch(`${spool.url}/api/videos?${query}`, { headers: AUTH }), 400, "bad_request");
    expect(body.error.message).toBe(message);
  });

  test("get: the JSON of one video; 400 for a malformed id, 404 for an unknown one", async () => {
    const video = (await (await fetch(`${spool.url}/api/videos/${ids[0]}`)).json()) as VideoJson;
    expect(video.id).toBe(ids[0]!);
    // A malformed id is no public video's, so only the key holder gets as far as the 400.
    const bad = await expectError(await fetch(`${spool.url}/api/videos/no!such*id`, { headers: AUTH }), 400, "bad_request");
    expect(bad.error.message).toBe("params id: not a video id (4-64 characters of A-Z a-z 0-9 _ -)");
    await expectError(await fetch(`${spool.url}/api/videos/AAAAAAAAAAAAAAAAAAAAAA`), 404, "not_found");
  });

  test("patch: changes the title only", async () => {
    const before = (await (await fetch(`${spool.url}/api/videos/${ids[1]}`)).json()) as VideoJson;
    const response = await fetch(`${spool.url}/api/videos/${ids[1]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "  Renamed  " }) });
    expect(response.status).toBe(200);
    const after = (await response.json()) as VideoJson;
    expect(after.title).toBe("Renamed");
    expect({ ...after, title: before.title, updatedAt: before.updatedAt }).toEqual(before);
    expect((await spool.ctx.library.get(ids[1]!))!.title).toBe("Renamed");
  });

  test.each([
    [{ title: "" }, "body title: must be a string of 1-500 characters"],
    [{ title: " \t " }, "body title: must not be blank"],
    // `title` is optional since PATCH also takes `playback`; a body with neither changes nothing.
    [{}, "body: send `title` and/or `playback`"],
    [{ title: 42 }, "body title: must be a string of 1-500 characters"],
  ])("patch %j: 400 %j", async (body, message) => {
    const response = await fetch(`${spool.url}/api/videos/${ids[1]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify(body) });
    expect((await expectError(response, 400, "bad_request")).error.message).toBe(message);
  });

  test("one title limit (500 characters) for PATCH and for uploads, with the title before or after the file", async () => {
    const long = "t".repeat(501);
    const patch = await fetch(`${spool.url}/api/videos/${ids[1]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: long }) });
    expect((await expectError(patch, 400, "bad_request")).error.message).toBe("title: at most 500 characters");
    const before = await listAll(spool.url);
    const titleFirst = await expectError(await uploadMultipart(spool.url, FIXTURE, { title: long }), 400, "bad_request");
    expect(titleFirst.error.message).toBe("title: at most 500 characters");
    const form = new FormData();
    form.append("file", new Blob([await Bun.file(FIXTURE).arrayBuffer()]), "late-title.mp4");
    form.append("title", long);
    const titleLast = await expectError(await fetch(`${spool.url}/api/videos`, { method: "POST", body: form, headers: AUTH }), 400, "bad_request");
    expect(titleLast.error.message).toBe("title: at most 500 characters");
    // Nothing kept either way.
    expect((await listAll(spool.url)).map((v) => v.id)).toEqual(before.map((v) => v.id));
    for (let i = 0; i < 50 && tmpFiles().length > 0; i++) await Bun.sleep(50);
    expect(tmpFiles()).toEqual([]);
    // Exactly the limit is fine.
    const fits = await uploadMultipart(spool.url, FIXTURE, { title: "t".repeat(500) });
    expect(fits.status).toBe(201);
    expect((await fetch(`${spool.url}/api/videos/${((await fits.json()) as VideoJson).id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
  });

  test("titles count characters (code points) once trimmed, not UTF-16 units: PATCH, multipart and tus alike", async () => {
    const emoji = "😀".repeat(500);
    const padded = `   ${"a".repeat(500)}   `;
    const patch = (title: string) => fetch(`${spool.url}/api/videos/${ids[1]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title }) });
    for (const [title, stored] of [[emoji, emoji], [` ${emoji}\n`, emoji], [padded, "a".repeat(500)]]) {
      const changed = await patch(title!);
      expect(changed.status).toBe(200);
      expect(((await changed.json()) as VideoJson).title).toBe(stored!);
    }
    expect((await expectError(await patch(` ${emoji}😀 `), 400, "bad_request")).error.message).toBe("title: at most 500 characters");
    // Past the schema's cheap bound in UTF-16 units, the schema says the limit.
    expect((await expectError(await patch("😀".repeat(1001)), 400, "bad_request")).error.message).toBe("body title: must be a string of 1-500 characters");

    const uploaded = await created(await uploadMultipart(spool.url, FIXTURE, { title: padded }));
    expect(uploaded.title).toBe("a".repeat(500));
    const refused = await expectError(await uploadMultipart(spool.url, FIXTURE, { title: `${emoji}😀` }), 400, "bad_request");
    expect(refused.error.message).toBe("title: at most 500 characters");
    // tus: the title in Upload-Metadata.
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const tus = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "1000", "upload-metadata": `filename ${b64("a.mp4")},title ${b64(emoji)}` } });
    expect(tus.status).toBe(201);
    const tusId = tus.headers.get("spool-video-id")!;
    expect((await spool.ctx.library.get(tusId))?.title).toBe(emoji);
    for (const id of [uploaded.id, tusId]) expect((await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    // A direct upload URL's title: checked when the URL is issued, so the browser's creation cannot fail on it.
    const issue = (title: string) => fetch(`${spool.url}/api/uploads/direct`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title }) });
    const direct = await issue(` ${emoji} `);
    expect(direct.status).toBe(201);
    const { uploadUrl, videoId } = (await direct.json()) as { uploadUrl: string; videoId: string };
    expect((await fetch(spool.url + uploadUrl, { method: "POST", headers: { "tus-resumable": "1.0.0", "upload-length": "1000" } })).status).toBe(201);
    expect((await spool.ctx.library.get(videoId))?.title).toBe(emoji);
    expect((await fetch(`${spool.url}/api/videos/${videoId}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    expect((await expectError(await issue(`${emoji}😀`), 400, "bad_request")).error.message).toBe("title: at most 500 characters");
  });

  test("control characters: refused in a title someone chose, replaced in one made from a file name; bidi controls never reach a download's name", async () => {
    const message = "title: no control characters (U+0000-U+001F, U+007F-U+009F)";
    const patch = (title: string) => fetch(`${spool.url}/api/videos/${ids[1]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title }) });
    for (const title of ["a\u0000b", "a\tb", "a\u007fb", "a\u0085b"]) expect((await expectError(await patch(title), 400, "bad_request")).error.message).toBe(message);
    expect((await expectError(await uploadMultipart(spool.url, FIXTURE, { title: "bell\u0007" }), 400, "bad_request")).error.message).toBe(message);
    const b64 = (text: string) => Buffer.from(text).toString("base64");
    const tus = await fetch(`${spool.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "1000", "upload-metadata": `filename ${b64("tab\there\u0085.mp4")}` } });
    expect(tus.status).toBe(201);
    const tusId = tus.headers.get("spool-video-id")!;
    expect((await spool.ctx.library.get(tusId))?.title).toBe("tab here");
    expect((await fetch(`${spool.url}/api/videos/${tusId}`, { method: "DELETE", headers: AUTH })).status).toBe(204);

    // A right-to-left override is text (Arabic and Hebrew titles use bidi controls), but not in a
    // file name, where "\u202Etxt.exe.mp4" would show as "4pm.exe.txt".
    expect((await patch("é \u202etxt.exe")).status).toBe(200);
    const download = await fetch(`${spool.url}/api/stream/${ids[1]}?download=1`, { method: "HEAD" });
    expect(download.headers.get("content-disposition")).toBe(`attachment; filename="e txt.exe.mp4"; filename*=UTF-8''%C3%A9%20txt.exe.mp4`);
  });

  test("patch reads JSON only, with no unknown field: a misspelt key is a 400 and another media type a 415, nothing changed", async () => {
    const url = `${spool.url}/api/videos/${ids[1]}`;
    const before = await spool.ctx.library.get(ids[1]!);
    // A misspelt `playback` once changed the title and left the video public.
    const misspelt = await fetch(url, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: '{"title":"t","Playback":"signed"}' });
    expect((await expectError(misspelt, 400, "bad_request")).error.message).toStartWith("body Playback: Unexpected property");
    const form = new FormData();
    form.append("title", "x");
    for (const [body, type] of [
      ['{"title":"x"}', "text/plain"],
      ["<title>x</title>", "application/xml"],
      ["title=x", "application/x-www-form-urlencoded"],
      [form, undefined],
    ] as const) {
      const refused = await fetch(url, { method: "PATCH", headers: { ...AUTH, ...(type ? { "content-type": type } : {}) }, body });
      expect({ type: type ?? "multipart", status: refused.status }).toEqual({ type: type ?? "multipart", status: 415 });
      await expectError(refused, 415, "unsupported_media_type");
    }
    await expectError(await fetch(url, { method: "PATCH", headers: AUTH }), 400, "bad_request");
    expect(await spool.ctx.library.get(ids[1]!)).toEqual(before);
  });

  test("patch with a body that is not JSON: 400; unknown id: 404", async () => {
    await expectError(await fetch(`${spool.url}/api/videos/${ids[1]}`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: "{nope" }), 400, "bad_request");
    await expectError(
      await fetch(`${spool.url}/api/videos/AAAAAAAAAAAAAAAAAAAAAA`, { method: "PATCH", headers: { ...AUTH, "content-type": "application/json" }, body: JSON.stringify({ title: "x" }) }),
      404,
      "not_found",
    );
  });

  test("a video's JSON has a strong ETag: 304 while unchanged; PATCH and DELETE honour If-Match (412, nothing changed)", async () => {
    const id = ids[1]!;
    const url = `${spool.url}/api/videos/${id}`;
    const json = { ...AUTH, "content-type": "application/json" };
    const first = await fetch(url);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]+"$/);
    await first.arrayBuffer();
    const unchanged = await fetch(url, { headers: { "if-none-match": etag } });
    expect(unchanged.status).toBe(304);
    expect(unchanged.headers.get("etag")).toBe(etag);
    expect(await unchanged.text()).toBe("");

    // A stale If-Match: 412, and the title stays.
    const stale = await fetch(url, { method: "PATCH", headers: { ...json, "if-match": '"0123"' }, body: JSON.stringify({ title: "Lost update" }) });
    await expectError(stale, 412, "precondition_failed");
    const title = (await spool.ctx.library.get(id))!.title;
    expect(title).not.toBe("Lost update");
    // The current one: applied, and the answer names the new tag, which GET agrees with.
    const applied = await fetch(url, { method: "PATCH", headers: { ...json, "if-match": etag }, body: JSON.stringify({ title: "Checked rename" }) });
    expect(applied.status).toBe(200);
    const next = applied.headers.get("etag")!;
    expect(next).not.toBe(etag);
    expect((await fetch(url)).headers.get("etag")).toBe(next);
    expect((await fetch(url, { headers: { "if-none-match": etag } })).status).toBe(200);
    // The old tag again: 412. If-None-Match: * on a video that exists: 412 too.
    await expectError(await fetch(url, { method: "PATCH", headers: { ...json, "if-match": etag }, body: JSON.stringify({ title: "Again" }) }), 412, "precondition_failed");
    await expectError(await fetch(url, { method: "DELETE", headers: { ...AUTH, "if-match": etag } }), 412, "precondition_failed");
    await expectError(await fetch(url, { method: "DELETE", headers: { ...AUTH, "if-none-match": "*" } }), 412, "precondition_failed");
    expect((await spool.ctx.library.get(id))!.title).toBe("Checked rename");
    // The write itself is a compare-and-set: a change between the check and the write fails it.
    const row = (await spool.ctx.library.get(id))!;
    await spool.ctx.library.update(id, { title: "In between" });
    await expect(spool.ctx.library.update(id, { title: "Lost" }, row.updatedAt)).rejects.toMatchObject({ status: 412 });
    expect((await spool.ctx.library.get(id))!.title).toBe("In between");
  });

  test("delete: removes the row and every file; streaming it afterwards gives 404", async () => {
    const id = ids[2]!;
    // Cache the stream and a thumbnail first: deletion must win over every cache.
    expect((await fetch(`${spool.url}/api/stream/${id}`, { headers: { range: "bytes=0-1" } })).status).toBe(206);
    expect((await fetch(`${spool.url}/api/videos/${id}/thumbnail.jpg?width=64`)).status).toBe(200);
    expect(filesUnder(videoDir(id))).toEqual(["poster.jpg", "source.mp4", "thumbs/t100-w80.jpg"]); // 64 snaps up to 80

    const response = await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH });
    expect(response.status).toBe(204);
    expect(await response.text()).toBe("");
    expect(await spool.ctx.library.get(id)).toBeUndefined();
    expect(filesUnder(videoDir(id))).toEqual([]);
    await expectError(await fetch(`${spool.url}/api/stream/${id}`, { headers: { range: "bytes=0-1" } }), 404, "not_found");
    await expectError(await fetch(`${spool.url}/api/videos/${id}`), 404, "not_found");
    await expectError(await fetch(`${spool.url}/api/videos/${id}/thumbnail.jpg`), 404, "not_found");
    await expectError(await fetch(`${spool.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH }), 404, "not_found");
  });

  test("delete while processing: the job stops and nothing is left", async () => {
    const source = await makeVideo({ seconds: 3, faststart: false });
    const first = await created(await uploadMultipart(spool.url, source));
    expect((await fetch(`${spool.url}/api/videos/${first.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    await spool.ctx.ingest.settled(first.id);
    await Bun.sleep(100);
    expect(await spool.ctx.library.get(first.id)).toBeUndefined();
    expect(filesUnder(videoDir(first.id))).toEqual([]);
  });

  test("delete of a video still queued for processing answers at once: the queued job goes with it", async () => {
    // No worker free (here: none at all), so the video's processing job waits in the queue.
    await stopWorker(spool.ctx);
    try {
      const source = await makeVideo({ seconds: 1, faststart: false });
      const queued = await created(await uploadMultipart(spool.url, source));
      expect((await spool.ctx.jobs.forVideo(queued.id, "ingest")).map((j) => j.state)).toEqual(["queued"]);
      const response = await fetch(`${spool.url}/api/videos/${queued.id}`, { method: "DELETE", headers: AUTH, signal: AbortSignal.timeout(5000) });
      expect(response.status).toBe(204);
      expect(await spool.ctx.library.get(queued.id)).toBeUndefined();
      expect(await spool.ctx.jobs.forVideo(queued.id)).toEqual([]);
      expect(filesUnder(videoDir(queued.id))).toEqual([]);
    } finally {
      await startWorker(spool.ctx);
    }
  }, 15_000);
});

describe("bun run ingest", () => {
  async function ingest(dataDir: string, ...args: string[]) {
    const proc = Bun.spawn([process.execPath, "src/cli/ingest.ts", ...args], {
      cwd: ROOT,
      env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: "" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { stdout, stderr, code };
  }

  test("prints the final JSON, after processing (its log lines on stderr); refuses non-media", async () => {
    const dataDir = join(scratch, "cli-data");
    // A DATA_DIR others may enter: the warning goes to stderr, stdout stays the JSON alone.
    await mkdir(dataDir, { mode: 0o755 });
    await chmod(dataDir, 0o755);
    const source = await makeVideo({ seconds: 1, faststart: false });
    const ok = await ingest(dataDir, source, "--title", "From the CLI");
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("DATA_DIR can be entered by other users");
    const video = JSON.parse(ok.stdout) as VideoJson;
    expect(video).toMatchObject({ title: "From the CLI", status: "ready", container: "mp4", width: 320, height: 240, videoCodec: "h264" });
    const boxes = await topLevelBoxes(join(dataDir, "videos", video.id, "source.mp4"));
    expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));

    const text = join(scratch, "cli.mp4");
    await writeFile(text, "not a video");
    const refused = await ingest(dataDir, text);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("ingest: The file is not in a recognised video or audio format");

    const handle = await openDatabase(`file:${join(dataDir, "spool.db")}`);
    try {
      expect(await handle.db.select({ id: handle.tables.videos.id }).from(handle.tables.videos)).toEqual([{ id: video.id }]);
    } finally {
      await handle.close();
    }
  }, 30_000);

  test("--playback signed makes a signed video; an unknown policy is refused before anything is read", async () => {
    const dataDir = join(scratch, "cli-playback");
    const source = await makeVideo({ seconds: 1 });
    const signed = await ingest(dataDir, source, "--playback", "signed");
    expect(signed.code).toBe(0);
    expect((JSON.parse(signed.stdout) as VideoJson).playback).toBe("signed");
    const plain = await ingest(dataDir, source);
    expect((JSON.parse(plain.stdout) as VideoJson).playback).toBe("public");
    const wrong = await ingest(dataDir, source, "--playback", "private");
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("--playback must be public or signed");
  }, 30_000);

  test("--help: the usage on stdout, exit 0; no file or two: the usage on stderr, exit 2", async () => {
    const dataDir = join(scratch, "cli-usage");
    const usage = "usage: bun run ingest <file|http(s) URL> [--title T] [--playback public|signed]\n";
    expect(await ingest(dataDir, "--help")).toEqual({ stdout: usage, stderr: "", code: 0 });
    expect(await ingest(dataDir)).toEqual({ stdout: "", stderr: usage, code: 2 });
    expect(await ingest(dataDir, "a.mp4", "b.mp4")).toEqual({ stdout: "", stderr: usage, code: 2 });
    expect(existsSync(dataDir)).toBe(false);
  });

  test("a directory or a missing file: one clear line, exit 1, nothing created", async () => {
    const dataDir = join(scratch, "cli-not-files");
    const directory = await mkdtemp(join(scratch, "a-directory-"));
    const refusedDirectory = await ingest(dataDir, directory);
    expect({ code: refusedDirectory.code, stderr: refusedDirectory.stderr.trim() }).toEqual({ code: 1, stderr: `ingest: ${directory} is a directory; give a video or audio file` });
    const missing = await ingest(dataDir, join(scratch, "nowhere.mp4"));
    expect({ code: missing.code, stderr: missing.stderr.trim() }).toEqual({ code: 1, stderr: `ingest: no such file: ${join(scratch, "nowhere.mp4")}` });
    expect(existsSync(join(dataDir, "spool.db"))).toBe(false);
  }, 30_000);

  /**
   * A stand-in for ffprobe or ffmpeg that says when it was started, then never finishes (it
   * dies with its parent: Spool runs the tools under `setpriv --pdeathsig`): the ingest is held
   * at that stage for as long as the test needs.
   */
  async function stuckTool(name: string): Promise<{ path: string; started: string }> {
    const started = join(scratch, `${name}-started-${crypto.randomUUID()}`);
    const path = join(scratch, `${name}-${crypto.randomUUID()}`);
    await writeFile(path, `#!/bin/sh\ntouch '${started}'\nexec sleep 60\n`, { mode: 0o755 });
    return { path, started };
  }

  const interruptions = [
    { stage: "probing (the row `uploading`, the copy in tmp/)", tool: "FFPROBE_PATH", signal: "SIGINT", code: 130 },
    { stage: "processing (the row `processing`, its job running)", tool: "FFMPEG_PATH", signal: "SIGTERM", code: 143 },
  ] as const;
  for (const { stage, tool, signal, code } of interruptions) {
    test(`${signal} while ${stage}: the video is removed, nothing is left, exit ${code}`, async () => {
      const dataDir = join(scratch, `cli-${signal}`);
      const stuck = await stuckTool(tool);
      const source = await makeVideo({ seconds: 1, faststart: false });
      const proc = Bun.spawn([process.execPath, "src/cli/ingest.ts", source], {
        cwd: ROOT,
        env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: "", LOG_FORMAT: "json", [tool]: stuck.path },
        stdout: "pipe",
        stderr: "pipe",
      });
      const output = Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
      for (let waited = 0; !existsSync(stuck.started); waited += 50) {
        if (waited > 20_000 || proc.exitCode !== null) throw new Error(`the ingest never reached ${tool}: ${(await output).join("\n")}`);
        await Bun.sleep(50);
      }
      proc.kill(signal);
      const exited = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "still running")]);
      if (exited === "still running") proc.kill("SIGKILL");
      const [stdout, stderr] = await output;
      expect({ exited, stdout }).toEqual({ exited: code, stdout: "" });
      expect(stderr.trim().split("\n").at(-1)).toMatch(new RegExp(`^ingest: interrupted \\(${signal}\\); video [\\w-]{22} was removed$`));
      const handle = await openDatabase(`file:${join(dataDir, "spool.db")}`);
      try {
        expect(await handle.db.select({ id: handle.tables.videos.id, status: handle.tables.videos.status }).from(handle.tables.videos)).toEqual([]);
        expect(await handle.db.select({ id: handle.tables.jobs.id }).from(handle.tables.jobs)).toEqual([]);
      } finally {
        await handle.close();
      }
      expect({ videos: filesUnder(join(dataDir, "videos")), tmp: filesUnder(join(dataDir, "tmp")) }).toEqual({ videos: [], tmp: [] });
    }, 30_000);
  }
});

describe("restarts", () => {
  test("a cut-off multipart upload becomes `failed`; one another live process is receiving is left alone; an interrupted processing job resumes", async () => {
    const dataDir = join(scratch, "restart-data");
    const first = await startTestSpool({ dataDir, seedDemo: false, jobKinds: NO_HLS });
    const library = first.ctx.library;
    // Who was receiving each upload: a process that died (the server before its restart), one
    // still alive (another node's process on this host, sharing the database), another host,
    // and nobody recorded (a row from before owners were).
    const exited = Bun.spawn(["true"]);
    await exited.exited;
    const owners = {
      cut: `${hostname()}:${exited.pid}:dead0000`,
      live: `${hostname()}:${process.ppid}:alive000`,
      elsewhere: "other-host:1:remote00",
      legacy: null,
      // This process's pid under another id: a previous life (a restarted container's pid 1).
      recycled: `${hostname()}:${process.pid}:before00`,
    };
    const rows = Object.fromEntries(
      await Promise.all(
        Object.entries(owners).map(async ([name, owner]) => {
          const row = await library.begin({ originalFilename: `${name}.mp4` });
          const { db, tables } = first.ctx.db;
          await db.update(tables.videos).set({ uploadOwner: owner }).where(eq(tables.videos.id, row.id));
          return [name, row.id] as const;
        }),
      ),
    );
    const cut = { id: rows.cut! };
    // A video whose processing was interrupted: staged bytes on disk, row `processing`.
    const source = await makeVideo({ seconds: 1, faststart: false });
    const pending = await library.begin({ originalFilename: "pending.mp4", title: "pending" });
    await mkdir(library.storage.videoDir(pending.id), { recursive: true });
    await copyFile(source, library.storage.stagedPath(pending.id));
    await library.markProcessing(pending.id, mediaFields(await first.ctx.media!.probe(library.storage.stagedPath(pending.id))));
    await first.stop();

    const second = await startTestSpool({ dataDir, seedDemo: false, jobKinds: NO_HLS });
    try {
      const failed = (await (await fetch(`${second.url}/api/videos/${cut.id}`)).json()) as VideoJson;
      expect(failed).toMatchObject({ status: "failed", error: "The upload was interrupted: the server process receiving it stopped" });
      const status = async (id: string) => ((await (await fetch(`${second.url}/api/videos/${id}`, { headers: AUTH })).json()) as VideoJson).status;
      expect({ live: await status(rows.live!), elsewhere: await status(rows.elsewhere!), legacy: await status(rows.legacy!), recycled: await status(rows.recycled!) }).toEqual({ live: "uploading", elsewhere: "uploading", legacy: "failed", recycled: "failed" });
      const resumed = await waitUntilSettled(second.url, pending.id);
      expect(resumed).toMatchObject({ status: "ready", title: "pending", width: 320 });
      const boxes = await topLevelBoxes(join(dataDir, "videos", pending.id, "source.mp4"));
      expect(boxes.indexOf("moov")).toBeLessThan(boxes.indexOf("mdat"));
    } finally {
      await second.stop();
    }
  });
});

describe("without ffmpeg", () => {
  test("starts, says ingest needs ffmpeg/ffprobe, answers uploads 503, and streams what is ready", async () => {
    const bare = await withCapturedLogs(async (lines) => {
      const started = await startTestSpool({ ffmpegPath: "/nonexistent/ffmpeg", ffprobePath: "/nonexistent/ffprobe", seedDemo: true, jobKinds: NO_HLS });
      expect(lines().some((l) => l.level === 40 && String(l.msg).includes("ingest needs ffmpeg/ffprobe"))).toBe(true);
      return started;
    });
    try {
      expect(bare.ctx.media).toBeUndefined();

      const source = await makeVideo({ seconds: 1 });
      const body = await expectError(await uploadMultipart(bare.url, source), 503, "ingest_unavailable");
      expect(body.error.message).toContain("Ingest needs ffmpeg and ffprobe");
      await expectError(await fetch(`${bare.url}/api/uploads`, { method: "POST", headers: { ...AUTH, "tus-resumable": "1.0.0", "upload-length": "10" } }), 503, "ingest_unavailable");
      expect(filesUnder(join(bare.dataDir, "tmp"))).toEqual([]);

      // The demo is seeded from known values and streams normally.
      const demo = (await (await fetch(`${bare.url}/api/videos/demo`)).json()) as VideoJson;
      expect(demo).toMatchObject({ status: "ready", container: "mp4", width: 640, height: 360, duration: 8, videoCodec: "h264", audioCodec: "aac" });
      expect(demo.sha256).toBe(await sha256File(resolve(ROOT, "fixtures/demo.mp4")));
      const ranged = await fetch(`${bare.url}/api/stream/demo`, { headers: { range: "bytes=0-99" } });
      expect(ranged.status).toBe(206);
      expect((await ranged.arrayBuffer()).byteLength).toBe(100);
      // A poster needs ffmpeg.
      await expectError(await fetch(`${bare.url}/api/videos/demo/thumbnail.jpg`), 503, "ingest_unavailable");
    } finally {
      await bare.stop();
    }
  });
});

async function sha256OfResponse(response: Response): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(new Uint8Array(await response.arrayBuffer()));
  return hasher.digest("hex");
}
