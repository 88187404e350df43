/**
 * The clip arithmetic on synthetic sample tables, table-driven: run-length cuts, chunk cuts with
 * variable stsc runs, co64, B-frames (ctts), several tracks, edit lists already present.
 */
import { describe, expect, test } from "bun:test";
import { Mp4Error, childBoxes } from "../../src/media/mp4/boxes.ts";
import { planClip, writeClip, ClipRangeError } from "../../src/media/mp4/clip.ts";
import { movieCost } from "../../src/media/mp4/file.ts";
import { audio, bframeVideo, synthesize, type SyntheticTrack } from "../helpers/mp4.ts";
import { parseMovie } from "../../src/media/mp4/movie.ts";
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
    // Track 3: a timecode's one sample, at the start of mdat (as ffmpeg writes it). Track 4:
    // subtitles, one 1 s cue per chunk, interleaved with the media. Track 5: chapter titles,
    // also before the media.
    const timecode = { handler: "tmcd", timescale: 1000, deltas: [[1, 10_000]], sizes: [4], stsc: [[1, 1]], offsets: [50_000] } satisfies SyntheticTrack;
    const subtitles = { handler: "text", timescale: 1000, deltas: [[10, 1000]], sizes: Array(10).fill(20), stsc: [[1, 1]], offsets: Array.from({ length: 10 }, (_, i) => 100_000 + i * 2000 + 700) } satisfies SyntheticTrack;
    const chapters = { ...timecode, handler: "text", deltas: [[2, 5000]], sizes: [8, 8], offsets: [50_004, 50_012] } satisfies SyntheticTrack;
    const video = bframeVideo({ tref: [["tmcd", [3]], ["chap", [5]], ["subt", [4, 3]]] });
    const movie = parseMovie(synthesize([video, audio(), timecode, subtitles, chapters], 10_000));

    const late = planClip(movie, 8, 9);
    expect(late.tracks.map((c) => c.track.id)).toEqual([1, 2, 4]);
    expect(late.dataStart).toBe(Math.min(...late.tracks.filter((c) => c.track.id !== 4).map((c) => c.chunks.dataStart)));
    const layout = writeClip(movie, late, undefined, 200_000);
    const moov = layout.header.subarray(0, new DataView(layout.header.buffer).getUint32(0));
    const back = parseMovie(moov);
    expect(back.tracks.map((t) => t.handler)).toEqual(["vide", "soun", "text"]);
    const tref = childBoxes(moov, back.tracks[0]!.trak.body, back.tracks[0]!.trak.end).find((b) => b.type === "tref")!;
    const references = childBoxes(moov, tref.body, tref.end).map((b) => [b.type, b.end - b.body, new DataView(moov.buffer, moov.byteOffset).getUint32(b.body)]);
    expect(references).toEqual([["subt", 4, 4]]);

    // From the start too: the timecode and the chapters lie before the media.
    expect(planClip(movie, 0, 1).tracks.map((c) => c.track.id)).toEqual([1, 2, 4]);
    // With no video or audio, nothing is measured against them.
    const alone = parseMovie(synthesize([timecode, subtitles], 10_000));
    expect(planClip(alone, 8, 9).tracks.map((c) => c.track.id)).toEqual([1, 2]);
  });

  test("start at or past the end: ClipRangeError", () => {
    const movie = parseMovie(synthesize([bframeVideo()], 10_000));
    expect(() => planClip(movie, 10)).toThrow(ClipRangeError);
    expect(() => planClip(movie, 12, 13)).toThrow(ClipRangeError);
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
