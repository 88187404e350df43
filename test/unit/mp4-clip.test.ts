/**
 * The clip arithmetic on synthetic sample tables, table-driven: run-length cuts, chunk cuts with
 * variable stsc runs, co64, B-frames (ctts), several tracks, edit lists already present.
 */
import { describe, expect, test } from "bun:test";
import { Mp4Error, childBoxes } from "../../src/media/mp4/boxes.ts";
import { planClip, writeClip, ClipRangeError } from "../../src/media/mp4/clip.ts";
import { movieCost } from "../../src/media/mp4/file.ts";
import { audio, bframeVideo, synthesize, type SyntheticTrack } from "../helpers/mp4.ts";
import { parseMovie, type Movie } from "../../src/media/mp4/movie.ts";
import { chunkOffset, indexStsc, sliceChunks, sliceRuns, sliceStss, type SampleTables } from "../../src/media/mp4/sample-tables.ts";

describe("sliceRuns", () => {
  const counts = [3, 2, 4];
  const values = [10, 20, 10];
  const first = [0, 3, 5];
  const cases: [number, number, number[], number[]][] = [
    [0, 9, [3, 2, 4], [10, 20, 10]],
    [1, 4, [2, 1], [10, 20]],
    [3, 5, [2], [20]],
    [4, 6, [1, 1], [20, 10]],
    [5, 9, [4], [10]],
    [8, 9, [1], [10]],
  ];
  for (const [a, b, c, v] of cases) {
    test(`[${a}, ${b})`, () => expect(sliceRuns(counts, values, first, a, b)).toEqual({ counts: c, values: v }));
  }
  test("adjacent runs with one value merge", () => expect(sliceRuns([2, 2], [5, 5], [0, 2], 1, 4)).toEqual({ counts: [3], values: [5] }));
});

describe("sliceStss", () => {
  const sync = Uint32Array.from([0, 50, 100, 150]);
  const cases: [number, number, number[]][] = [
    [0, 200, [0, 50, 100, 150]],
    [50, 120, [0, 50]],
    [51, 150, [49]],
    [151, 200, []],
  ];
  for (const [a, b, expected] of cases) test(`[${a}, ${b})`, () => expect(sliceStss(sync, a, b)).toEqual(expected));
});

/** 32-bit big-endian entries, as a box holds them. */
function bigEndian(values: number[]): DataView {
  const view = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((v, i) => view.setUint32(i * 4, v));
  return view;
}

/** Tables for `sizes` samples in chunks laid out by stsc runs [firstChunk (0-based), perChunk, desc]. */
function tables(sizes: number[], runs: [number, number, number][], offsets: number[]): SampleTables {
  const column = (i: number) => Uint32Array.from(runs, (r) => r[i]!);
  const stsc = { firstChunk: column(0), perChunk: column(1), descIndex: column(2), firstSample: new Uint32Array(0) };
  indexStsc(stsc, offsets.length, sizes.length);
  return {
    stts: { counts: Uint32Array.of(sizes.length), deltas: Uint32Array.of(1), firstSample: Uint32Array.of(0), firstDts: Float64Array.of(0), sampleCount: sizes.length, duration: sizes.length },
    stsc,
    sizes: { constant: 0, count: sizes.length, table: bigEndian(sizes) },
    chunkOffsets: Float64Array.from(offsets),
    co64: false,
    sbgp: [],
  };
}

describe("sliceChunks", () => {
  // Ten samples of 10 bytes: chunks of 3, 3, then 2, 2 (descriptions 1, 1, 2, 2), far apart.
  const t = tables(Array(10).fill(10), [[0, 3, 1], [2, 2, 2]], [1000, 2000, 3000, 4000]);
  const cases: [string, number, number, Partial<ReturnType<typeof sliceChunks>>][] = [
    ["everything", 0, 10, { offsets: [1000, 2000, 3000, 4000], stsc: { firstChunk: [0, 2], perChunk: [3, 2], descIndex: [1, 2] }, dataStart: 1000, dataEnd: 4020 }],
    ["from inside the first chunk", 1, 10, { offsets: [1010, 2000, 3000, 4000], stsc: { firstChunk: [0, 1, 2], perChunk: [2, 3, 2], descIndex: [1, 1, 2] }, dataStart: 1010 }],
    ["inside one chunk", 4, 5, { offsets: [2010], stsc: { firstChunk: [0], perChunk: [1], descIndex: [1] }, dataStart: 2010, dataEnd: 2020 }],
    ["across a run boundary", 5, 9, { offsets: [2020, 3000, 4000], stsc: { firstChunk: [0, 1, 2], perChunk: [1, 2, 1], descIndex: [1, 2, 2] }, dataStart: 2020, dataEnd: 4010 }],
  ];
  for (const [name, a, b, expected] of cases) test(name, () => expect(sliceChunks(t, a, b)).toMatchObject(expected));

  test("one chunk of 40 M samples of one size (stsz's constant): the sizes are multiplied, not summed one by one", () => {
    const n = 40_000_000;
    let reads = 0;
    const sizes = { get constant() { reads++; return 3; }, count: n, table: new DataView(new ArrayBuffer(0)) };
    const one = { ...tables([], [[0, n, 1]], [1000]), sizes };
    one.stsc.firstSample = Uint32Array.of(0);
    one.stts = { ...one.stts, counts: Uint32Array.of(n), sampleCount: n, duration: n };
    expect(sliceChunks(one, 20_000_000, 20_000_010)).toMatchObject({ offsets: [1000 + 60_000_000], dataStart: 60_001_000, dataEnd: 60_001_030 });
    expect(reads).toBeLessThan(10);
  });
});

describe("planClip on synthetic movies", () => {
  const cases: { name: string; tracks: SyntheticTrack[]; start: number; end?: number; expect: { start: number; cuts: [number, number, number][] } }[] = [
    // Video: the frame shown at 3.35 s is sample 34 (pts 3400, 3.3 s after the 100-tick edit); it
    // decodes from key frame 20 (dts 2000), so the new edit starts 1400 ticks in. The end keeps
    // every sample decoded before 5.1 s (pts may exceed it: the edit hides them). Audio starts one
    // frame (pre-roll) before 3.3 s: sample 32, 100 ticks hidden.
    { name: "B-frames, mid-GOP start, with audio", tracks: [bframeVideo(), audio()], start: 3.35, end: 5, expect: { start: 3.3, cuts: [[20, 51, 1400], [32, 50, 100]] } },
    { name: "start on a key frame", tracks: [bframeVideo(), audio()], start: 4, end: 6, expect: { start: 4, cuts: [[40, 61, 100], [39, 60, 100]] } },
    { name: "to the end", tracks: [bframeVideo(), audio()], start: 9.05, expect: { start: 9.0, cuts: [[80, 100, 1100], [89, 100, 100]] } },
    { name: "co64 offsets", tracks: [bframeVideo({ co64: true, offsets: Array.from({ length: 20 }, (_, i) => 2 ** 33 + i * 1000) })], start: 1, end: 2, expect: { start: 1, cuts: [[0, 21, 1100]] } },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const movie = parseMovie(synthesize(c.tracks, 10_000));
      const plan = planClip(movie, c.start, c.end);
      expect(plan.start).toBeCloseTo(c.expect.start, 6);
      expect(plan.tracks.map((t) => [t.a, t.b, t.mediaTime])).toEqual(c.expect.cuts);
      for (const t of plan.tracks) expect(t.editDuration).toBe(Math.round(((c.end ?? 10) - plan.start) * 1000));
    });
  }

  test("the written header parses back, with every offset moved by the same amount", () => {
    const tracks = [bframeVideo(), audio()];
    const movie = parseMovie(synthesize(tracks, 10_000));
    const plan = planClip(movie, 3.35, 5);
    const layout = writeClip(movie, plan, undefined, 200_000);
    const moovLength = new DataView(layout.header.buffer).getUint32(0);
    const back = parseMovie(layout.header.subarray(0, moovLength));
    const shift = layout.header.length - layout.dataStart;
    expect(back.tracks.map((t) => t.tables.stts.sampleCount)).toEqual([31, 18]);
    expect(chunkOffset(back.tracks[0]!.tables.chunkOffsets, 0)).toBe(plan.tracks[0]!.chunks.offsets[0]! + shift);
    expect([...back.tracks[0]!.tables.stss!]).toEqual([0, 20]);
    expect(back.tracks.map((t) => t.timeline)).toEqual([{ emptyBefore: 0, mediaTime: 1400 }, { emptyBefore: 0, mediaTime: 100 }]);
    expect(back.tracks.map((t) => t.tables.co64)).toEqual([false, false]);
  });

  test("co64 in, offsets past 4 GiB in the clip: co64 out", () => {
    const far = bframeVideo({ co64: true, offsets: Array.from({ length: 20 }, (_, i) => 2 ** 33 + i * 2 ** 30) });
    const movie = parseMovie(synthesize([far], 10_000));
    const layout = writeClip(movie, planClip(movie, 1, 9), undefined, 2 ** 35);
    const back = parseMovie(layout.header.subarray(0, new DataView(layout.header.buffer).getUint32(0)));
    expect(back.tracks[0]!.tables.co64).toBe(true);
    const offsets = back.tracks[0]!.tables.chunkOffsets;
    expect(chunkOffset(offsets, 1) - chunkOffset(offsets, 0)).toBe(2 ** 30);
    expect(chunkOffset(offsets, 0)).toBe(layout.header.length);
  });

  test("a media span past the end of the file is refused", () => {
    const movie = parseMovie(synthesize([bframeVideo()], 10_000));
    expect(() => writeClip(movie, planClip(movie, 1, 2), undefined, 50_000)).toThrow("outside the file");
  });

  test("a key frame that names no sample is refused at parse time (a second track's stss past its end)", () => {
    // Before, the cut of that track came out as samples [110, 100): a corrupt header, or a RangeError (a 500).
    const hostile = bframeVideo({ sync: [110], ctts: undefined });
    expect(() => parseMovie(synthesize([bframeVideo(), hostile], 10_000))).toThrow(Mp4Error);
    expect(() => parseMovie(synthesize([bframeVideo(), { ...hostile, sync: [0, 99] }], 10_000))).not.toThrow();
  });

  test("side tracks outside the video and audio's data are left out, with the references to them", () => {
    // Track 3: a timecode's one sample, at the start of mdat (as ffmpeg writes it), 2 MB before
    // the media. Track 4: subtitles, one 1 s cue per chunk, interleaved with the media. Track 5:
    // chapter titles, also before the media.
    const far = 2_000_000;
    const timecode = { handler: "tmcd", timescale: 1000, deltas: [[1, 10_000]], sizes: [4], stsc: [[1, 1]], offsets: [50_000] } satisfies SyntheticTrack;
    const subtitles = { handler: "text", timescale: 1000, deltas: [[10, 1000]], sizes: Array(10).fill(20), stsc: [[1, 1]], offsets: Array.from({ length: 10 }, (_, i) => far + 100_000 + i * 2000 + 700) } satisfies SyntheticTrack;
    const chapters = { ...timecode, handler: "text", deltas: [[2, 5000]], sizes: [8, 8], offsets: [50_004, 50_012] } satisfies SyntheticTrack;
    const video = bframeVideo({ tref: [["tmcd", [3]], ["chap", [5]], ["subt", [4, 3]]], offsets: bframeVideo().offsets.map((o) => o + far) });
    const movie = parseMovie(synthesize([video, audio({ offsets: audio().offsets.map((o) => o + far) }), timecode, subtitles, chapters], 10_000));

    const late = planClip(movie, 8, 9);
    expect(late.tracks.map((c) => c.track.id)).toEqual([1, 2, 4]);
    expect(late.dataStart).toBe(Math.min(...late.tracks.filter((c) => c.track.id !== 4).map((c) => c.chunks.dataStart)));
    const layout = writeClip(movie, late, undefined, far + 200_000);
    const moov = layout.header.subarray(0, new DataView(layout.header.buffer).getUint32(0));
    const back = parseMovie(moov);
    expect(back.tracks.map((t) => t.handler)).toEqual(["vide", "soun", "text"]);
    const tref = childBoxes(moov, back.tracks[0]!.trak.body, back.tracks[0]!.trak.end).find((b) => b.type === "tref")!;
    const references = childBoxes(moov, tref.body, tref.end).map((b) => [b.type, b.end - b.body, new DataView(moov.buffer, moov.byteOffset).getUint32(b.body)]);
    expect(references).toEqual([["subt", 4, 4]]);

    // From the start too: the timecode and the chapters lie before the media.
    expect(planClip(movie, 0, 1).tracks.map((c) => c.track.id)).toEqual([1, 2, 4]);
    // With no video or audio, nothing is measured against them (the timecode still goes).
    const alone = parseMovie(synthesize([timecode, subtitles], 10_000));
    expect(planClip(alone, 8, 9).tracks.map((c) => c.track.id)).toEqual([2]);
    // Chapters and timecode right beside the media (a small file) are left out all the same:
    // they name the source's times.
    const near = parseMovie(synthesize([video, audio({ offsets: audio().offsets.map((o) => o + far) }), { ...timecode, offsets: [far + 90_000] }, subtitles, { ...chapters, offsets: [far + 90_004, far + 90_012] }], 10_000));
    expect(planClip(near, 8, 9).tracks.map((c) => c.track.id)).toEqual([1, 2, 4]);
    expect(planClip(near, 0, 1).tracks.map((c) => c.track.id)).toEqual([1, 2, 4]);
  });

  test("subtitles whose cue on screen was written before the key frame, or whose closing cue after the last audio, stay: the span widens for them", () => {
    // One cue per 2 s: the one on screen at 6.5 s (6-8 s) lies 250 kB before the media from the
    // 6 s key frame; the closing empty cue lies just past the last audio. 2.5 MB away, the track goes.
    const cues = (sixSeconds: number) => ({ handler: "text", timescale: 1000, deltas: [[5, 2000]], sizes: Array(5).fill(20), stsc: [[1, 1]], offsets: [media - 10_000, media + 1_000, media + 3_000, sixSeconds, media + 120_000] }) satisfies SyntheticTrack;
    const media = 3_000_000;
    const near = cues(media - 240_000);
    const distant = cues(media - 2_500_000);
    const shifted = { video: bframeVideo({ offsets: bframeVideo().offsets.map((o) => o - 100_000 + media) }), sound: audio({ offsets: audio().offsets.map((o) => o - 100_000 + media) }) };
    const movie = parseMovie(synthesize([shifted.video, shifted.sound, near], 10_000));
    const plan = planClip(movie, 6.5, 7.5);
    expect(plan.tracks.map((c) => c.track.handler)).toEqual(["vide", "soun", "text"]);
    expect(plan.tracks[2]!.a).toBe(3);
    expect(plan.dataStart).toBe(media - 240_000);
    // To the end: the last cue, past the audio, is kept.
    expect(planClip(movie, 8.5).tracks.map((c) => c.track.handler)).toEqual(["vide", "soun", "text"]);
    expect(planClip(parseMovie(synthesize([shifted.video, shifted.sound, distant], 10_000)), 6.5, 7.5).tracks.map((c) => c.track.handler)).toEqual(["vide", "soun"]);
  });

  test("start at or past the end: ClipRangeError", () => {
    const movie = parseMovie(synthesize([bframeVideo()], 10_000));
    expect(() => planClip(movie, 10)).toThrow(ClipRangeError);
    expect(() => planClip(movie, 12, 13)).toThrow(ClipRangeError);
  });
});

/** A written clip's durations as its boxes say them: mvhd's, then each track's tkhd and elst entries [duration, media time]. */
function durationsOf(movie: Movie, start: number, end?: number): { mvhd: number; tkhd: number[]; elst: [number, number][][] } {
  const layout = writeClip(movie, planClip(movie, start, end), undefined, 1e12);
  const moov = layout.header.subarray(0, new DataView(layout.header.buffer).getUint32(0));
  const view = new DataView(moov.buffer, moov.byteOffset);
  const back = parseMovie(moov);
  const elst = back.tracks.map((t) => {
    const edts = childBoxes(moov, t.trak.body, t.trak.end).find((b) => b.type === "edts")!;
    const box = childBoxes(moov, edts.body, edts.end).find((b) => b.type === "elst")!;
    return Array.from({ length: view.getUint32(box.body + 4) }, (_, i): [number, number] => [view.getUint32(box.body + 8 + i * 12), view.getInt32(box.body + 12 + i * 12)]);
  });
  return { mvhd: back.duration, tkhd: back.tracks.map((t) => view.getUint32(t.tkhd.body + 20)), elst };
}

describe("a start inside the last frame's display time", () => {
  // 99 frames: decode order ends ... P96 B97 B98, shown ... B97 (9700) B98 (9800) P96 (9900-10000).
  // The last sample decoded (B98) ends at 9800 + 100: before, that was taken for the track's
  // end, so a start shown by P96 (9.8-9.9 s after the 100-tick edit) dropped the video track.
  const video = bframeVideo({ deltas: [[99, 100]], ctts: Array.from({ length: 99 }, (_, i): [number, number] => [1, i % 3 === 0 ? 300 : 0]), sizes: Array(99).fill(100), edits: [[9900, 100]] });
  const movie = parseMovie(synthesize([video, audio({ edits: [[9900, 0]] })], 9900));
  const videoOnly = parseMovie(synthesize([video], 9900));
  const cases: [string, Movie, number, number | undefined, [number, number, number][]][] = [
    // [name, movie, start, end, cuts [a, b, mediaTime]]: video from key frame 80, P96 shown 1900 ticks in.
    ["9.8 (the last frame's own time), with audio", movie, 9.8, undefined, [[80, 99, 1900], [97, 99, 100]]],
    ["9.85, with audio", movie, 9.85, undefined, [[80, 99, 1900], [97, 99, 100]]],
    ["9.899 to 9.9, with audio", movie, 9.899, 9.9, [[80, 99, 1900], [97, 99, 100]]],
    ["9.85, video only (was: no samples between 9.85 s and 9.9 s)", videoOnly, 9.85, undefined, [[80, 99, 1900]]],
  ];
  for (const [name, m, start, end, cuts] of cases) {
    test(name, () => {
      const plan = planClip(m, start, end);
      expect(plan.start).toBeCloseTo(9.8, 6);
      expect(plan.tracks.map((t) => [t.a, t.b, t.mediaTime])).toEqual(cuts);
      // The last frame, on screen 9.8-9.9 s: 100 ms.
      expect(plan.tracks.map((t) => t.editDuration)).toEqual(cuts.map(() => 100));
      expect(plan.duration).toBe(100);
    });
  }
});

describe("the movie's user data", () => {
  /** The moov with a `udta` of these boxes appended (each [type, body bytes]); `raw` replaces its body. */
  function withUserData(moov: Uint8Array, boxes: [string, number[]][], raw?: number[]): Uint8Array {
    const body = raw ?? boxes.flatMap(([type, data]) => [...u32(8 + data.length), ...new TextEncoder().encode(type), ...data]);
    const udta = [...u32(8 + body.length), ...new TextEncoder().encode("udta"), ...body];
    const out = new Uint8Array([...moov, ...udta]);
    new DataView(out.buffer).setUint32(0, out.length);
    return out;
  }
  const u32 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  const userBoxes = (movie: Movie): string[] => {
    const layout = writeClip(movie, planClip(movie, 2, 3), undefined, 1e6);
    const moov = layout.header.subarray(0, new DataView(layout.header.buffer).getUint32(0));
    const udta = childBoxes(moov, 8, moov.length).find((b) => b.type === "udta");
    return udta ? childBoxes(moov, udta.body, udta.end).map((b) => b.type) : [];
  };
  const plain = synthesize([bframeVideo(), audio()], 10_000);
  test("Nero chapters (chpl) are left out, with the source's times; the rest is kept", () => {
    expect(userBoxes(parseMovie(withUserData(plain, [["chpl", [1, 0, 0, 0, 0]], ["titl", [65, 66]]])))).toEqual(["titl"]);
  });
  test("user data of chapters only: no udta at all", () => {
    expect(userBoxes(parseMovie(withUserData(plain, [["chpl", [1, 0, 0, 0, 0]]])))).toEqual([]);
  });
  test("user data that is not boxes: the clip goes without it", () => {
    expect(userBoxes(parseMovie(withUserData(plain, [], [0, 0, 0, 99, 1, 2])))).toEqual([]);
  });
});

describe("a video track that ends before the sound", () => {
  // 4 s of video (frames 0-39, shown until 4.0 s after the 100-tick edit) and 10 s of audio.
  const short = bframeVideo({ deltas: [[40, 100]], ctts: bframeVideo().ctts!.slice(0, 40), sync: [0, 20], sizes: Array(40).fill(100), offsets: Array.from({ length: 8 }, (_, i) => 100_000 + i * 1000), edits: [[4000, 100]] });
  const movie = parseMovie(synthesize([short, audio()], 10_000));
  test("a clip after the video's end starts at `start`, with the sound alone (was: back at the last frame's time, a longer clip)", () => {
    const plan = planClip(movie, 8, 9);
    expect(plan.start).toBe(8);
    // Audio from 7.9 s (one frame of pre-roll), hidden by the edit.
    expect(plan.tracks.map((t) => [t.track.handler, t.a, t.b, t.mediaTime, t.editDuration])).toEqual([["soun", 79, 90, 100, 1000]]);
    expect(plan.duration).toBe(1000);
  });
  test("a start before the video's end still snaps to the frame on screen", () => {
    // P36 (pts 3900, shown from 3.8 s) is on screen until P39 (pts 4200, 4.1 s).
    const plan = planClip(movie, 3.95, 5);
    expect(plan.start).toBeCloseTo(3.8, 6);
    expect(plan.tracks.map((t) => t.track.handler)).toEqual(["vide", "soun"]);
  });
});

describe("an interval shorter than a movie tick", () => {
  // A movie of 1000 ticks a second: 0.1 ms rounded to 0 before, an edit of duration 0 ("the rest
  // of the media" to some players, nothing to ffmpeg). Now one tick, in mvhd, tkhd and elst alike.
  const movie = parseMovie(synthesize([bframeVideo(), audio()], 10_000));
  const cases: [number, number, number][] = [
    // [start, end, video key frame]: starts on a frame boundary (5.0 s is frame 51's pts 5100).
    [5, 5.0001, 40],
    [5, 5.000001, 40],
    [3.3, 3.3001, 20],
    [9, 9.000001, 80],
  ];
  for (const [start, end, key] of cases) {
    test(`${start}-${end}: the frame at start, for one tick`, () => {
      const plan = planClip(movie, start, end);
      expect(plan.start).toBeCloseTo(start, 3);
      expect(plan.tracks[0]!.a).toBe(key);
      // The frame shown at start is among the kept samples, and the edit starts on it.
      const shownAt = 100 + Math.floor(plan.start * 1000 + 1e-6);
      const [t] = plan.tracks;
      expect(t!.b).toBeGreaterThan(Math.round((shownAt - 100) / 100));
      expect(t!.mediaTime).toBe(shownAt - key * 100);
      expect(durationsOf(movie, start, end)).toEqual({ mvhd: 1, tkhd: [1, 1], elst: [[[1, t!.mediaTime]], [[1, plan.tracks[1]!.mediaTime]]] });
    });
  }
  test("a 10 ms interval keeps its 10 ticks", () => expect(durationsOf(movie, 5, 5.01)).toMatchObject({ mvhd: 10, tkhd: [10, 10] }));
});

describe("the work of a plan is bounded by the composition offsets' spread, not the track's length", () => {
  const count = 40_000_000;
  // An ffprobe-clean audio track: 40 M samples of 1 tick, one size, one chunk.
  const crafted = (ctts: [number, number][]): SyntheticTrack => ({
    handler: "soun",
    timescale: 48_000,
    deltas: [[count, 1]],
    ctts,
    sizes: [],
    constantSize: 1,
    sampleCount: count,
    stsc: [[1, count]],
    offsets: [1000],
  });
  const seconds = Math.floor((count / 48_000) * 1000);

  test("every sample shown 2^31 - 1 ticks late: a few samples looked at, not 20 M walked back", () => {
    const movie = parseMovie(synthesize([crafted([[count, 0x7fffffff]])], seconds));
    for (const start of [1, 400, 800]) expect(planClip(movie, start, start + 1).visited).toBeLessThan(10);
  });

  test("one sample 2^31 - 1 ticks late among 40 M: refused (Mp4Error, 422 clip_unsupported), not scanned", () => {
    const movie = parseMovie(synthesize([crafted([[1, 0x7fffffff], [count - 1, 0]])], seconds));
    expect(() => planClip(movie, 400, 401)).toThrow(Mp4Error);
    expect(() => planClip(movie, 400, 401)).toThrow("composition offsets reorder samples across more than");
  });

  test("a long GOP (one key frame in 200,000 B-frame video frames) is cut with a few samples looked at", () => {
    const n = 200_000;
    const long = bframeVideo({
      deltas: [[n, 100]],
      ctts: Array.from({ length: n }, (_, i): [number, number] => [1, i % 3 === 0 ? 300 : 0]),
      sync: [0],
      sizes: [],
      constantSize: 100,
      sampleCount: n,
      stsc: [[1, n]],
      offsets: [100_000],
      edits: [[n * 100 - 100, 100]],
    });
    const movie = parseMovie(synthesize([long], n * 100 - 100));
    const plan = planClip(movie, 19_000.05, 19_001);
    expect(plan.start).toBeCloseTo(19_000, 6);
    // The frame shown at 19,000 s (media 19,000,100: sample 190,001), decoded from sample 0.
    expect(plan.tracks.map((t) => [t.a, t.mediaTime, t.editDuration])).toEqual([[0, 19_000_100, 1000]]);
    expect(plan.visited).toBeLessThan(20);
  });
});

describe("a parsed movie's tables and their cost", () => {
  // 40,000 samples of distinct sizes in 8,000 chunks: stsz holds 160 kB and stco 32 kB.
  const n = 40_000;
  const track = bframeVideo({
    deltas: [[n, 100]],
    ctts: undefined,
    sync: [0],
    sizes: Array.from({ length: n }, (_, i) => 100 + (i % 997)),
    stsc: [[1, 5]],
    offsets: Array.from({ length: n / 5 }, (_, i) => 100_000 + i * 60_000),
    edits: undefined,
  });
  const bytes = synthesize([track], n * 100);
  const movie = parseMovie(bytes);
  const tables = movie.tracks[0]!.tables;

  test("stsz and stco are read in place: every size and offset as written", () => {
    expect(tables.sizes.table.buffer).toBe(bytes.buffer);
    expect(tables.chunkOffsets.buffer).toBe(bytes.buffer);
    for (const i of [0, 1, 996, 997, n - 1]) expect(tables.sizes.table.getUint32(i * 4)).toBe(100 + (i % 997));
    for (const i of [0, 1, n / 5 - 1]) expect(chunkOffset(tables.chunkOffsets, i)).toBe(100_000 + i * 60_000);
  });

  test("the cost counts the moov once, not again for the tables read in place", () => {
    const cost = movieCost(movie);
    expect(cost).toBeGreaterThanOrEqual(bytes.length);
    // Counting the two views again would add 192 kB; the run tables and objects add a few kB.
    expect(cost - bytes.length).toBeLessThan(16 * 1024);
  });
});
