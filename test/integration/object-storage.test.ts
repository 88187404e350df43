/**
 * STORAGE=s3 end to end, against a real s3rver (no mock): ingest puts the objects and leaves no
 * media on disk, a second server with an empty DATA_DIR on the same database and bucket serves
 * the same bytes and ETag, HLS and pictures from the bucket, redirect delivery, the bucket going
 * down (503 JSON, /ready 503, a stream cut mid-way is a broken connection, never a short body
 * that looks complete) and coming back, delete and the orphan sweep.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { filesUnder, uploadMultipart, waitUntilSettled } from "../helpers/library.ts";
import { AUTH, startTestSpool, testBucketStorage, testS3, type TestSpool } from "../helpers/spool.ts";
import type { S3rver } from "../helpers/s3.ts";
import { hlsSettled, waitForVideo } from "./hls-support.ts";
import { makeLargeVideo, makeVideo } from "../helpers/media.ts";
import { filesBytes } from "../helpers/disk-usage.ts";
import type { StorageConfig } from "../../src/storage/index.ts";
import { OrphanSweeper, bucketOrphans } from "../../src/storage/orphans.ts";
import { planClip, writeClip } from "../../src/media/mp4/clip.ts";
import { readMovieFile } from "../../src/media/mp4/file.ts";
import { startWorker, stopWorker } from "../../src/app.ts";

const FIXTURE = join(import.meta.dir, "../../fixtures/demo.mp4");
const MiB = 1024 * 1024;

let s3: S3rver;
let storage: StorageConfig;
/** The server that ingests (and runs the worker). */
let first: TestSpool;
/** Servers on the same database and bucket, each with an empty DATA_DIR of its own. */
const others: TestSpool[] = [];
let videoId: string;

async function keys(prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of first.ctx.store.list(prefix)) out.push(o.key);
  return out;
}

/** Another server: same database and bucket, its own empty DATA_DIR and cache. */
async function another(delivery: "proxy" | "redirect" = "proxy"): Promise<TestSpool> {
  const dataDir = join(await mkdtemp(join(tmpdir(), "spool-s3-other-")), "data");
  const spool = await startTestSpool({
    dataDir,
    databaseUrl: first.config.databaseUrl,
    storage: { ...storage, delivery, cacheDir: join(dataDir, "cache") },
    seedDemo: false,
    transcode: { inServer: false },
  });
  others.push(spool);
  return spool;
}

const bytesOf = async (r: Response) => Buffer.from(await r.arrayBuffer());

beforeAll(async () => {
  s3 = await testS3();
  const dataDir = join(await mkdtemp(join(tmpdir(), "spool-s3-first-")), "data");
  storage = await testBucketStorage(dataDir);
  first = await startTestSpool({ dataDir, storage });
  const uploaded = await uploadMultipart(first.url, FIXTURE, { name: "clip.mp4", type: "video/mp4", title: "From the bucket" });
  expect(uploaded.status).toBe(201);
  videoId = ((await uploaded.json()) as { id: string }).id;
  expect((await waitUntilSettled(first.url, videoId)).status).toBe("ready");
}, 60_000);

afterAll(async () => {
  await s3?.start().catch(() => {});
  for (const spool of others) await spool.stop().catch(() => {});
  await first?.stop();
});

describe("ingest into the bucket", () => {
  test("the stored file and poster are objects; DATA_DIR keeps no media of the video", async () => {
    const row = (await first.ctx.library.get(videoId))!;
    expect(row.status).toBe("ready");
    expect(row.storagePath).toBe(`videos/${videoId}/source.mp4`);
    const stored = await keys(`videos/${videoId}/`);
    expect(stored).toContain(`videos/${videoId}/source.mp4`);
    expect(stored).toContain(`videos/${videoId}/poster.jpg`);
    const info = (await first.ctx.store.stat(row.storagePath))!;
    expect(info.size).toBe(row.size);
    expect(filesUnder(join(first.dataDir, "videos", videoId))).toEqual([]);
  });

  test("a second server with an empty disk serves the same bytes and the same ETag", async () => {
    const b = await another();
    expect(filesUnder(join(b.dataDir, "videos"))).toEqual([]);
    const row = (await first.ctx.library.get(videoId))!;
    const fromFirst = await fetch(`${first.url}/api/stream/${videoId}`);
    const fromB = await fetch(`${b.url}/api/stream/${videoId}`);
    expect(fromB.status).toBe(200);
    const body = await bytesOf(fromB);
    expect(body).toEqual(await bytesOf(fromFirst));
    expect(new Bun.CryptoHasher("sha256").update(body).digest("hex")).toBe(row.sha256!);
    expect(fromB.headers.get("etag")).toBe(`"${row.sha256!.slice(0, 32)}"`);
    expect(fromB.headers.get("etag")).toBe(fromFirst.headers.get("etag")!);
    expect(fromB.headers.get("last-modified")).toBe(fromFirst.headers.get("last-modified")!);
    expect(fromB.headers.get("content-length")).toBe(String(row.size));
    // A seek: exact bytes from the block now cached on B's disk.
    const seek = await fetch(`${b.url}/api/stream/${videoId}`, { headers: { range: "bytes=1000-1999" } });
    expect(seek.status).toBe(206);
    expect(seek.headers.get("content-range")).toBe(`bytes 1000-1999/${row.size}`);
    expect(await bytesOf(seek)).toEqual(body.subarray(1000, 2000));
    // Only the cache (and tmp/) on B's disk: no media outside it.
    expect(filesUnder(b.dataDir).filter((f) => !f.startsWith("cache/") && !f.startsWith("tmp/") && !/^spool\.db/.test(f) && !["api-key", "signing-secret"].includes(f))).toEqual([]);
    expect(filesUnder(join(b.dataDir, "cache")).some((f) => /^[0-9a-f]{2}\//.test(f))).toBe(true);
  });

  test("MP4 clips are cut from the bucket: the same bytes as the stored file's clip, ranges and multipart too", async () => {
    const b = await another();
    const row = (await first.ctx.library.get(videoId))!;
    // What the clip must be: the header cut from the stored bytes, then their media slice.
    const stored = join(await mkdtemp(join(tmpdir(), "spool-s3-clip-")), "stored.mp4");
    await writeFile(stored, await bytesOf(await fetch(`${first.url}/api/stream/${videoId}`)));
    const file = await readMovieFile(stored, row.size);
    const layout = writeClip(file.movie, planClip(file.movie, 2, 5), file.ftyp, row.size);
    const all = new Uint8Array(await Bun.file(stored).arrayBuffer());
    const expected = Buffer.concat([layout.header, all.subarray(layout.dataStart, layout.dataEnd)]);
    const url = `${b.url}/api/stream/${videoId}?start=2&end=5`;
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get("content-type")).toBe("video/mp4");
    expect(await bytesOf(whole)).toEqual(expected);
    expect((await fetch(url, { method: "HEAD" })).headers.get("content-length")).toBe(String(expected.length));
    // A range spanning header and media, one inside the media, and multipart.
    for (const [from, to] of [[0, layout.header.length + 999], [layout.header.length + 5000, layout.header.length + 70_000]] as const) {
      const part = await fetch(url, { headers: { range: `bytes=${from}-${to}` } });
      expect(part.status).toBe(206);
      expect(await bytesOf(part)).toEqual(expected.subarray(from, to + 1));
    }
    const multi = await fetch(url, { headers: { range: "bytes=0-9,20000-20009" } });
    expect(multi.status).toBe(206);
    const text = (await bytesOf(multi)).toString("latin1");
    expect(text).toContain(expected.subarray(20000, 20010).toString("latin1"));
  });

  test("the poster and an on-demand thumbnail come from the bucket", async () => {
    const b = others[0] ?? (await another());
    const poster = await fetch(`${b.url}/api/videos/${videoId}/thumbnail.jpg`);
    expect(poster.status).toBe(200);
    expect(poster.headers.get("content-type")).toBe("image/jpeg");
    const posterBytes = await bytesOf(poster);
    const object = await first.ctx.store.read(`videos/${videoId}/poster.jpg`, { start: 0, end: posterBytes.length - 1 });
    expect(Buffer.from(await new Response(object.stream).arrayBuffer())).toEqual(posterBytes);
    const thumb = await fetch(`${b.url}/api/videos/${videoId}/thumbnail.jpg?t=2&width=160`);
    expect(thumb.status).toBe(200);
    expect((await bytesOf(thumb)).subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect((await keys(`videos/${videoId}/thumbs/`)).length).toBe(1);
    expect(filesUnder(join(b.dataDir, "videos"))).toEqual([]);
    // Revalidation with the bucket object's tag.
    const again = await fetch(`${b.url}/api/videos/${videoId}/thumbnail.jpg`, { headers: { "if-none-match": poster.headers.get("etag")! } });
    expect(again.status).toBe(304);
  }, 30_000);

  test("the HLS ladder is built from the bucket, put into it, and served from it", async () => {
    const ready = await waitForVideo(first.url, videoId, hlsSettled, 90_000);
    expect(ready.hls.status).toBe("ready");
    const ladder = await keys(`videos/${videoId}/hls/`);
    expect(ladder).toContain(`videos/${videoId}/hls/master.m3u8`);
    expect(filesUnder(join(first.dataDir, "videos", videoId))).toEqual([]);
    const b = others[0] ?? (await another());
    const master = await fetch(`${b.url}/api/hls/${videoId}/master.m3u8`);
    expect(master.status).toBe(200);
    const text = await master.text();
    expect(text.startsWith("#EXTM3U")).toBe(true);
    const variant = text.split("\n").find((l) => l.endsWith(".m3u8"))!;
    const media = await (await fetch(`${b.url}/api/hls/${videoId}/${variant}`)).text();
    const segment = media.split("\n").find((l) => l.endsWith(".m4s"))!;
    const dir = variant.split("/")[0];
    const key = `videos/${videoId}/hls/${dir}/${segment}`;
    const info = (await first.ctx.store.stat(key))!;
    const seg = await fetch(`${b.url}/api/hls/${videoId}/${dir}/${segment}`, { headers: { range: "bytes=0-99" } });
    expect(seg.status).toBe(206);
    expect(seg.headers.get("content-range")).toBe(`bytes 0-99/${info.size}`);
    const direct = await first.ctx.store.read(key, { start: 0, end: 99 });
    expect(await bytesOf(seg)).toEqual(Buffer.from(await new Response(direct.stream).arrayBuffer()));
  }, 120_000);
});

describe("a bucket outage when an HLS ladder is ready to be put", () => {
  test("the built ladder waits in tmp/ with its job held, and is put once the bucket is back: not built again", async () => {
    // Long enough that ffmpeg is still running when the bucket is stopped below.
    const source = await makeVideo({ seconds: 30, width: 640, height: 360 });
    const uploaded = await uploadMultipart(first.url, source, { name: "outage.mp4", type: "video/mp4" });
    expect(uploaded.status).toBe(201);
    const { id } = (await uploaded.json()) as { id: string };
    expect((await waitUntilSettled(first.url, id)).status).toBe("ready");
    // The transcode job is queued by a write of its own just after the video turns ready.
    let queued: { id: number } | undefined;
    for (let i = 0; i < 500 && !(queued = (await first.ctx.jobs.forVideo(id, "transcode"))[0]); i++) await Bun.sleep(10);
    expect(queued).toBeDefined();
    // The transcode's directory (named after its job) appears once the source has come down from the bucket.
    const tmp = first.ctx.library.storage.ownTmpDir;
    const building = async () => (await readdir(tmp).catch(() => [] as string[])).find((n) => n.startsWith(`.hls-tmp-${queued!.id}-`) && !n.endsWith(".source"));
    let dir: string | undefined;
    for (let i = 0; i < 1500 && !(dir = await building()); i++) await Bun.sleep(20);
    expect(dir).toBeDefined();
    const job = async () => (await first.ctx.jobs.forVideo(id, "transcode")).map((j) => ({ state: j.state, attempts: j.attempts, error: j.error }));
    await s3.stop();
    try {
      // ffmpeg finishes and the master playlist is written: the put is next, and fails.
      for (let i = 0; i < 1500 && !existsSync(join(tmp, dir!, "master.m3u8")); i++) await Bun.sleep(20);
      expect(existsSync(join(tmp, dir!, "master.m3u8"))).toBe(true);
      await Bun.sleep(3500);
      // Still this attempt's, still running: not handed back to be built again.
      expect(await job()).toEqual([{ state: "running", attempts: 1, error: null }]);
      expect(existsSync(join(tmp, dir!, "master.m3u8"))).toBe(true);
    } finally {
      await s3.start();
    }
    const done = await waitForVideo(first.url, id, hlsSettled, 60_000);
    expect(done.hls.status).toBe("ready");
    expect(await job()).toEqual([{ state: "done", attempts: 1, error: null }]);
    expect(await keys(`videos/${id}/hls/`)).toContain(`videos/${id}/hls/master.m3u8`);
    expect(existsSync(join(tmp, dir!))).toBe(false);
    // The one transcode directory there ever was is the one that was put.
    expect(await building()).toBeUndefined();
  }, 120_000);
});

describe("S3_DELIVERY=redirect", () => {
  test("GET and single ranges: 302 to a short-lived presigned URL that gives the same bytes", async () => {
    const c = await another("redirect");
    const target = `${c.url}/api/stream/${videoId}`;
    const whole = await bytesOf(await fetch(`${first.url}/api/stream/${videoId}`));
    const r = await fetch(target, { redirect: "manual" });
    expect(r.status).toBe(302);
    expect(r.headers.get("cache-control")).toBe("private, no-store");
    expect(r.headers.get("access-control-allow-origin")).toBe("*");
    const location = r.headers.get("location")!;
    expect(location.startsWith(`${s3.endpoint}/`)).toBe(true);
    expect(new URL(location).searchParams.get("X-Amz-Expires")).toBe("300");
    expect(await bytesOf(await fetch(location))).toEqual(whole);
    const ranged = await fetch(target, { redirect: "manual", headers: { range: "bytes=100-199" } });
    expect(ranged.status).toBe(302);
    const followed = await fetch(ranged.headers.get("location")!, { headers: { range: "bytes=100-199" } });
    expect(followed.status).toBe(206);
    expect(await bytesOf(followed)).toEqual(whole.subarray(100, 200));
    const download = await fetch(`${target}?download=1`, { redirect: "manual" });
    expect(new URL(download.headers.get("location")!).searchParams.get("response-content-disposition")).toStartWith("attachment");
    // Several ranges that merge into one are proxied: the bucket would answer the header itself
    // (S3 serves no multi-range; s3rver sent the whole object from the first offset).
    for (const [range, start, end] of [["bytes=0-1,5-9", 0, 9], ["bytes=100-199,150-299", 100, 299]] as const) {
      const merged = await fetch(target, { redirect: "manual", headers: { range } });
      expect({ range, status: merged.status, contentRange: merged.headers.get("content-range") }).toEqual({ range, status: 206, contentRange: `bytes ${start}-${end}/${whole.length}` });
      expect(await bytesOf(merged)).toEqual(whole.subarray(start, end + 1));
    }
  });

  test("HLS files and pictures are still proxied, and the pages let a <video> follow the stream's redirect", async () => {
    const c = others.find((s) => s.config.storage?.delivery === "redirect") ?? (await another("redirect"));
    const b = others.find((s) => s.config.storage?.delivery !== "redirect")!;
    const master = await fetch(`${c.url}/api/hls/${videoId}/master.m3u8`, { redirect: "manual" });
    expect(master.status).toBe(200);
    const text = await master.text();
    expect(text).toBe(await (await fetch(`${b.url}/api/hls/${videoId}/master.m3u8`)).text());
    const variant = text.split("\n").find((l) => l.endsWith(".m3u8"))!;
    const media = await fetch(`${c.url}/api/hls/${videoId}/${variant}`, { redirect: "manual" });
    expect(media.status).toBe(200);
    const segment = (await media.text()).split("\n").find((l) => l.endsWith(".m4s"))!;
    const seg = await fetch(`${c.url}/api/hls/${videoId}/${variant.split("/")[0]}/${segment}`, { redirect: "manual" });
    expect(seg.status).toBe(200);
    await seg.arrayBuffer();
    for (const picture of ["thumbnail.jpg", "thumbnail.jpg?t=1&width=160"]) {
      const r = await fetch(`${c.url}/api/videos/${videoId}/${picture}`, { redirect: "manual" });
      expect({ picture, status: r.status, type: r.headers.get("content-type") }).toEqual({ picture, status: 200, type: "image/jpeg" });
      await r.arrayBuffer();
    }
    // The watch page's <video> (the original file, without HLS) is redirected to the bucket.
    const page = await fetch(`${c.url}/watch/${videoId}`);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain(`media-src 'self' blob: ${new URL(s3.endpoint).origin};`);
    expect((await fetch(`${b.url}/watch/${videoId}`)).headers.get("content-security-policy")).toContain("media-src 'self' blob:;");
  });

  test("Spool still answers HEAD, 304, 412, 416 and multipart itself", async () => {
    const c = others.find((s) => s.config.storage?.delivery === "redirect") ?? (await another("redirect"));
    const target = `${c.url}/api/stream/${videoId}`;
    const row = (await first.ctx.library.get(videoId))!;
    const etag = `"${row.sha256!.slice(0, 32)}"`;
    const head = await fetch(target, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("etag")).toBe(etag);
    expect(head.headers.get("content-length")).toBe(String(row.size));
    expect((await fetch(target, { redirect: "manual", headers: { "if-none-match": etag } })).status).toBe(304);
    expect((await fetch(target, { redirect: "manual", headers: { "if-match": '"other"' } })).status).toBe(412);
    const past = await fetch(target, { redirect: "manual", headers: { range: `bytes=${row.size}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe(`bytes */${row.size}`);
    const multi = await fetch(target, { redirect: "manual", headers: { range: "bytes=0-9,100-109" } });
    expect(multi.status).toBe(206);
    expect(multi.headers.get("content-type")).toStartWith("multipart/byteranges; boundary=");
    // Ranges in a form some S3-compatible servers answer otherwise (a suffix, spaces): answered
    // here, not passed on to the bucket (s3rver gave bytes 0-500 for `bytes=-500`).
    const stored = new Uint8Array(await (await fetch(`${first.url}/api/stream/${videoId}`)).arrayBuffer());
    for (const [range, start, end] of [["bytes=-500", row.size - 500, row.size - 1], ["bytes= 10-19", 10, 19]] as const) {
      const answer = await fetch(target, { redirect: "manual", headers: { range } });
      expect({ range, status: answer.status, contentRange: answer.headers.get("content-range") }).toEqual({ range, status: 206, contentRange: `bytes ${start}-${end}/${row.size}` });
      expect(new Uint8Array(await answer.arrayBuffer())).toEqual(stored.subarray(start, end + 1));
    }
  });
});

describe("the bucket going down", () => {
  test("503 JSON while it is down, /ready 503; both recover when it is back", async () => {
    const d = await another();
    const target = `${d.url}/api/stream/${videoId}`;
    await s3.stop();
    try {
      const started = Date.now();
      const r = await fetch(target, { headers: { range: "bytes=0-1" } });
      expect(r.status).toBe(503);
      expect(r.headers.get("content-type")).toBe("application/json; charset=utf-8");
      expect(r.headers.get("retry-after")).toBe("5");
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe("storage_unavailable");
      expect(Date.now() - started).toBeLessThan(5000);
      // Spool answers what it needs no bytes for.
      expect((await fetch(target, { method: "HEAD" })).status).toBe(200);
      const ready = await fetch(`${d.url}/ready`);
      expect(ready.status).toBe(503);
      const hls = await fetch(`${d.url}/api/hls/${videoId}/master.m3u8`);
      expect(hls.status).toBe(503);
    } finally {
      await s3.start();
    }
    const back = await fetch(target, { headers: { range: "bytes=0-1" } });
    expect(back.status).toBe(206);
    expect((await fetch(`${d.url}/ready`)).status).toBe(200);
  }, 30_000);

  test("a stream cut mid-way by the bucket is a broken connection, never a complete-looking body", async () => {
    // A 12 MiB object (six blocks), registered through the library like any ready video.
    // The worker is stopped meanwhile: its sweep would take a `processing` row without a job
    // for a lost ingest, and run one on these (non-media) bytes.
    await stopWorker(first.ctx);
    const row = await first.ctx.library.begin({ originalFilename: "big.mp4", title: "big" });
    const media = { contentType: "video/mp4", container: "mp4", duration: 10, width: 640, height: 360, videoCodec: "h264", audioCodec: null, bitrate: 1 };
    const big = new Uint8Array(12 * MiB);
    crypto.getRandomValues(big.subarray(0, 65536));
    for (let i = 65536; i < big.length; i += 65536) big.copyWithin(i, 0, 65536);
    big[big.length - 1] = 7;
    const local = first.ctx.library.storage.sourcePath(row.id, "mp4");
    await Bun.write(local, big);
    const sha256 = new Bun.CryptoHasher("sha256").update(big).digest("hex");
    await first.ctx.library.markProcessing(row.id, media);
    await first.ctx.library.markReady(row.id, { storagePath: first.ctx.library.storage.relative(local), size: big.length, sha256 });
    await startWorker(first.ctx);
    const stored = await first.ctx.library.get(row.id);
    expect(`${stored?.status} ${stored?.error ?? ""}`).toBe("ready ");
    const d = await another();
    const { port } = new URL(d.url);
    // A raw socket reads the first bytes, then the bucket dies while the rest is pending.
    const received = await new Promise<{ bytes: number; head: string; ended: "end" | "error" | "close" }>((resolve) => {
      const socket = connect(Number(port), "127.0.0.1");
      let bytes = 0;
      let head = "";
      let stopped = false;
      socket.on("connect", () => socket.write(`GET /api/stream/${row.id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
      socket.on("data", (chunk: Buffer) => {
        if (!head.includes("\r\n\r\n")) head += chunk.toString("latin1", 0, Math.min(chunk.length, 4096));
        bytes += chunk.length;
        if (!stopped) {
          stopped = true;
          socket.pause();
          void s3.stop().then(() => socket.resume());
        }
      });
      socket.on("error", () => resolve({ bytes, head, ended: "error" }));
      socket.on("end", () => resolve({ bytes, head, ended: "end" }));
    });
    await s3.start();
    // The reset can cut even the head short: a RST discards what the client had not read yet.
    // Whatever arrived never claims a length, and a head that arrived whole says chunked.
    const complete = received.head.includes("\r\n\r\n");
    const head = received.head.split("\r\n\r\n")[0]!;
    expect(head).toStartWith("HTTP/1.1 200");
    expect(head.toLowerCase()).not.toMatch(/\r\ncontent-length:/);
    if (complete) expect(head.toLowerCase()).toContain("transfer-encoding: chunked");
    // Far short of the object, and the chunked body has no terminating chunk (never "complete").
    expect(received.bytes).toBeLessThan(big.length);
    expect(received.ended === "error" || received.ended === "end").toBe(true);
    const again = await fetch(`${d.url}/api/stream/${row.id}`);
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(Buffer.from(big))).toBe(true);
  }, 60_000);
});

describe("the bucket going down under a clip", () => {
  test("a clip whose moov is cached but whose media blocks are not: 503 JSON, never a 200 cut short", async () => {
    // A real 8 MiB faststart MP4 (four 2 MiB blocks), registered like the 12 MiB object above
    // (no ingest: its HLS build would only cost time here). Its 4-5 s lie blocks after the moov.
    await stopWorker(first.ctx);
    const source = await makeLargeVideo(8);
    const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
    const row = await first.ctx.library.begin({ originalFilename: "large.mp4", title: "large" });
    const local = first.ctx.library.storage.sourcePath(row.id, "mp4");
    await Bun.write(local, bytes);
    const media = { contentType: "video/mp4", container: "mp4", duration: 6, width: 640, height: 360, videoCodec: "h264", audioCodec: null, bitrate: 1 };
    await first.ctx.library.markProcessing(row.id, media);
    await first.ctx.library.markReady(row.id, { storagePath: first.ctx.library.storage.relative(local), size: bytes.length, sha256: new Bun.CryptoHasher("sha256").update(bytes).digest("hex") });
    await startWorker(first.ctx);
    const file = await readMovieFile(source, bytes.length);
    const layout = writeClip(file.movie, planClip(file.movie, 4, 5), file.ftyp, bytes.length);
    const expected = Buffer.concat([layout.header, bytes.subarray(layout.dataStart, layout.dataEnd)]);
    expect(layout.dataStart).toBeGreaterThan(4 * MiB);

    const d = await another();
    const url = `${d.url}/api/stream/${row.id}?start=4&end=5`;
    // The clip's header only: its moov is read (block 0) and the clip cached; no media block.
    const headOnly = await fetch(url, { headers: { range: "bytes=0-99" } });
    expect(headOnly.status).toBe(206);
    expect(await bytesOf(headOnly)).toEqual(expected.subarray(0, 100));
    await s3.stop();
    try {
      for (const range of [undefined, "bytes=0-", `bytes=${layout.header.length + 10}-${layout.header.length + 20}`, "bytes=0-9,-10"]) {
        const r = await fetch(url, range ? { headers: { range } } : {});
        expect(`${range} ${r.status} ${r.headers.get("content-type")} ${r.headers.get("retry-after")}`).toBe(`${range} 503 application/json; charset=utf-8 5`);
        expect(((await r.json()) as { error: { code: string } }).error.code).toBe("storage_unavailable");
      }
      // What needs no media bytes is still answered.
      expect((await fetch(url, { headers: { range: "bytes=0-99" } })).status).toBe(206);
      expect((await fetch(url, { method: "HEAD" })).headers.get("content-length")).toBe(String(expected.length));
    } finally {
      await s3.start();
    }
    const back = await fetch(url);
    expect(back.status).toBe(200);
    expect(await bytesOf(back)).toEqual(expected);
  }, 60_000);
});

describe("the block cache under pressure", () => {
  test("CACHE_MAX_BYTES 8 MiB, concurrent random ranges of two 12 MiB videos: every answer exact (never a 404), the directory within the bound", async () => {
    // Two objects registered like the 12 MiB one above (no ingest), random bytes.
    await stopWorker(first.ctx);
    const videos: { id: string; bytes: Uint8Array }[] = [];
    for (const name of ["p1", "p2"]) {
      const row = await first.ctx.library.begin({ originalFilename: `${name}.mp4`, title: name });
      const media = { contentType: "video/mp4", container: "mp4", duration: 10, width: 640, height: 360, videoCodec: "h264", audioCodec: null, bitrate: 1 };
      const bytes = new Uint8Array(12 * MiB - 12345);
      for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, Math.min(bytes.length, i + 65536)));
      const local = first.ctx.library.storage.sourcePath(row.id, "mp4");
      await Bun.write(local, bytes);
      await first.ctx.library.markProcessing(row.id, media);
      await first.ctx.library.markReady(row.id, { storagePath: first.ctx.library.storage.relative(local), size: bytes.length, sha256: new Bun.CryptoHasher("sha256").update(bytes).digest("hex") });
      videos.push({ id: row.id, bytes });
    }
    await startWorker(first.ctx);
    const bound = 8 * MiB;
    const dataDir = join(await mkdtemp(join(tmpdir(), "spool-s3-pressure-")), "data");
    const cacheDir = join(dataDir, "cache");
    const e = await startTestSpool({
      dataDir,
      databaseUrl: first.config.databaseUrl,
      storage: { ...storage, cacheDir, cacheMaxBytes: bound },
      seedDemo: false,
      transcode: { inServer: false },
    });
    others.push(e);
    // Every file under CACHE_DIR (blocks and temporary files), sampled while the clients run.
    let peak = 0;
    let running = true;
    const sampler = (async () => {
      while (running) {
        peak = Math.max(peak, await filesBytes(cacheDir));
        await Bun.sleep(5);
      }
    })();
    let seed = 12345;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const failures: string[] = [];
    const client = async () => {
      for (let i = 0; i < 15; i++) {
        const video = videos[random(videos.length)]!;
        const size = video.bytes.length;
        const start = random(size);
        // Mostly single-block answers (sendfile of a block file), some over several blocks.
        const end = Math.min(size - 1, start + random(i % 5 === 4 ? 5_000_000 : 1_500_000));
        const r = await fetch(`${e.url}/api/stream/${video.id}`, { headers: { range: `bytes=${start}-${end}` } });
        const body = new Uint8Array(await r.arrayBuffer());
        if (r.status !== 206) failures.push(`${start}-${end}: ${r.status} ${new TextDecoder().decode(body.subarray(0, 200))}`);
        else if (!Buffer.from(body).equals(Buffer.from(video.bytes.subarray(start, end + 1)))) failures.push(`${start}-${end}: wrong bytes`);
      }
    };
    await Promise.all(Array.from({ length: 16 }, client));
    running = false;
    await sampler;
    expect(failures).toEqual([]);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(bound);
    expect(await filesBytes(cacheDir)).toBeLessThanOrEqual(bound);
  }, 90_000);
});

describe("removal", () => {
  test("DELETE removes the objects; a video whose objects are already gone deletes too", async () => {
    const row = await first.ctx.ingest.ingestPath(FIXTURE, { title: "doomed", originalFilename: "doomed.mp4" });
    expect((await keys(`videos/${row.id}/`)).length).toBeGreaterThan(0);
    expect((await fetch(`${first.url}/api/videos/${row.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    expect(await keys(`videos/${row.id}/`)).toEqual([]);
    const gone = await first.ctx.ingest.ingestPath(FIXTURE, { title: "gone", originalFilename: "gone.mp4" });
    await first.ctx.store.deletePrefix(`videos/${gone.id}/`);
    expect((await fetch(`${first.url}/api/videos/${gone.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
  }, 30_000);

  test("the orphan sweep deletes objects of videos without a row, or with a failed one, once past the grace period", async () => {
    const orphan = "AAAAAAAAAAAAAAAAAAAAAA";
    const scratch = join(await mkdtemp(join(tmpdir(), "spool-orphan-")), "x.bin");
    await writeFile(scratch, "orphan");
    await first.ctx.store.putFile(`videos/${orphan}/source.mp4`, scratch);
    // A failed video holds no files; objects left under it (the bucket was down when it failed) are orphans.
    const failed = await first.ctx.ingest.ingestPath(FIXTURE, { title: "failed", originalFilename: "failed.mp4" });
    await first.ctx.library.markFailed(failed.id, "Processing failed: test");
    expect(await keys(`videos/${failed.id}/`)).toEqual([]);
    await first.ctx.store.putFile(`videos/${failed.id}/source.mp4`, scratch);
    const known = (id: string) => first.ctx.library.ownsFiles(id);
    expect(await new OrphanSweeper(bucketOrphans(first.ctx.store), known, { graceMs: 3_600_000 }).sweep()).toEqual([]);
    expect((await new OrphanSweeper(bucketOrphans(first.ctx.store), known, { graceMs: 0 }).sweep(Date.now() + 1000)).sort()).toEqual([orphan, failed.id].sort());
    expect(await keys(`videos/${orphan}/`)).toEqual([]);
    expect(await keys(`videos/${failed.id}/`)).toEqual([]);
    expect((await keys(`videos/${videoId}/`)).length).toBeGreaterThan(0);
  });

  test("a started sweeper makes its first pass soon after start, not only after its interval", async () => {
    const orphan = "BBBBBBBBBBBBBBBBBBBBBB";
    const scratch = join(await mkdtemp(join(tmpdir(), "spool-orphan-")), "x.bin");
    await writeFile(scratch, "orphan");
    await first.ctx.store.putFile(`videos/${orphan}/source.mp4`, scratch);
    // A primary restarted more often than the interval (an hour by default) still sweeps.
    const sweeper = new OrphanSweeper(bucketOrphans(first.ctx.store), (id) => first.ctx.library.ownsFiles(id), { graceMs: -60_000, intervalMs: 3_600_000, firstMs: 200 });
    sweeper.start();
    try {
      for (let i = 0; i < 50 && (await keys(`videos/${orphan}/`)).length > 0; i++) await Bun.sleep(100);
      expect(await keys(`videos/${orphan}/`)).toEqual([]);
    } finally {
      sweeper.stop();
    }
  });
});
