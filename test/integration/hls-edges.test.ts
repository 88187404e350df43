/**
 * Ladders at the edges, built and served by a real Spool with 2 s segments and HLS_MAX_HEIGHT
 * below the smallest rung: a source a few pixels high, a limit that must scale the source down,
 * a short last segment (BANDWIDTH is RFC 8216's peak, §4.1), and a storyboard whose tail is
 * shorter than half its interval. Real ffmpeg, HTTP and SQLite.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startTestSpool, type TestSpool } from "../helpers/spool.ts";
import { ffmpeg, hlsSettled, upload, waitForVideo, type VideoJson } from "./hls-support.ts";

const SEGMENT_SECONDS = 2;
let spool: TestSpool;
let work: string;
/** 14x8, 4 s: a ladder of one rendition, 8p. */
let tiny: VideoJson;
/** 640x360, 4.4 s of noise: one 200p rendition, segments of 2, 2 and 0.4 s. */
let hd: VideoJson;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "spool-hls-edges-"));
  spool = await startTestSpool({ seedDemo: false, transcode: { segmentSeconds: SEGMENT_SECONDS, maxHeight: 200 } });
  const tinySource = join(work, "tiny.mp4");
  const hdSource = join(work, "hd.mp4");
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc=size=14x8:rate=30", "-f", "lavfi", "-i", "sine", "-t", "4",
    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", tinySource,
  ]);
  // Noise, so a segment's bytes are mostly its frames and a short last one (a keyframe in 0.4 s) is dense.
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine", "-t", "4.4", "-vf", "noise=alls=30:allf=t",
    "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", hdSource,
  ]);
  const tinyId = (await upload(spool.url, tinySource, "tiny.mp4")).id;
  const hdId = (await upload(spool.url, hdSource, "hd.mp4")).id;
  tiny = await waitForVideo(spool.url, tinyId, hlsSettled, 90_000);
  hd = await waitForVideo(spool.url, hdId, hlsSettled, 90_000);
}, 120_000);

afterAll(async () => {
  await spool?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const get = (video: VideoJson, path: string) => fetch(`${spool.url}/api/hls/${video.id}/${path}`);

async function variants(video: VideoJson) {
  const text = await (await get(video, "master.m3u8")).text();
  const lines = text.trim().split("\n");
  return lines.flatMap((line, i) => {
    if (!line.startsWith("#EXT-X-STREAM-INF:")) return [];
    const attrs = Object.fromEntries([...line.matchAll(/([A-Z-]+)=("[^"]*"|[^,]*)/g)].map((m) => [m[1]!, m[2]!.replace(/"/g, "")]));
    return [{ attrs, uri: lines[i + 1]! }];
  });
}

/** A rendition's playlist, and every file it names with its status and size as served. */
async function rendition(video: VideoJson, uri: string) {
  const response = await get(video, uri);
  const text = await response.text();
  const dir = uri.slice(0, uri.lastIndexOf("/") + 1);
  const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1]);
  const init = /#EXT-X-MAP:URI="([^"]+)"/.exec(text)?.[1];
  const segments = [];
  for (const m of text.matchAll(/#EXTINF:([\d.]+),\n(\S+)/g)) {
    const r = await get(video, dir + m[2]!);
    segments.push({ uri: dir + m[2]!, status: r.status, duration: Number(m[1]), bytes: (await r.arrayBuffer()).byteLength });
  }
  let initFile = null;
  if (init) {
    const r = await get(video, dir + init);
    await r.arrayBuffer();
    initFile = { uri: dir + init, status: r.status };
  }
  return { status: response.status, target, init: initFile, segments };
}

describe("a source a few pixels high", () => {
  test("gets a ladder whose every file is served", async () => {
    expect(tiny.hls.status).toBe("ready");
    const list = await variants(tiny);
    expect(list.map((v) => [v.uri, v.attrs.RESOLUTION])).toEqual([["8p/index.m3u8", "14x8"]]);
    const r = await rendition(tiny, list[0]!.uri);
    expect(r.status).toBe(200);
    expect(r.init).toEqual({ uri: "8p/init.mp4", status: 200 });
    expect(r.segments.length).toBe(2);
    for (const s of r.segments) expect([s.uri, s.status, s.bytes > 0]).toEqual([s.uri, 200, true]);
  });
});

describe("HLS_MAX_HEIGHT below the smallest rung", () => {
  test("the source is scaled down to it, keeping its shape", async () => {
    expect(hd.hls.status).toBe("ready");
    const list = await variants(hd);
    expect(list.map((v) => [v.uri, v.attrs.RESOLUTION])).toEqual([["200p/index.m3u8", "356x200"]]);
    expect((await rendition(hd, list[0]!.uri)).status).toBe(200);
  });
});

describe("a short last segment", () => {
  test("BANDWIDTH is at least the peak segment bit rate of RFC 8216 §4.1, the last segment included", async () => {
    const [variant] = await variants(hd);
    const r = await rendition(hd, variant!.uri);
    expect(r.target).toBe(SEGMENT_SECONDS);
    // The repro's shape: whole segments, then a tail shorter than half the target.
    expect(r.segments.map((s) => s.duration)).toEqual([2, 2, expect.closeTo(0.4, 1)]);
    // Every run of contiguous segments lasting 0.5 to 1.5 times the target duration.
    let peak = 0;
    for (let i = 0; i < r.segments.length; i++) {
      let bytes = 0;
      let seconds = 0;
      for (const s of r.segments.slice(i)) {
        bytes += s.bytes;
        seconds += s.duration;
        if (seconds >= 0.5 * r.target && seconds <= 1.5 * r.target) peak = Math.max(peak, (bytes * 8) / seconds);
      }
    }
    expect(Number(variant!.attrs.BANDWIDTH)).toBeGreaterThanOrEqual(Math.floor(peak));
    expect(Number(variant!.attrs.BANDWIDTH)).toBeLessThanOrEqual(Math.ceil(peak) + 1);
  });
});

describe("the storyboard of a video whose tail is under half an interval", () => {
  test("has a thumbnail for the tail, and its cues cover the whole video without a gap", async () => {
    const text = await (await get(hd, "storyboard.vtt")).text();
    const seconds = (t: string) => t.split(":").reduce((sum, part) => sum * 60 + Number(part), 0);
    const cues = [...text.matchAll(/(\S+) --> (\S+)\n(storyboard_\d+\.jpg)#xywh=(\d+),(\d+)/g)].map((m) => ({ start: seconds(m[1]!), end: seconds(m[2]!), tile: `${m[3]} ${m[4]},${m[5]}` }));
    expect(cues.map((c) => c.start)).toEqual([0, 1, 2, 3, 4]);
    for (let i = 1; i < cues.length; i++) expect(cues[i]!.start).toBe(cues[i - 1]!.end);
    expect(cues.at(-1)!.end).toBeCloseTo(hd.duration!, 3);
    expect(cues.at(-1)!.tile).toBe("storyboard_1.jpg 640,0");
    expect((await get(hd, "storyboard_1.jpg")).status).toBe(200);
  });
});
