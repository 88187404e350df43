/**
 * `?start=&end=` clips on /api/stream/:id against a real Spool over real HTTP, on media ffmpeg
 * makes here: what ffprobe and ffmpeg say about the clips (duration, clean decode, the first
 * frame shown is the source's frame at `start`), and the clip as an HTTP entity (exact ranges,
 * multipart, HEAD, validators, download names), bad input, the `.mp4` suffix and access control.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { decodeErrors, ffprobe, lumaFrame, makeBframesVideo, makePattern, makeVideoWithSideTracks, psnr, shownFrames, statedDurations, tempPath } from "../helpers/clips.ts";
import { parseMultipart } from "../helpers/http.ts";
import { expectError } from "../helpers/library.ts";
import { makeAudio, makeVideo } from "../helpers/media.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";

const FPS = 25;
let spool: TestSpool;
/** Video ids: A/V with a 2 s GOP and no B-frames; with B-frames; a WebM. */
const ids = { gop: "", bframes: "", webm: "" };
const sources = { gop: "", bframes: "" };

beforeAll(async () => {
  spool = await startTestSpool({ jobKinds: ["ingest"] });
  sources.gop = await makeVideo({ seconds: 8, fps: FPS, keyframeInterval: 2 * FPS });
  sources.bframes = await makeBframesVideo(8);
  const webm = await makeVideo({ seconds: 2, container: "webm" });
  ids.gop = (await ingest(sources.gop, { title: "Gop clip", originalFilename: "gop.mp4" })).id;
  ids.bframes = (await ingest(sources.bframes, { title: "B frames", originalFilename: "b.mp4" })).id;
  ids.webm = (await ingest(webm, { title: "web", originalFilename: "w.webm" })).id;
}, 120_000);
afterAll(() => spool?.stop());

/** The ingest entry point, wherever the library refactor puts it (ctx.ingest, or ctx.library before). */
interface Ingests {
  ingestPath(path: string, meta: { title: string; originalFilename: string; playback?: "public" | "signed" }): Promise<{ id: string }>;
}
function ingest(path: string, meta: Parameters<Ingests["ingestPath"]>[1]): Promise<{ id: string }> {
  const ctx = spool.ctx as unknown as { ingest?: Partial<Ingests>; library: Partial<Ingests> };
  return (ctx.ingest?.ingestPath ? ctx.ingest : ctx.library).ingestPath!(path, meta);
}

const streamUrl = (id: string, query = "") => `${spool.url}/api/stream/${id}${query}`;
const bytesOf = async (r: Response) => new Uint8Array(await r.arrayBuffer());

async function saveClip(id: string, query: string): Promise<{ path: string; bytes: Uint8Array<ArrayBuffer>; response: Response }> {
  const response = await fetch(streamUrl(id, query));
  expect(response.status).toBe(200);
  const bytes = await bytesOf(response);
  const path = tempPath("mp4");
  await Bun.write(path, bytes);
  return { path, bytes, response };
}

describe("what ffmpeg makes of a clip", () => {
  // [video, start, end]: mid-GOP starts, a start on a key frame, open ends, a clip from 0.
  const cases: [keyof typeof sources, number, number | undefined][] = [
    ["gop", 3.3, 6.1],
    ["gop", 2, 4],
    ["gop", 5.52, undefined],
    ["gop", 0, 1.5],
    ["bframes", 3.3, 6.1],
    ["bframes", 1.17, undefined],
  ];
  for (const [name, start, end] of cases) {
    test(`${name} ${start}-${end ?? "end"}: ffprobe's duration, a clean decode, the frame at start first`, async () => {
      const query = `?start=${start}${end === undefined ? "" : `&end=${end}`}`;
      const { path, response } = await saveClip(ids[name], query);
      expect(response.headers.get("content-type")).toBe("video/mp4");
      const probe = await ffprobe(path);
      expect(probe.streams.map((s) => s.codec_type).sort()).toEqual(["audio", "video"]);
      const expected = (end ?? 8) - start;
      // Within one video frame: the start snaps back to the frame shown at `start`.
      expect(Math.abs(probe.duration - expected)).toBeLessThanOrEqual(1 / FPS + 1e-3);
      expect(await decodeErrors(path)).toBe("");
      const shownAtStart = Math.floor(start * FPS + 1e-6);
      const first = await lumaFrame(path, 0);
      expect(psnr(first, await lumaFrame(sources[name], shownAtStart))).toBeGreaterThanOrEqual(30);
      // And not merely a similar frame: the next one differs (the test pattern's counter moves).
      expect(psnr(first, await lumaFrame(sources[name], shownAtStart + 1))).toBeLessThan(psnr(first, await lumaFrame(sources[name], shownAtStart)));
    }, 30_000);
  }
});

describe("a start inside the last frame's display time", () => {
  // x264 with B-frames decodes a B-frame last, shown before the final P-frame: that B-frame's end
  // was taken for the track's end, so these starts lost the video (a 200 of audio alone, or 400
  // clip_out_of_range for a video-only file). [name, source, start, last frame's index, its pts, its end].
  const cases: [string, Parameters<typeof makePattern>[0], number, number, number, number][] = [
    ["30 fps A/V, 2 s GOPs", { seconds: 4, fps: "30", gop: 60 }, 3.99, 119, 119 / 30, 4],
    ["29.97 fps A/V", { seconds: 4, fps: "30000/1001", gop: 60 }, 3.99, 119, (119 * 1001) / 30000, (120 * 1001) / 30000],
    ["29.97 fps A/V, past the audio's end", { seconds: 4, fps: "30000/1001", gop: 60 }, 4.002, 119, (119 * 1001) / 30000, (120 * 1001) / 30000],
    ["25 fps video only, one key frame", { seconds: 4, fps: "25", gop: 250, audio: false }, 3.97, 99, 3.96, 4],
  ];
  const made = new Map<string, Promise<{ path: string; id: string }>>();
  const source = (options: Parameters<typeof makePattern>[0]) => {
    const key = JSON.stringify(options);
    if (!made.has(key)) made.set(key, makePattern(options).then(async (path) => ({ path, id: (await ingest(path, { title: key, originalFilename: "last.mp4" })).id })));
    return made.get(key)!;
  };
  for (const [name, options, start, last, pts, end] of cases) {
    test(`${name}, start=${start}: the last frame, with its sound`, async () => {
      const { path: original, id } = await source(options);
      const { path } = await saveClip(id, `?start=${start}`);
      const probe = await ffprobe(path);
      expect(probe.streams.map((s) => s.codec_type).sort()).toEqual(options.audio === false ? ["video"] : ["audio", "video"]);
      expect(await decodeErrors(path)).toBe("");
      expect(await shownFrames(path)).toBe(1);
      expect(Math.abs(probe.duration - (end - pts))).toBeLessThanOrEqual(0.002);
      const first = await lumaFrame(path, 0);
      expect(psnr(first, await lumaFrame(original, last))).toBeGreaterThanOrEqual(30);
      expect(psnr(first, await lumaFrame(original, last - 1))).toBeLessThan(psnr(first, await lumaFrame(original, last)));
    }, 60_000);
  }
});

describe("an interval shorter than a tick of the movie's timescale (1 ms)", () => {
  // Before: mvhd, tkhd and elst said 0 (ffmpeg showed nothing; an edit of 0 is "the rest of the
  // media" to some players). Now the frame at start, for one tick, the same in every box.
  const cases: [number, number][] = [
    [2, 2.0001],
    [3.2, 3.200001],
    [0.000001, 0.000002],
    [7.96, 7.960001],
  ];
  for (const [start, end] of cases) {
    test(`${start}-${end}: one frame, the one at start; durations of one tick, consistent`, async () => {
      const { path } = await saveClip(ids.bframes, `?start=${start}&end=${end}`);
      const probe = await ffprobe(path);
      expect(probe.streams.map((s) => s.codec_type).sort()).toEqual(["audio", "video"]);
      expect(await decodeErrors(path)).toBe("");
      expect(await shownFrames(path)).toBe(1);
      const frame = Math.floor(start * FPS + 1e-6);
      const first = await lumaFrame(path, 0);
      expect(psnr(first, await lumaFrame(sources.bframes, frame))).toBeGreaterThanOrEqual(30);
      const stated = await statedDurations(path);
      for (const t of stated.tracks) {
        expect(t.tkhd).toBe(1);
        expect(t.elst.map(([d]) => d)).toEqual([1]);
      }
      expect(stated.mvhd).toBe(1);
    }, 30_000);
  }
});

describe("the clip as an HTTP entity", () => {
  const query = "?start=3.3&end=6.1";
  let clip: Uint8Array<ArrayBuffer>;
  let etag: string;

  beforeAll(async () => {
    const r = await fetch(streamUrl(ids.gop, query));
    clip = await bytesOf(r);
    etag = r.headers.get("etag")!;
  });

  test("200: headers, and a tag of its own derived from the file's", async () => {
    const plain = await fetch(streamUrl(ids.gop), { method: "HEAD" });
    const r = await fetch(streamUrl(ids.gop, query));
    expect(r.status).toBe(200);
    expect(await bytesOf(r)).toEqual(clip);
    expect(r.headers.get("accept-ranges")).toBe("bytes");
    expect(r.headers.get("cache-control")).toBe("public, max-age=86400");
    expect(r.headers.get("content-disposition")).toBe("inline");
    expect(r.headers.get("last-modified")).toBe(plain.headers.get("last-modified"));
    expect(etag).toBe(`${plain.headers.get("etag")!.slice(0, -1)}.3.3-6.1"`);
    // The same interval written differently is the same entity.
    expect((await fetch(streamUrl(ids.gop, "?start=3.30&end=6.100"), { method: "HEAD" })).headers.get("etag")).toBe(etag);
  });

  test("HEAD: the exact length, no body", async () => {
    const r = await fetch(streamUrl(ids.gop, query), { method: "HEAD" });
    expect(r.status).toBe(200);
    expect(r.headers.get("content-length")).toBe(String(clip.length));
    expect((await bytesOf(r)).length).toBe(0);
  });

  const ranges: [string, (n: number) => [number, number]][] = [
    ["bytes=0-1", () => [0, 1]],
    ["bytes=0-", (n) => [0, n - 1]],
    ["bytes=100-199", () => [100, 199]], // inside the header
    ["bytes=1000-80000", () => [1000, 80000]], // header and media
    ["bytes=(n-30000)-(n-1000)", (n) => [n - 30000, n - 1000]], // media only: a file slice
    ["bytes=-500", (n) => [n - 500, n - 1]],
  ];
  for (const [header, expected] of ranges) {
    test(`206 ${header}: the clip's exact bytes`, async () => {
      const [a, b] = expected(clip.length);
      const r = await fetch(streamUrl(ids.gop, query), { headers: { range: header.startsWith("bytes=(") ? `bytes=${a}-${b}` : header } });
      expect(r.status).toBe(206);
      expect(r.headers.get("content-range")).toBe(`bytes ${a}-${b}/${clip.length}`);
      expect(r.headers.get("etag")).toBe(etag);
      expect(await bytesOf(r)).toEqual(clip.subarray(a, b + 1));
    });
  }

  test("HEAD with a range: 206 with that range's length", async () => {
    const r = await fetch(streamUrl(ids.gop, query), { method: "HEAD", headers: { range: "bytes=10-19" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("content-length")).toBe("10");
    expect(r.headers.get("content-range")).toBe(`bytes 10-19/${clip.length}`);
  });

  test("multipart/byteranges across the header and the media", async () => {
    const r = await fetch(streamUrl(ids.gop, query), { headers: { range: "bytes=0-99,5000-5999,-100" } });
    expect(r.status).toBe(206);
    const boundary = /boundary=(\S+)/.exec(r.headers.get("content-type")!)![1]!;
    const parts = parseMultipart(Buffer.from(await r.arrayBuffer()), boundary);
    const n = clip.length;
    expect(parts.map((p) => p.headers["content-range"])).toEqual([`bytes 0-99/${n}`, `bytes 5000-5999/${n}`, `bytes ${n - 100}-${n - 1}/${n}`]);
    expect(parts.map((p) => p.headers["content-type"])).toEqual(["video/mp4", "video/mp4", "video/mp4"]);
    expect(parts.map((p) => new Uint8Array(p.body))).toEqual([clip.subarray(0, 100), clip.subarray(5000, 6000), clip.subarray(n - 100)]);
  });

  test("416 past the clip's end, with the clip's length", async () => {
    const r = await fetch(streamUrl(ids.gop, query), { headers: { range: `bytes=${clip.length}-` } });
    expect(r.status).toBe(416);
    expect(r.headers.get("content-range")).toBe(`bytes */${clip.length}`);
    await expectError(r, 416, "range_not_satisfiable");
  });

  test("validators: 304, 412, If-Range", async () => {
    const notModified = await fetch(streamUrl(ids.gop, query), { headers: { "if-none-match": etag } });
    expect(notModified.status).toBe(304);
    expect(notModified.headers.get("etag")).toBe(etag);
    // The clip's tag does not validate the file, nor the file's tag a clip's ranges or If-Match.
    const plainTag = (await fetch(streamUrl(ids.gop), { method: "HEAD" })).headers.get("etag")!;
    expect((await fetch(streamUrl(ids.gop), { headers: { "if-none-match": etag } })).status).toBe(200);
    // The file's tag names another representation: the clip URL answers the clip, not a 304.
    const fileTagOnClip = await fetch(streamUrl(ids.gop, query), { headers: { "if-none-match": plainTag } });
    expect(fileTagOnClip.status).toBe(200);
    expect(fileTagOnClip.headers.get("etag")).toBe(etag);
    expect(await bytesOf(fileTagOnClip)).toEqual(clip);
    // A weak comparison, a list, and a download variant: the same.
    expect((await fetch(streamUrl(ids.gop, query), { method: "HEAD", headers: { "if-none-match": `"nope", W/${plainTag}` } })).status).toBe(200);
    expect((await fetch(streamUrl(ids.gop, `${query}&download=1`), { method: "HEAD", headers: { "if-none-match": plainTag } })).status).toBe(200);
    // While the file's own URLs still revalidate with it (the whole file, a download, start=0).
    for (const q of ["", "?download=1", "?start=0"]) expect((await fetch(streamUrl(ids.gop, q), { headers: { "if-none-match": plainTag } })).status).toBe(304);
    expect((await fetch(streamUrl(ids.gop, query), { headers: { "if-match": plainTag } })).status).toBe(412);
    expect((await fetch(streamUrl(ids.gop, query), { method: "HEAD", headers: { "if-match": etag } })).status).toBe(200);
    const ranged = await fetch(streamUrl(ids.gop, query), { headers: { range: "bytes=0-9", "if-range": etag } });
    expect(ranged.status).toBe(206);
    const stale = await fetch(streamUrl(ids.gop, query), { headers: { range: "bytes=0-9", "if-range": plainTag } });
    expect(stale.status).toBe(200);
    expect(await bytesOf(stale)).toEqual(clip);
  });

  test("?download=1: attachment named after the title and the interval", async () => {
    const r = await fetch(streamUrl(ids.gop, `${query}&download=1`), { method: "HEAD" });
    expect(r.headers.get("content-disposition")).toBe('attachment; filename="Gop clip 3.3-6.1s.mp4"');
    expect(r.headers.get("etag")).toBe(etag);
    // Without an end the unit follows the start (was "Gop clip 3.3-ends.mp4").
    const open = await fetch(streamUrl(ids.gop, "?start=3.3&download=1"), { method: "HEAD" });
    expect(open.headers.get("content-disposition")).toBe('attachment; filename="Gop clip 3.3s-end.mp4"');
  });

  test("the query is read as URLSearchParams reads it: percent-encoded names count, other parameters are ignored", async () => {
    const plain = await fetch(streamUrl(ids.gop), { method: "HEAD" });
    const tagOf = async (q: string) => (await fetch(streamUrl(ids.gop, q), { method: "HEAD" })).headers.get("etag");
    expect(await tagOf("?st%61rt=3.3&%65nd=6.1")).toBe(etag);
    expect(await tagOf("?x=1&start=3.3&y=2&end=6.1")).toBe(etag);
    const download = await fetch(streamUrl(ids.gop, "?d%6Fwnload=1"), { method: "HEAD" });
    expect(download.headers.get("content-disposition")).toStartWith("attachment;");
    // Parameters Spool does not read, however spelled, leave the plain file.
    for (const q of ["?x=1", "?token=abc", "?Start=3.3&END=6.1", "?starts=3.3", "?a+b=c%20d"]) expect([q, await tagOf(q)]).toEqual([q, plain.headers.get("etag")]);
  });

  test("start=0 alone is the plain file", async () => {
    const plain = await fetch(streamUrl(ids.gop), { method: "HEAD" });
    const r = await fetch(streamUrl(ids.gop, "?start=0"), { method: "HEAD" });
    expect(r.headers.get("etag")).toBe(plain.headers.get("etag"));
    expect(r.headers.get("content-length")).toBe(plain.headers.get("content-length"));
  });
});

describe("side tracks", () => {
  test("a late one-second clip of a video with chapters and subtitles is about a second of bytes, not the file from its chapter titles on", async () => {
    const source = await makeVideoWithSideTracks(20);
    const { id } = await ingest(source, { title: "Chapters", originalFilename: "c.mp4" });
    const whole = await fetch(streamUrl(id), { method: "HEAD" });
    const fileSize = Number(whole.headers.get("content-length"));
    const { path, bytes } = await saveClip(id, "?start=18&end=19");
    // One twentieth of a near-constant-rate file, plus a header: before, the chapter track's
    // samples at the start of mdat made this clip span 94% of the file.
    expect(bytes.length).toBeLessThan(fileSize / 8);
    const probe = await ffprobe(path);
    // Subtitles are interleaved with the media and stay; the chapter track does not.
    expect(probe.streams.map((s) => s.codec_type).sort()).toEqual(["audio", "subtitle", "video"]);
    expect(Math.abs(probe.duration - 1)).toBeLessThanOrEqual(1 / FPS + 1e-3);
    expect(await decodeErrors(path)).toBe("");
    // Nor the Nero chapters ffmpeg also writes (moov/udta/chpl), which name the source's times.
    expect((await ffprobe(source)).chapters).toBe(2);
    expect(probe.chapters).toBe(0);
  }, 60_000);

  test("subtitles stay in every clip: a cue on screen at start was written before the key frame, and ffmpeg's closing cue after the last audio", async () => {
    const source = await makeVideoWithSideTracks(20);
    const { id } = await ingest(source, { title: "Subtitles", originalFilename: "s.mp4" });
    for (const q of ["?start=6.5&end=7.5", "?start=4.5&end=7.5", "?start=12.5", "?start=0&end=3"]) {
      const { path } = await saveClip(id, q);
      const probe = await ffprobe(path);
      expect([q, probe.streams.map((s) => s.codec_type).sort(), probe.chapters]).toEqual([q, ["audio", "subtitle", "video"], 0]);
    }
  }, 60_000);
});

describe("the clip's kind of file is the source's", () => {
  test("a MOV's clip is QuickTime (video/quicktime, .mov), sound alone's is audio/mp4 (.m4a): each keeps its source's ftyp", async () => {
    const mov = (await ingest(await makeVideo({ seconds: 4, container: "mov" }), { title: "Camera", originalFilename: "camera.mov" })).id;
    const m4a = (await ingest(await makeAudio({ seconds: 4, format: "m4a" }), { title: "Sound", originalFilename: "sound.m4a" })).id;
    for (const [id, type, extension, brand] of [[mov, "video/quicktime", "mov", "qt  "], [m4a, "audio/mp4", "m4a", "M4A "]] as const) {
      const source = await fetch(streamUrl(id), { headers: { range: "bytes=0-11" } });
      expect(source.headers.get("content-type")).toBe(type);
      const clip = await fetch(streamUrl(id, "?start=1&end=2&download=1"), { headers: { range: "bytes=0-11" } });
      expect(clip.status).toBe(206);
      expect(clip.headers.get("content-type")).toBe(type);
      expect(clip.headers.get("content-disposition")).toContain(`1-2s.${extension}`);
      expect(new TextDecoder().decode((await bytesOf(clip)).subarray(8, 12))).toBe(brand);
      expect(new TextDecoder().decode((await bytesOf(source)).subarray(8, 12))).toBe(brand);
    }
  }, 60_000);
});

describe("bad input: 400 JSON, never a 500", () => {
  const cases: [string, string, number, string][] = [
    ["non-numeric", "?start=abc", 400, "bad_request"],
    ["exponent", "?start=1e3", 400, "bad_request"],
    ["negative", "?start=-1", 400, "bad_request"],
    ["negative end", "?end=-2", 400, "bad_request"],
    ["empty", "?start=", 400, "bad_request"],
    ["end before start", "?start=4&end=3", 400, "bad_request"],
    ["end equal to start", "?start=4&end=4", 400, "bad_request"],
    ["start at the duration", "?start=8", 400, "clip_out_of_range"],
    ["start past the duration", "?start=99.5&end=100", 400, "clip_out_of_range"],
  ];
  for (const [name, query, status, code] of cases) {
    test(name, async () => {
      await expectError(await fetch(streamUrl(ids.gop, query)), status, code);
    });
  }

  test("a player's currentTime, however many decimals: rounded to the microsecond, the same clip as its short spelling", async () => {
    const tag = async (q: string) => {
      const r = await fetch(streamUrl(ids.gop, q), { method: "HEAD" });
      expect([q, r.status]).toEqual([q, 200]);
      return r.headers.get("etag");
    };
    expect(await tag("?start=3.3366666666666664&end=5.0000001")).toBe(await tag("?start=3.336667&end=5"));
    expect(await tag("?start=3.336667&end=5")).toEndWith('.3.336667-5"');
    await expectError(await fetch(streamUrl(ids.gop, `?start=1.${"0".repeat(31)}`)), 400, "bad_request");
  });

  test("a WebM: 400 saying clips need MP4", async () => {
    const body = await expectError(await fetch(streamUrl(ids.webm, "?start=1")), 400, "clip_unsupported_container");
    expect(body.error.message).toContain("MP4");
  });
});

describe("/api/stream/:id.<ext>", () => {
  test("the stored container's extension serves the same entity, clips too", async () => {
    const plain = await fetch(streamUrl(ids.gop));
    const suffixed = await fetch(streamUrl(`${ids.gop}.mp4`));
    expect(suffixed.status).toBe(200);
    expect(suffixed.headers.get("etag")).toBe(plain.headers.get("etag"));
    expect(await bytesOf(suffixed)).toEqual(await bytesOf(plain));
    const clip = await fetch(streamUrl(`${ids.gop}.mp4`, "?start=1&end=2"), { headers: { range: "bytes=0-7" } });
    expect(clip.status).toBe(206);
    expect(clip.headers.get("etag")).toEndWith('.1-2"');
    expect((await fetch(streamUrl(`${ids.webm}.webm`), { method: "HEAD" })).status).toBe(200);
  });

  test("anything naming no ready video is a 404", async () => {
    for (const path of [`${ids.gop}.webm`, `${ids.webm}.mp4`, `${ids.gop}.anything`, "AAAAAAAAAAAAAAAAAAAAAA.mp4", "nope.mp4", ".mp4", `${ids.gop}.`]) {
      await expectError(await fetch(streamUrl(path)), 404, "not_found");
    }
  });
});

describe("access control", () => {
  test("a signed video's clip needs its token, checked before the interval", async () => {
    const id = (await ingest(sources.gop, { title: "secret", originalFilename: "s.mp4", playback: "signed" })).id;
    await expectError(await fetch(streamUrl(id, "?start=1&end=2")), 403, "token_missing");
    await expectError(await fetch(streamUrl(id, "?start=abc")), 403, "token_missing");
    const minted = await fetch(`${spool.url}/api/videos/${id}/tokens`, { method: "POST", headers: { ...AUTH, "content-type": "application/json" }, body: "{}" });
    const { token } = (await minted.json()) as { token: string };
    const r = await fetch(streamUrl(id, `?start=1&end=2&token=${token}`), { headers: { range: "bytes=0-3" } });
    expect(r.status).toBe(206);
    expect(r.headers.get("cache-control")).toBe("private, max-age=3600");
    expect((await fetch(streamUrl(`${id}.mp4`, `?start=1&end=2`))).status).toBe(403);
  });
});

describe("the clip header cache (CLIP_HEADER_CACHE_BYTES)", () => {
  const metricsOf = async (s: TestSpool) => (await fetch(`${s.url}/metrics`, { headers: AUTH })).text();
  const lookups = (text: string, cache: string, result: string) =>
    Number(new RegExp(`^spool_cache_lookups_total\\{cache="${cache}",result="${result}"\\} (\\d+)$`, "m").exec(text)?.[1]);
  const held = (text: string) => Number(/^spool_clip_header_cache_bytes (\d+)$/m.exec(text)?.[1]);
  const delta = (before: string, after: string, cache: string, result: string) => lookups(after, cache, result) - lookups(before, cache, result);
  const intervals = ["?start=1&end=2", "?start=2.5&end=3", "?start=3.3&end=6.1", "?start=4", "?start=0.5&end=7", "?start=6&end=7.5"];

  test("new intervals of a video asked at the same moment read and parse its moov once", async () => {
    const { id } = await ingest(sources.bframes, { title: "Fresh moov", originalFilename: "fresh.mp4" });
    const before = await metricsOf(spool);
    const answers = await Promise.all(intervals.map(async (q) => ({ q, response: await fetch(streamUrl(id, q)) })));
    for (const { response } of answers) expect(response.status).toBe(200);
    // Each clip is the one asked for: the same bytes as when asked again alone (now cached).
    for (const { q, response } of answers) expect(Buffer.from(await bytesOf(response)).equals(Buffer.from(await bytesOf(await fetch(streamUrl(id, q)))))).toBe(true);
    const after = await metricsOf(spool);
    expect(delta(before, after, "clip_moovs", "miss")).toBe(1);
    expect(delta(before, after, "clip_moovs", "hit")).toBe(intervals.length - 1);
    expect(delta(before, after, "clip_headers", "miss")).toBe(intervals.length);
    expect(delta(before, after, "clip_headers", "hit")).toBe(intervals.length);
    expect(held(after)).toBeGreaterThan(held(before));
    expect(held(after)).toBeLessThanOrEqual(64 * 1024 * 1024);
  });

  test("intervals past the end are refused without a cache entry each: a client cannot fill the cache with refusals", async () => {
    const { id } = await ingest(sources.gop, { title: "Past the end", originalFilename: "p.mp4" });
    await fetch(streamUrl(id, "?start=1&end=2")); // the moov is parsed and held once
    const before = await metricsOf(spool);
    for (let i = 0; i < 40; i++) await expectError(await fetch(streamUrl(id, `?start=${100 + i}.25&end=${200 + i}`)), 400, "clip_out_of_range");
    const after = await metricsOf(spool);
    expect(held(after)).toBe(held(before));
    expect(delta(before, after, "clip_moovs", "hit")).toBe(40);
  });

  test("0 keeps nothing: every clip request reads the moov again, and answers the same bytes", async () => {
    const bare = await startTestSpool({ jobKinds: ["ingest"], clipHeaderCacheBytes: 0, clipCacheBytes: 0 });
    try {
      const ctx = bare.ctx as unknown as { ingest?: Partial<Ingests>; library: Partial<Ingests> };
      const { id } = await (ctx.ingest?.ingestPath ? ctx.ingest : ctx.library).ingestPath!(sources.gop, { title: "No cache", originalFilename: "n.mp4" });
      const query = "?start=3.3&end=6.1";
      const expected = Buffer.from(await bytesOf(await fetch(streamUrl(ids.gop, query))));
      const before = await metricsOf(bare);
      for (let i = 0; i < 2; i++) {
        const response = await fetch(`${bare.url}/api/stream/${id}${query}`);
        expect(response.status).toBe(200);
        expect(Buffer.from(await bytesOf(response)).equals(expected)).toBe(true);
      }
      const after = await metricsOf(bare);
      expect(delta(before, after, "clip_moovs", "miss")).toBe(2);
      expect(delta(before, after, "clip_headers", "miss")).toBe(2);
      expect(held(after)).toBe(0);
    } finally {
      await bare.stop();
    }
  });
});
