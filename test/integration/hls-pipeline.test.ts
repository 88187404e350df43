/**
 * The HLS pipeline end to end on a real Spool: upload → ready → queued job → ffmpeg ladder →
 * published playlists, segments and storyboard, served through the file engine with the right
 * types, caching and CORS; progress over Server-Sent Events. Real ffmpeg, HTTP and SQLite.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { accessFor } from "../../src/access/policy.ts";
import { jpegSize, makeAudio } from "../helpers/media.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { settledJobs } from "../helpers/jobs.ts";
import { expectError } from "../helpers/library.ts";
import { ffmpeg, makeSource, readEvents, upload, waitForVideo, hlsSettled, type VideoJson } from "./hls-support.ts";
import { createApp } from "../../src/web.ts";

let spool: TestSpool;
let video: VideoJson;
let sseEvents: { event: string; data: string }[] = [];
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "spool-hls-pipeline-"));
  spool = await startTestSpool({ seedDemo: false });
  // 12 s, 640x360 at 1.2 Mb/s: a 360p + 240p ladder, three 4 s segments each.
  const source = await makeSource({ seconds: 12, bitrate: 1_200_000 });
  const uploaded = await upload(spool.url, source, "pattern.mp4", "Pattern");
  // Follow the whole build over SSE, from the first event to HLS ready.
  const { events } = await readEvents(`${spool.url}/api/videos/${uploaded.id}/events`, (e) => e.event === "status" && JSON.parse(e.data).hls.status === "ready", 50_000);
  sseEvents = events;
  video = await waitForVideo(spool.url, uploaded.id, hlsSettled);
}, 60_000);

afterAll(async () => {
  await spool?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const hls = (path: string, init?: RequestInit) => fetch(`${spool.url}/api/hls/${video.id}/${path}`, init);

function attributes(line: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of line.slice(line.indexOf(":") + 1).matchAll(/([A-Z-]+)=("[^"]*"|[^,]*)/g)) out[m[1]!] = m[2]!.replace(/^"|"$/g, "");
  return out;
}

async function masterVariants() {
  const text = await (await hls("master.m3u8")).text();
  const lines = text.trim().split("\n");
  const variants: { attrs: Record<string, string>; uri: string }[] = [];
  lines.forEach((line, i) => {
    if (line.startsWith("#EXT-X-STREAM-INF:")) variants.push({ attrs: attributes(line), uri: lines[i + 1]! });
  });
  return { text, variants };
}

async function mediaSegments(uri: string) {
  const text = await (await hls(uri)).text();
  const dir = uri.slice(0, uri.lastIndexOf("/") + 1);
  const map = text.match(/#EXT-X-MAP:URI="([^"]+)"/)![1]!;
  const segments = [...text.matchAll(/#EXTINF:([\d.]+),\n(\S+)/g)].map((m) => ({ duration: Number(m[1]), uri: dir + m[2]! }));
  return { text, init: dir + map, segments };
}

/** The first video packet of init+segment: its time and whether it is a keyframe (ffprobe). */
async function firstVideoPacket(init: string, segment: string): Promise<{ pts: number; key: boolean }> {
  const file = join(work, `${crypto.randomUUID()}.mp4`);
  const bytes = Buffer.concat([Buffer.from(await (await hls(init)).arrayBuffer()), Buffer.from(await (await hls(segment)).arrayBuffer())]);
  await writeFile(file, bytes);
  const probe = Bun.spawnSync(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags", "-read_intervals", "%+#1", "-of", "csv=p=0", file]);
  const [pts, flags] = probe.stdout.toString().trim().split("\n")[0]!.split(",");
  return { pts: Number(pts), key: (flags ?? "").includes("K") };
}

describe("the ladder", () => {
  test("the video's JSON reports HLS ready at 100 % with its URLs", () => {
    expect(video.status).toBe("ready");
    expect(video.hls).toEqual({
      status: "ready",
      progress: 100,
      error: null,
      masterUrl: `/api/hls/${video.id}/master.m3u8`,
      storyboardUrl: `/api/hls/${video.id}/storyboard.vtt`,
    });
  });

  test("master playlist: one variant per rendition with every attribute players choose by", async () => {
    const { text, variants } = await masterVariants();
    expect(text.startsWith("#EXTM3U\n")).toBe(true);
    expect(text).toContain("#EXT-X-INDEPENDENT-SEGMENTS");
    expect(variants.map((v) => v.uri)).toEqual(["240p/index.m3u8", "360p/index.m3u8"]);
    for (const { attrs } of variants) {
      expect(Object.keys(attrs).sort()).toEqual(["AVERAGE-BANDWIDTH", "BANDWIDTH", "CODECS", "FRAME-RATE", "RESOLUTION"]);
      expect(Number(attrs.BANDWIDTH)).toBeGreaterThanOrEqual(Number(attrs["AVERAGE-BANDWIDTH"]));
      expect(attrs.CODECS).toMatch(/^avc1\.64[0-9a-f]{4},mp4a\.40\.2$/);
      expect(attrs["FRAME-RATE"]).toBe("30.000");
    }
    expect(variants.map((v) => v.attrs.RESOLUTION)).toEqual(["426x240", "640x360"]);
    // Never above the source: 360p (the source's height) is the top, below its 1.2 Mb/s.
    const top = Number(variants[1]!.attrs["AVERAGE-BANDWIDTH"]);
    expect(top).toBeLessThan(1_300_000);
    expect(top).toBeGreaterThan(Number(variants[0]!.attrs["AVERAGE-BANDWIDTH"]));
  });

  test("fMP4 segments of ~4 s whose keyframes line up across renditions", async () => {
    const { variants } = await masterVariants();
    const starts: number[][] = [];
    for (const { uri } of variants) {
      const { text, init, segments } = await mediaSegments(uri);
      expect(text).toContain("#EXT-X-PLAYLIST-TYPE:VOD");
      expect(text).toContain("#EXT-X-ENDLIST");
      expect(segments.map((s) => s.duration)).toEqual([4, 4, 4]);
      const times: number[] = [];
      for (const segment of segments) {
        const packet = await firstVideoPacket(init, segment.uri);
        expect(packet.key).toBe(true);
        times.push(packet.pts);
      }
      starts.push(times);
    }
    // Times carry the decoder delay (B-frames), the same in every rendition: compare offsets.
    expect(starts[0]!.map((t) => Math.round((t - starts[0]![0]!) * 100) / 100)).toEqual([0, 4, 8]);
    expect(starts[1]).toEqual(starts[0]!);
  });

  test("storyboard: a sprite sheet and a WebVTT mapping each second to a tile", async () => {
    const vtt = await hls("storyboard.vtt");
    expect(vtt.headers.get("content-type")).toBe("text/vtt; charset=utf-8");
    const text = await vtt.text();
    expect(text.startsWith("WEBVTT\n")).toBe(true);
    const cues = [...text.matchAll(/(\S+) --> (\S+)\n(storyboard_\d+\.jpg)#xywh=(\d+),(\d+),(\d+),(\d+)/g)];
    expect(cues).toHaveLength(12);
    expect(cues[0]!.slice(1, 8)).toEqual(["00:00:00.000", "00:00:01.000", "storyboard_1.jpg", "0", "0", "160", "90"]);
    expect(cues[11]!.slice(1, 8)).toEqual(["00:00:11.000", "00:00:12.000", "storyboard_1.jpg", "160", "90", "160", "90"]);
    const sprite = await hls("storyboard_1.jpg");
    expect(sprite.status).toBe(200);
    expect(sprite.headers.get("content-type")).toBe("image/jpeg");
    expect(jpegSize(new Uint8Array(await sprite.arrayBuffer()))).toEqual({ width: 1600, height: 900 });
  });

  test("published atomically: hls/ holds the ladder, no temporary directory is left", () => {
    const dir = join(spool.dataDir, "videos", video.id);
    const entries = readdirSync(dir);
    expect(entries.filter((e) => e.startsWith(".hls-tmp"))).toEqual([]);
    expect(readdirSync(join(dir, "hls")).sort()).toEqual(["240p", "360p", "master.m3u8", "storyboard.vtt", "storyboard_1.jpg"]);
  });

  test("the job row is done after one attempt", async () => {
    const jobs = await settledJobs(spool.ctx.jobs, video.id, "transcode");
    expect(jobs.map((j) => [j.state, j.attempts, j.error])).toEqual([["done", 1, null]]);
  });
});

describe("serving", () => {
  test("types and caching: playlists short-lived, segments immutable", async () => {
    const { variants } = await masterVariants();
    const { init, segments } = await mediaSegments(variants[1]!.uri);
    const cases: [string, string, string][] = [
      ["master.m3u8", "application/vnd.apple.mpegurl", "public, max-age=5"],
      [variants[1]!.uri, "application/vnd.apple.mpegurl", "public, max-age=5"],
      [init, "video/mp4", "public, max-age=31536000, immutable"],
      [segments[0]!.uri, "video/iso.segment", "public, max-age=31536000, immutable"],
    ];
    for (const [path, type, cache] of cases) {
      const r = await hls(path);
      await r.arrayBuffer();
      expect([path, r.status, r.headers.get("content-type"), r.headers.get("cache-control")]).toEqual([path, 200, type, cache]);
      expect(r.headers.get("etag")).toBeTruthy();
      expect(r.headers.get("accept-ranges")).toBe("bytes");
    }
  });

  test("the file engine's semantics: ranges, HEAD, conditional requests", async () => {
    const { variants } = await masterVariants();
    const { segments } = await mediaSegments(variants[0]!.uri);
    const path = segments[1]!.uri;
    const full = Buffer.from(await (await hls(path)).arrayBuffer());
    const ranged = await hls(path, { headers: { range: "bytes=100-199" } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get("content-range")).toBe(`bytes 100-199/${full.length}`);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(full.subarray(100, 200));
    const head = await hls(path, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.headers.get("content-length")).toBe(String(full.length));
    const etag = head.headers.get("etag")!;
    const again = await hls(path, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
  });

  test("only the names the worker writes are served", async () => {
    for (const path of ["source.mp4", "../source.mp4", "%2e%2e/source.mp4", "360p/../../source.mp4", "360p/seg_1.m4s", "master.m3u8.bak", "360p/index.m3u8/x", "360p/"]) {
      const url = `${spool.url}/api/hls/${video.id}/${path}`;
      // fetch resolves dot segments, so some of these leave the HLS routes' shape for a path the
      // access policy does not open: there the key is asked for first (401). Even the key holder
      // gets no file (404).
      const open = accessFor("GET", new URL(url).pathname) === "open";
      const r = await fetch(url);
      await r.arrayBuffer();
      expect([path, r.status]).toEqual([path, open ? 404 : 401]);
      const keyed = await fetch(url, { headers: AUTH });
      await keyed.arrayBuffer();
      expect([path, keyed.status]).toEqual([path, 404]);
    }
    const other = await fetch(`${spool.url}/api/hls/nosuchvideo/master.m3u8`);
    expect(other.status).toBe(404);
    expect(((await other.json()) as { error: { code: string } }).error.code).toBe("not_found");
  });

  test("only a complete ladder is served: files present while hls.status is not ready answer 404", async () => {
    const master = `${spool.url}/api/hls/${video.id}/master.m3u8`;
    expect((await fetch(master)).status).toBe(200);
    // What a bucket holds while a ladder is being published (its files appear one by one).
    expect(await spool.ctx.library.setHls(video.id, { status: "processing", progress: 99 })).toBe(true);
    try {
      await expectError(await fetch(master), 404, "not_found");
      await expectError(await fetch(`${spool.url}/api/hls/${video.id}/storyboard.vtt`), 404, "not_found");
    } finally {
      expect(await spool.ctx.library.setHls(video.id, { status: "ready", progress: 100 })).toBe(true);
    }
    expect((await fetch(master)).status).toBe(200);
  });

  test("CORS is on by default for HLS and the stream route, exposing range headers", async () => {
    for (const url of [`${spool.url}/api/hls/${video.id}/master.m3u8`, `${spool.url}${video.streamUrl}`]) {
      const r = await fetch(url, { headers: { origin: "https://player.example", range: "bytes=0-9" } });
      await r.arrayBuffer();
      expect(r.headers.get("access-control-allow-origin")).toBe("*");
      expect(r.headers.get("access-control-expose-headers")).toBe("Content-Range, Content-Length, Accept-Ranges, ETag");
      const preflight = await fetch(url, {
        method: "OPTIONS",
        headers: { origin: "https://player.example", "access-control-request-method": "GET", "access-control-request-headers": "range" },
      });
      expect(preflight.status).toBe(204);
      expect(preflight.headers.get("access-control-allow-methods")).toBe("GET, HEAD, OPTIONS");
      expect(preflight.headers.get("access-control-allow-headers")).toContain("Range");
      // Not a preflight: the methods the resource supports, and the same ones in a 405's Allow.
      const options = await fetch(url, { method: "OPTIONS" });
      expect(options.status).toBe(204);
      expect(options.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
      // With the key or without (the key is no business of a playback route's 405).
      for (const headers of [AUTH, {}]) {
        for (const method of ["POST", "PUT", "DELETE"]) {
          const refused = await fetch(url, { method, headers });
          await expectError(refused, 405, "method_not_allowed");
          expect(refused.headers.get("allow")).toBe("GET, HEAD, OPTIONS");
          expect(refused.headers.get("access-control-allow-origin")).toBe("*");
        }
      }
    }
    // Not on the library API.
    const api = await fetch(`${spool.url}/api/videos/${video.id}`, { headers: { origin: "https://player.example" } });
    expect(api.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("the ladder as native routes", () => {
  /** Status, headers (but the request's own id, the clock, and the length the wire adds) and body bytes. */
  const answer = async (response: Response) => {
    const headers = Object.fromEntries([...response.headers].filter(([name]) => name !== "x-request-id" && name !== "date" && name !== "content-length"));
    return { status: response.status, headers, body: Buffer.from(await response.arrayBuffer()).toString("base64") };
  };

  test("Bun's router answers every ladder request exactly as the Elysia app does: files, ranges, HEAD, 304, 404s, OPTIONS and preflights, with either CORS policy", async () => {
    const { variants } = await masterVariants();
    const { init, segments } = await mediaSegments(variants[0]!.uri);
    const etag = (await hls(segments[0]!.uri, { method: "HEAD" })).headers.get("etag")!;
    const paths = [`${video.id}/master.m3u8`, `${video.id}/storyboard.vtt`, `${video.id}/${variants[0]!.uri}`, `${video.id}/${init}`, `${video.id}/${segments[0]!.uri}`, `${video.id}/source.mp4`, `${video.id}/360p/seg_1.m4s`, `${video.id}/360p%2Findex.m3u8`, "nosuchvideo/master.m3u8", "AAAAAAAAAAAAAAAAAAAAAA/master.m3u8"];
    const variantsOf = (path: string): [string, RequestInit][] => [
      ["GET", {}],
      ["GET range", { headers: { range: "bytes=10-99" } }],
      ["GET two ranges", { headers: { range: "bytes=0-9,20-29" } }],
      ["GET past the end", { headers: { range: "bytes=99999999-" } }],
      ["GET If-None-Match", { headers: { "if-none-match": etag } }],
      ["GET from a page", { headers: { origin: "https://player.example" } }],
      ["HEAD", { method: "HEAD" }],
      ["OPTIONS", { method: "OPTIONS" }],
      ["preflight", { method: "OPTIONS", headers: { origin: "https://player.example", "access-control-request-method": "GET" } }],
      ["preflight from elsewhere", { method: "OPTIONS", headers: { origin: "https://elsewhere.example", "access-control-request-method": "GET" } }],
    ].map(([name, init]) => [`${name as string} ${path}`, init as RequestInit]);
    // The same library with an origin list: CORS then depends on the request's Origin.
    const listed = await startTestSpool({ dataDir: spool.dataDir, seedDemo: false, jobKinds: [], corsOrigins: ["https://player.example"], metrics: false });
    try {
      for (const server of [spool, listed]) {
        // The Elysia app alone behind a bare Bun.serve, on the wire like the real server (Bun
        // applies a Range to file bodies as it sends them, so app.handle() would not do).
        const app = createApp(server.ctx);
        const elysia = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: (request) => app.fetch(request) });
        try {
          for (const path of paths) {
            for (const [name, init] of variantsOf(path)) {
              const native = await answer(await fetch(`${server.url}/api/hls/${path}`, init));
              const expected = await answer(await fetch(`http://127.0.0.1:${elysia.port}/api/hls/${path}`, init));
              expect({ name, cors: server === spool ? "*" : "list", ...native }).toEqual({ name, cors: server === spool ? "*" : "list", ...expected });
            }
          }
        } finally {
          elysia.stop(true);
        }
      }
    } finally {
      await listed.stop();
    }
  });
});

describe("progress", () => {
  test("SSE: status events for each state change and progress events in between, ending at ready", () => {
    const parsed = sseEvents.map((e) => ({ event: e.event, video: JSON.parse(e.data) as VideoJson }));
    expect(parsed[0]!.event).toBe("status");
    expect(parsed.at(-1)!.video.hls).toMatchObject({ status: "ready", progress: 100 });
    const states = parsed.filter((e) => e.event === "status").map((e) => `${e.video.status}/${e.video.hls.status}`);
    // Consecutive duplicates cannot happen: a status event means something changed.
    expect(states.every((s, i) => i === 0 || s !== states[i - 1])).toBe(true);
    expect(states.at(-1)).toBe("ready/ready");
    expect(states).toContain("ready/processing");
    const progress = parsed.filter((e) => e.video.hls.status === "processing").map((e) => e.video.hls.progress);
    expect(progress.length).toBeGreaterThan(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThanOrEqual(progress[i - 1]!);
    expect(progress.some((p) => p > 0 && p < 100)).toBe(true);
  });

  test("SSE: headers, a 404 for unknown videos", async () => {
    const abort = new AbortController();
    const r = await fetch(`${spool.url}/api/videos/${video.id}/events`, { signal: abort.signal, headers: AUTH });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    expect(r.headers.get("cache-control")).toBe("no-store");
    abort.abort();
    const missing = await fetch(`${spool.url}/api/videos/AAAAAAAAAAAAAAAAAAAAAA/events`, { headers: AUTH });
    expect(missing.status).toBe(404);
  });

  test("SSE: many watchers at once share one listener (no EventEmitter leak warning) and leave nothing behind", async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    const events = spool.ctx.library.events;
    const before = events.listenerCount("invalidated");
    const aborts: AbortController[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const abort = new AbortController();
        aborts.push(abort);
        const r = await fetch(`${spool.url}/api/videos/${video.id}/events`, { signal: abort.signal, headers: AUTH });
        await r.body!.getReader().read(); // the stream has started: its listeners are on
      }
      // One watch (src/library/watch.ts) listens for all of them: no listener per stream.
      expect(events.listenerCount("invalidated")).toBe(before);
      await Bun.sleep(50);
      expect(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning"))).toEqual([]);
    } finally {
      for (const abort of aborts) abort.abort();
      process.off("warning", onWarning);
    }
    const deadline = Date.now() + 5000;
    while (events.listenerCount("invalidated") > before && Date.now() < deadline) await Bun.sleep(50);
    expect(events.listenerCount("invalidated")).toBe(before);
  });

  test("an audio-only file is skipped with a reason, not failed", async () => {
    const audio = await makeAudio({ seconds: 2, format: "m4a" });
    const uploaded = await upload(spool.url, audio, "tone.m4a");
    const settled = await waitForVideo(spool.url, uploaded.id, hlsSettled);
    expect(settled.hls.status).toBe("skipped");
    expect(settled.hls.error).toContain("no video stream");
    expect(existsSync(join(spool.dataDir, "videos", uploaded.id, "hls"))).toBe(false);
  }, 60_000);
});

test("an anamorphic source whose sound outlasts its picture: the ladder, storyboard and poster keep the shape players show, and the playlists last as long as the sound", async () => {
  // 360x240 stored with 4:3 pixels (shown 480x240), 3 s of picture, 6 s of sound.
  const source = join(work, "anamorphic.mp4");
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc2=size=360x240:rate=25:duration=3",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=6",
    "-vf", "setsar=4/3", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-movflags", "+faststart", source,
  ]);
  const uploaded = await upload(spool.url, source, "anamorphic.mp4");
  const ready = await waitForVideo(spool.url, uploaded.id, hlsSettled);
  expect(ready.hls.status).toBe("ready");
  const row = (await (await fetch(`${spool.url}/api/videos/${uploaded.id}`)).json()) as { width: number; height: number; duration: number };
  expect([row.width, row.height]).toEqual([480, 240]);
  const at = (path: string) => fetch(`${spool.url}/api/hls/${uploaded.id}/${path}`);
  const master = await (await at("master.m3u8")).text();
  expect(master).toContain("RESOLUTION=480x240");
  const playlist = await (await at("240p/index.m3u8")).text();
  const listed = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].reduce((sum, m) => sum + Number(m[1]), 0);
  expect(Math.abs(listed - 6)).toBeLessThan(0.1);
  // The last segment holds the last second or two, not the 3 s of sound after the picture ended.
  const segments = [...playlist.matchAll(/#EXTINF:([\d.]+),/g)].map((m) => Number(m[1]));
  expect(segments.at(-1)!).toBeLessThanOrEqual(4.05);
  // The storyboard covers the sound too, with tiles of the shown shape (2:1).
  const vtt = await (await at("storyboard.vtt")).text();
  expect(vtt).toContain("00:00:05.000 --> ");
  const tile = /#xywh=\d+,\d+,(\d+),(\d+)/.exec(vtt)!;
  expect(Number(tile[1]) / Number(tile[2])).toBeCloseTo(2, 1);
  const poster = jpegSize(new Uint8Array(await (await fetch(`${spool.url}/api/videos/${uploaded.id}/thumbnail.jpg`)).arrayBuffer()));
  expect(poster).toEqual({ width: 480, height: 240 });
}, 60_000);

test("sound that starts late and ends early: every segment carries audio from 0 s (silence where there is no sound), so a browser's buffer neither starts nor stops where the sound does", async () => {
  // 9 s of picture, sound from 2.5 s to 4.5 s: segment 0 begins, and segments 2-3 come, without it.
  const source = join(work, "short-sound.mp4");
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=9",
    "-itsoffset", "2.5", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
    "-map", "0:v", "-map", "1:a",
    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-c:a", "aac", "-movflags", "+faststart", source,
  ]);
  const uploaded = await upload(spool.url, source, "short-sound.mp4");
  const ready = await waitForVideo(spool.url, uploaded.id, hlsSettled);
  expect(ready.hls.status).toBe("ready");
  const at = async (path: string) => new Uint8Array(await (await fetch(`${spool.url}/api/hls/${uploaded.id}/${path}`)).arrayBuffer());
  const playlist = new TextDecoder().decode(await at("240p/index.m3u8"));
  const init = playlist.match(/#EXT-X-MAP:URI="([^"]+)"/)![1]!;
  const segments = playlist.split("\n").filter((line) => line && !line.startsWith("#"));
  expect(segments.length).toBeGreaterThanOrEqual(3);
  const head = await at(`240p/${init}`);
  /** Per segment: when its sound starts, relative to its picture (s), and how many AAC packets. */
  const audio: { segment: string; start: number; packets: number }[] = [];
  for (const segment of segments) {
    // The init section and one segment make a file ffprobe reads on its own.
    const file = join(work, `one-${segment}`);
    await writeFile(file, Buffer.concat([head, await at(`240p/${segment}`)]));
    const proc = Bun.spawn(["ffprobe", "-v", "error", "-count_packets", "-show_entries", "stream=codec_type,start_time,nb_read_packets", "-of", "json", file], { stdout: "pipe" });
    const { streams } = (await new Response(proc.stdout).json()) as { streams: { codec_type: string; start_time: string; nb_read_packets: string }[] };
    await proc.exited;
    const of = (type: string) => streams.find((s) => s.codec_type === type)!;
    audio.push({ segment, start: Number(of("audio").start_time) - Number(of("video").start_time), packets: Number(of("audio").nb_read_packets) });
  }
  // Sound from the first picture on (within about one AAC frame, 21 ms at 48 kHz)...
  expect(audio[0]!.start).toBeLessThan(0.05);
  // ...and in every segment: AAC at 48 kHz is about 47 packets a second, segments are 4 s but the last.
  for (const a of audio.slice(0, -1)) expect({ segment: a.segment, enough: a.packets > 180 }).toEqual({ segment: a.segment, enough: true });
  expect(audio.at(-1)!.packets).toBeGreaterThan(40);
}, 60_000);

test("deleting a video removes its ladder and stops serving it", async () => {
  const source = await makeSource({ seconds: 4, bitrate: 600_000 });
  const uploaded = await upload(spool.url, source, "short.mp4");
  const ready = await waitForVideo(spool.url, uploaded.id, hlsSettled);
  expect(ready.hls.status).toBe("ready");
  expect((await fetch(`${spool.url}${ready.hls.masterUrl}`)).status).toBe(200);
  expect((await fetch(`${spool.url}/api/videos/${uploaded.id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
  const gone = await fetch(`${spool.url}${ready.hls.masterUrl}`);
  expect(gone.status).toBe(404);
  expect(existsSync(join(spool.dataDir, "videos", uploaded.id))).toBe(false);
  expect(await spool.ctx.jobs.forVideo(uploaded.id)).toEqual([]);
  // A whole upload and transcode: seconds on an idle machine, more on a busy one.
}, 60_000);
