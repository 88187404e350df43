/**
 * GET /api/videos/:id/thumbnail.jpg: the poster made at ingest, frames made on request and
 * cached on disk, all through the file engine (validators, HEAD, ranges).
 */
import { afterAll, beforeAll, describe, expect, spyOn, test } from "bun:test";
import { existsSync } from "node:fs";
import { mkdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expectError, filesUnder, uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { jpegSize, makeAudio, makeVideo } from "../helpers/media.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";

let spool: TestSpool;
let video: VideoJson;
beforeAll(async () => {
  spool = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"] });
  video = await ingest(await makeVideo({ seconds: 2, width: 320, height: 240 }));
});
afterAll(() => spool?.stop());

async function ingest(path: string): Promise<VideoJson> {
  const response = await uploadMultipart(spool.url, path);
  expect(response.status).toBe(201);
  return waitUntilSettled(spool.url, ((await response.json()) as VideoJson).id);
}

const thumb = (id: string, query = "", init?: RequestInit) => fetch(`${spool.url}/api/videos/${id}/thumbnail.jpg${query}`, init);
const bytesOf = async (response: Response) => new Uint8Array(await response.arrayBuffer());
const dir = (id: string) => join(spool.dataDir, "videos", id);

describe("the poster", () => {
  test("is made at ingest and served as the thumbnail without parameters", async () => {
    expect(video.thumbnailUrl).toBe(`/api/videos/${video.id}/thumbnail.jpg`);
    expect(filesUnder(dir(video.id))).toContain("poster.jpg");
    const response = await fetch(spool.url + video.thumbnailUrl);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("image/jpeg");
    expect(response.headers.get("cache-control")).toBe("public, max-age=86400");
    expect(response.headers.get("accept-ranges")).toBe("bytes");
    const bytes = await bytesOf(response);
    expect(jpegSize(bytes)).toEqual({ width: 320, height: 240 });
    expect(bytes.length).toBe((await stat(join(dir(video.id), "poster.jpg"))).size);
  });

  test("of a wide video is at most 1280 pixels wide", async () => {
    const wide = await ingest(await makeVideo({ seconds: 1, width: 1600, height: 900, audio: false }));
    expect(jpegSize(await bytesOf(await thumb(wide.id)))).toEqual({ width: 1280, height: 720 });
  });

  test("of a portrait (rotated) video is upright", async () => {
    const rotated = await ingest(await makeVideo({ seconds: 1, width: 320, height: 240, rotate: 90 }));
    expect([rotated.width, rotated.height]).toEqual([240, 320]);
    expect(jpegSize(await bytesOf(await thumb(rotated.id)))).toEqual({ width: 240, height: 320 });
    // 120 snaps up to 160, the next width of the ladder.
    expect(jpegSize(await bytesOf(await thumb(rotated.id, "?width=120")))).toEqual({ width: 160, height: 214 });
  });
});

describe("frames on request", () => {
  test("`width` scales keeping the aspect ratio; `t` picks the time; both snap to the grid and are cached on disk", async () => {
    const small = await thumb(video.id, "?width=160");
    expect(small.status).toBe(200);
    expect(jpegSize(await bytesOf(small))).toEqual({ width: 160, height: 120 });

    // t to the nearest 0.5 s, width up to the next rung (200 → 240).
    const early = await bytesOf(await thumb(video.id, "?t=0.1&width=200"));
    const late = await bytesOf(await thumb(video.id, "?t=1.4&width=200"));
    expect(jpegSize(early)).toEqual({ width: 240, height: 180 });
    expect(jpegSize(late)).toEqual({ width: 240, height: 180 });
    expect(Buffer.from(early).equals(Buffer.from(late))).toBe(false); // the test pattern moves

    const full = await bytesOf(await thumb(video.id, "?t=1"));
    expect(jpegSize(full)).toEqual({ width: 320, height: 240 });
    // A rung at least as wide as the video is the video's own width: the same file.
    expect(Buffer.from(await bytesOf(await thumb(video.id, "?t=1&width=300"))).equals(Buffer.from(full))).toBe(true);

    // Only `width`: the poster's time (0.2 s into this 2 s video), not snapped.
    expect(filesUnder(join(dir(video.id), "thumbs"))).toEqual(expect.arrayContaining(["t0-w240.jpg", "t1500-w240.jpg", "t1000-w0.jpg", "t200-w160.jpg"]));
    expect(filesUnder(join(dir(video.id), "thumbs"))).not.toContain("t1000-w320.jpg");
  });

  test("a cached frame is not made again: same file, same validators", async () => {
    const first = await thumb(video.id, "?t=0.5&width=96");
    const path = join(dir(video.id), "thumbs", "t500-w160.jpg");
    const made = (await stat(path)).mtimeMs;
    await Bun.sleep(20);
    const second = await thumb(video.id, "?t=0.500&width=96");
    expect(second.headers.get("etag")).toBe(first.headers.get("etag")!);
    expect((await stat(path)).mtimeMs).toBe(made);
    expect(Buffer.from(await bytesOf(second)).equals(Buffer.from(await bytesOf(first)))).toBe(true);
  });

  test("concurrent requests for a new frame share one ffmpeg run and all succeed", async () => {
    const runs = spyOn(spool.ctx.media!, "extractFrame");
    const responses = await Promise.all(Array.from({ length: 6 }, () => thumb(video.id, "?t=1.25&width=64")));
    expect(runs).toHaveBeenCalledTimes(1);
    runs.mockRestore();
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    const bodies = await Promise.all(responses.map(bytesOf));
    for (const body of bodies) expect(Buffer.from(body).equals(Buffer.from(bodies[0]!))).toBe(true);
  });

  test("t at the very end still gives a frame (the last one)", async () => {
    const response = await thumb(video.id, `?t=${video.duration}&width=80`);
    expect(response.status).toBe(200);
    expect(jpegSize(await bytesOf(response))).toEqual({ width: 80, height: 60 });
  });
});

describe("parts left by a killed process", () => {
  test("are removed once no frame run can still be writing them (older than 10 minutes), when the poster or a frame of that directory is next made; fresh ones stay", async () => {
    const videoDir = dir(video.id);
    const thumbs = join(videoDir, "thumbs");
    await mkdir(thumbs, { recursive: true });
    const old = new Date(Date.now() - 11 * 60 * 1000);
    const planted = {
      stalePoster: join(videoDir, "poster.jpg.deadbeef.part.jpg"),
      freshPoster: join(videoDir, "poster.jpg.cafebabe.part.jpg"),
      staleFrame: join(thumbs, "t1000_w160.jpg.deadbeef.part.jpg"),
      freshFrame: join(thumbs, "t1000_w160.jpg.cafebabe.part.jpg"),
    };
    for (const [name, path] of Object.entries(planted)) {
      await writeFile(path, "half a jpeg");
      if (name.startsWith("stale")) await utimes(path, old, old);
    }
    // A frame not yet made: its directory is tidied first.
    expect((await thumb(video.id, "?t=1.5&width=320")).status).toBe(200);
    // The poster is made again as a processing job would make it.
    await spool.ctx.thumbnails.makePoster(video.id, join(videoDir, "source.mp4"), { demuxer: "mov", duration: video.duration, width: video.width });
    const left = Object.fromEntries(Object.entries(planted).map(([name, path]) => [name, existsSync(path)]));
    expect(left).toEqual({ stalePoster: false, freshPoster: true, staleFrame: false, freshFrame: true });
    await Promise.all(Object.values(planted).map((path) => rm(path, { force: true })));
  });
});

describe("served by the file engine", () => {
  test("HEAD, ranges, 304 and 412", async () => {
    const get = await thumb(video.id, "?width=160");
    const body = await bytesOf(get);
    const etag = get.headers.get("etag")!;
    expect(etag).toMatch(/^"[0-9a-f]+-[0-9a-f]+"$/);
    expect(get.headers.get("last-modified")).toEqual(expect.any(String));

    const head = await thumb(video.id, "?width=160", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(body.length));
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const range = await thumb(video.id, "?width=160", { headers: { range: "bytes=0-9" } });
    expect(range.status).toBe(206);
    expect(range.headers.get("content-range")).toBe(`bytes 0-9/${body.length}`);
    expect(Buffer.from(await bytesOf(range)).equals(Buffer.from(body.subarray(0, 10)))).toBe(true);

    expect((await thumb(video.id, "?width=160", { headers: { "if-none-match": etag } })).status).toBe(304);
    await expectError(await thumb(video.id, "?width=160", { headers: { "if-match": '"other"' } }), 412, "precondition_failed");
    await expectError(await thumb(video.id, "?width=160", { headers: { range: `bytes=${body.length}-` } }), 416, "range_not_satisfiable");
  });
});

describe("errors", () => {
  test.each([
    ["?t=-1", "query t: must be a number of seconds >= 0"],
    ["?t=abc", "query t: must be a number of seconds >= 0"],
    ["?t=2.5", "query t: must be at most the video's duration (2 s)"],
    ["?width=8", "query width: must be an integer from 16 to 3840"],
    ["?width=5000", "query width: must be an integer from 16 to 3840"],
    ["?width=12.5", "query width: must be an integer from 16 to 3840"],
    ["?width=wide", "query width: must be an integer from 16 to 3840"],
  ])("%s: 400 %j", async (query, message) => {
    const body = await expectError(await thumb(video.id, query), 400, "bad_request");
    expect(body.error.message).toBe(message);
  });

  test("malformed id 400, unknown video 404", async () => {
    // A malformed id is no public video's, so only the key holder gets as far as the 400.
    await expectError(await thumb("bad!id", "", { headers: AUTH }), 400, "bad_request");
    await expectError(await thumb("AAAAAAAAAAAAAAAAAAAAAA"), 404, "not_found");
  });

  test("a video that is not ready: 409", async () => {
    const row = await spool.ctx.library.begin({ originalFilename: "pending.mp4" });
    const body = await expectError(await thumb(row.id), 409, "not_ready");
    expect(body.error.message).toBe(`Video ${row.id} is uploading; thumbnails exist once it is ready`);
    await spool.ctx.library.remove(row.id);
  });

  test("a frame asked for a video deleted in the meantime: 404, and its directory stays gone", async () => {
    const doomed = await ingest(await makeVideo({ seconds: 1, width: 160, height: 120 }));
    const row = (await spool.ctx.library.get(doomed.id))!;
    await spool.ctx.library.remove(doomed.id);
    // The request looked the row up just before the delete, and reaches the cache just after.
    const error = await spool.ctx.thumbnails.pathFor(row, { t: 0.5 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 404, code: "not_found" });
    expect(await stat(dir(doomed.id)).catch(() => null)).toBeNull();
  });

  test("audio only: 404, there is no picture", async () => {
    const audio = await ingest(await makeAudio({ format: "m4a" }));
    expect(audio.thumbnailUrl).toBeNull();
    await expectError(await thumb(audio.id), 404, "no_video_stream");
    await expectError(await thumb(audio.id, "?t=1"), 404, "no_video_stream");
  });
});

describe("the grid", () => {
  test("two requests that snap to the same frame share one file, one ffmpeg run, the bytes and the ETag", async () => {
    const thumbs = join(dir(video.id), "thumbs");
    const before = filesUnder(thumbs);
    const runs = spyOn(spool.ctx.media!, "extractFrame");
    // 0.9 s and 1.1 s both snap to 1.0 s; widths 100 and 150 both to 160.
    const [a, b] = await Promise.all([thumb(video.id, "?t=0.9&width=100"), thumb(video.id, "?t=1.1&width=150")]);
    expect(runs).toHaveBeenCalledTimes(1);
    runs.mockRestore();
    expect([a!.status, b!.status]).toEqual([200, 200]);
    expect(a!.headers.get("etag")).toBe(b!.headers.get("etag")!);
    const [bytesA, bytesB] = [await bytesOf(a!), await bytesOf(b!)];
    expect(Buffer.from(bytesA).equals(Buffer.from(bytesB))).toBe(true);
    expect(jpegSize(bytesA)).toEqual({ width: 160, height: 120 });
    expect(filesUnder(thumbs).filter((n) => !before.includes(n))).toEqual(["t1000-w160.jpg"]);
  });
});

/** ffmpeg processes this test process started (the server runs in it): `pgrep -P <pid> -x ffmpeg`. */
function ffmpegChildren(): number {
  const out = Bun.spawnSync(["pgrep", "-P", String(process.pid), "-x", "ffmpeg"], { stdout: "pipe", stderr: "ignore" }).stdout.toString();
  return out.split("\n").filter(Boolean).length;
}

/** Polls `condition` every 5 ms until it holds; false after `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) return false;
    await Bun.sleep(5);
  }
  return true;
}

describe("bounded work (THUMBNAIL_CONCURRENCY=1, THUMBNAIL_QUEUE=2)", () => {
  const CONCURRENCY = 1;
  const QUEUE = 2;
  let busy: TestSpool;
  let long: VideoJson;
  /** What one of the slowest frames costs on this machine right now (ms). */
  let slowRunMs = 0;
  const url = (t: number, width: number) => `${busy.url}/api/videos/${long.id}/thumbnail.jpg?t=${t}&width=${width}`;
  const thumbsDir = () => join(busy.dataDir, "videos", long.id, "thumbs");
  const fileOf = (t: number, width: number) => `t${t * 1000}-w${width}.jpg`;
  const load = () => busy.ctx.thumbnails.load;

  // Frames late in one 60 s GOP: ffmpeg decodes from the only keyframe, so each run takes a while.
  let next = 0;
  const slowFrames = [55, 55.5, 56, 56.5, 57, 57.5, 58, 58.5, 59, 59.5].flatMap((t) => [80, 160, 240, 320, 480].map((width) => ({ t, width })));
  const slowFrame = () => slowFrames[next++]!;

  beforeAll(async () => {
    // Behind a "proxy": X-Forwarded-For names the client, so tests can be many clients.
    busy = await startTestSpool({ seedDemo: false, jobKinds: ["ingest"], thumbnailConcurrency: CONCURRENCY, thumbnailQueue: QUEUE, trustProxy: true });
    const path = await makeVideo({ seconds: 60, width: 640, height: 360, audio: false, keyframeInterval: 1500 });
    const response = await uploadMultipart(busy.url, path);
    expect(response.status).toBe(201);
    long = await waitUntilSettled(busy.url, ((await response.json()) as VideoJson).id);
    expect(long.status).toBe("ready");
    const { t, width } = slowFrame();
    const began = performance.now();
    expect((await fetch(url(t, width))).status).toBe(200);
    slowRunMs = performance.now() - began;
  }, 60_000);
  afterAll(() => busy?.stop());

  test("a flood of distinct frames: the rest get 503 at once, ffmpeg runs stay within the limit, and a new frame waits only for the bounded queue", async () => {
    let maxChildren = 0;
    let maxRunning = 0;
    let maxWaiting = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        maxChildren = Math.max(maxChildren, ffmpegChildren());
        maxRunning = Math.max(maxRunning, load().running);
        maxWaiting = Math.max(maxWaiting, load().waiting);
        await Bun.sleep(10);
      }
    })();

    // 60 distinct frames at once, each late in the GOP (30-59.5 s), from 60 clients.
    const began = performance.now();
    const flood = Array.from({ length: 60 }, async (_, i) => {
      const response = await fetch(url(30 + i * 0.5, 160), { headers: { "x-forwarded-for": `10.1.${i}.1` } });
      const ms = performance.now() - began;
      const body = response.status === 503 ? await response.json() : await response.arrayBuffer();
      return { status: response.status, retryAfter: response.headers.get("retry-after"), type: response.headers.get("content-type"), body, ms };
    });
    // A new frame asked once every 503 of the flood is back, until it is served.
    const refused = Promise.all(flood.map((p) => p.then((r) => (r.status === 503 ? r : undefined))));
    const fresh = (async () => {
      await refused;
      const { t, width } = slowFrame();
      for (;;) {
        const response = await fetch(url(t, width));
        if (response.status === 200) return performance.now() - began;
        expect(response.status).toBe(503);
        await Bun.sleep(50);
      }
    })();
    const results = await Promise.all(flood);
    const freshMs = await fresh;
    sampling = false;
    await sampler;

    const ok = results.filter((r) => r.status === 200);
    const busyAnswers = results.filter((r) => r.status === 503);
    expect(ok.length + busyAnswers.length).toBe(60);
    expect(ok.length).toBeGreaterThanOrEqual(CONCURRENCY + QUEUE);
    expect(busyAnswers.length).toBeGreaterThanOrEqual(30);
    for (const r of busyAnswers) {
      expect(r.type).toStartWith("application/json");
      expect(r.body).toMatchObject({ error: { code: "thumbnails_busy", message: expect.any(String) } });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number.isInteger(Number(r.retryAfter))).toBe(true);
    }
    // Refused at once: every 503 came back before the last admitted frame was made.
    expect(Math.max(...busyAnswers.map((r) => r.ms))).toBeLessThan(Math.max(...ok.map((r) => r.ms)));
    // Never more ffmpeg runs than the limit, never more jobs waiting than the queue.
    expect(maxChildren).toBeLessThanOrEqual(CONCURRENCY);
    expect(maxRunning).toBeLessThanOrEqual(CONCURRENCY);
    expect(maxWaiting).toBeLessThanOrEqual(QUEUE);
    // The new frame waited for at most the runs the queue holds (plus its own), not for 60:
    // generous slack for a shared machine, still far below what an unbounded queue costs.
    const bound = Math.ceil((CONCURRENCY + QUEUE + 1) / CONCURRENCY) * slowRunMs * 3 + 2000;
    console.log(`[thumbnails flood] one slow run ${Math.round(slowRunMs)} ms; ${ok.length} admitted, ${busyAnswers.length} refused; a new frame served after ${Math.round(freshMs)} ms (bound ${Math.round(bound)} ms)`);
    expect(freshMs).toBeLessThan(bound);
    expect(freshMs).toBeLessThan((60 * slowRunMs) / 3);
    expect(await until(() => ffmpegChildren() === 0 && load().running === 0 && load().waiting === 0)).toBe(true);
  }, 120_000);

  test("one client gets at most half of the places (429 beyond), so another client's frame is still made", async () => {
    const share = Math.ceil((CONCURRENCY + QUEUE) / 2);
    const one = { "x-forwarded-for": "10.2.0.1" };
    // Frames no other test asks for (late in the GOP, so each run takes a while).
    const frames = [40, 40.5, 41, 41.5, 42, 42.5].map((t) => ({ t, width: 320 }));
    let refused = 0;
    const answers = frames.map(async ({ t, width }) => {
      const response = await fetch(url(t, width), { headers: one });
      if (response.status !== 200) refused++;
      return { status: response.status, retryAfter: response.headers.get("retry-after"), body: response.status === 200 ? null : await response.json() };
    });
    // Its share admitted and the rest refused (all of its requests in, so none can meet the
    // other client's below in a full queue); then another client's new frame still finds a place.
    expect(await until(() => load().running + load().waiting === share && refused === frames.length - share)).toBe(true);
    const other = await fetch(url(43, 320), { headers: { "x-forwarded-for": "10.2.0.2" } });
    expect(other.status).toBe(200);
    expect(other.headers.get("content-type")).toBe("image/jpeg");
    const results = await Promise.all(answers);
    expect(results.filter((r) => r.status === 200)).toHaveLength(share);
    const limited = results.filter((r) => r.status === 429);
    expect(limited).toHaveLength(frames.length - share);
    for (const r of limited) {
      expect(r.body).toMatchObject({ error: { code: "thumbnails_rate_limited" } });
      expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
    }
    // Once its frames are made, the client may ask for more.
    expect((await fetch(url(43.5, 320), { headers: one })).status).toBe(200);
    expect(await until(() => load().running === 0 && load().waiting === 0)).toBe(true);
  }, 120_000);

  test("a request aborted while its ffmpeg runs: the run is killed and no file is made", async () => {
    expect(await until(() => load().running === 0 && load().waiting === 0)).toBe(true);
    const { t, width } = slowFrame();
    const controller = new AbortController();
    const request = fetch(url(t, width), { signal: controller.signal }).catch((error: Error) => error.name);
    expect(await until(() => load().running === 1 && ffmpegChildren() === 1)).toBe(true);
    controller.abort();
    expect(await request).toBe("AbortError");
    // Killed, not left to finish: gone well before a run would end.
    const abortedAt = performance.now();
    expect(await until(() => ffmpegChildren() === 0 && load().running === 0)).toBe(true);
    const goneAfterMs = performance.now() - abortedAt;
    await Bun.sleep(slowRunMs * 1.5);
    expect(filesUnder(thumbsDir())).not.toContain(fileOf(t, width));
    expect(filesUnder(thumbsDir()).filter((n) => n.includes(".part"))).toEqual([]);
    expect(goneAfterMs).toBeLessThan(Math.max(slowRunMs, 500));

    // Asked again, the frame is made by a new job.
    const again = await fetch(url(t, width));
    expect(again.status).toBe(200);
    expect(filesUnder(thumbsDir())).toContain(fileOf(t, width));
  }, 60_000);

  test("a request aborted while queued: it leaves the queue at once and its frame is never run", async () => {
    expect(await until(() => load().running === 0 && load().waiting === 0)).toBe(true);
    const runs = spyOn(busy.ctx.media!, "extractFrame");
    try {
      const first = slowFrame();
      const queued = slowFrame();
      const running = fetch(url(first.t, first.width));
      expect(await until(() => load().running === 1)).toBe(true);
      const controller = new AbortController();
      const request = fetch(url(queued.t, queued.width), { signal: controller.signal }).catch((error: Error) => error.name);
      expect(await until(() => load().waiting === 1)).toBe(true);
      controller.abort();
      expect(await request).toBe("AbortError");
      // Out of the queue while the first frame is still being made.
      expect(await until(() => load().waiting === 0, 2000)).toBe(true);

      expect((await running).status).toBe(200);
      expect(await until(() => ffmpegChildren() === 0 && load().running === 0)).toBe(true);
      const outputs = runs.mock.calls.map((call) => String(call[1]));
      expect(outputs.some((o) => o.includes(fileOf(first.t, first.width)))).toBe(true);
      expect(outputs.some((o) => o.includes(fileOf(queued.t, queued.width)))).toBe(false);
      expect(filesUnder(thumbsDir())).toContain(fileOf(first.t, first.width));
      expect(filesUnder(thumbsDir())).not.toContain(fileOf(queued.t, queued.width));
    } finally {
      runs.mockRestore();
    }
  }, 60_000);

  test("a frame still wanted by another request is made for it when one request goes away", async () => {
    expect(await until(() => load().running === 0 && load().waiting === 0)).toBe(true);
    const runs = spyOn(busy.ctx.media!, "extractFrame");
    try {
      const { t, width } = slowFrame();
      const controller = new AbortController();
      const leaving = fetch(url(t, width), { signal: controller.signal }).catch((error: Error) => error.name);
      const staying = fetch(url(t, width));
      // Both requests wait for the one run before the first leaves.
      expect(await until(() => load().running === 1 && load().requests === 2 && ffmpegChildren() === 1)).toBe(true);
      controller.abort();
      expect(await leaving).toBe("AbortError");
      const response = await staying;
      expect(response.status).toBe(200);
      expect(jpegSize(await bytesOf(response)).width).toBe(width);
      expect(runs).toHaveBeenCalledTimes(1);
      expect(filesUnder(thumbsDir())).toContain(fileOf(t, width));
    } finally {
      runs.mockRestore();
    }
  }, 60_000);

  test("concurrency and queue come from THUMBNAIL_CONCURRENCY and THUMBNAIL_QUEUE", () => {
    expect(busy.ctx.thumbnails.limits).toEqual({ concurrency: CONCURRENCY, queue: QUEUE });
    expect(spool.ctx.thumbnails.limits).toEqual({ concurrency: 2, queue: 16 });
  });
});
