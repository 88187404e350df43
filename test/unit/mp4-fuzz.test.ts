/**
 * Hostile `moov`s: real ffmpeg files truncated and bit-flipped (seeded, so a failure repeats).
 * The parser and the clip writer must refuse with Mp4Error / ClipRangeError (4xx upstream) or
 * produce a clip whose media span lies inside the file: never another exception (an index out
 * of bounds, a RangeError from a DataView), never an allocation the file does not justify.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { Mp4Error } from "../../src/media/mp4/boxes.ts";
import { ClipRangeError, planClip, writeClip } from "../../src/media/mp4/clip.ts";
import { readMovieFile } from "../../src/media/mp4/file.ts";
import { parseMovie } from "../../src/media/mp4/movie.ts";
import { makeBframesVideo, tempPath } from "../helpers/clips.ts";
import { makeVideo } from "../helpers/media.ts";
import { audio, bframeVideo, synthesize } from "../helpers/mp4.ts";

/** Park-Miller, as the bench uses: same seed, same mutations. */
function prng(seed: number): () => number {
  let state = seed % 2147483647 || 1;
  return () => (state = (state * 48271) % 2147483647) / 2147483647;
}

interface Source {
  name: string;
  file: Uint8Array;
  moovStart: number;
  moovEnd: number;
}

const sources: Source[] = [];

function findMoov(file: Uint8Array): [number, number] {
  const view = new DataView(file.buffer, file.byteOffset);
  for (let at = 0; at + 8 <= file.length; ) {
    const size = view.getUint32(at);
    if (String.fromCharCode(...file.subarray(at + 4, at + 8)) === "moov") return [at, at + size];
    at += size;
  }
  throw new Error("no moov");
}

beforeAll(async () => {
  const made = [
    ["A/V, 2 s GOP", await makeVideo({ seconds: 4, keyframeInterval: 50 })],
    ["B-frames", await makeBframesVideo(4)],
  ] as const;
  for (const [name, path] of made) {
    const file = new Uint8Array(await Bun.file(path).arrayBuffer());
    const [moovStart, moovEnd] = findMoov(file);
    sources.push({ name, file, moovStart, moovEnd });
  }
}, 60_000);

/** Cuts a few intervals from a (possibly broken) moov; returns how it ended. */
function attempt(moov: Uint8Array, fileSize: number): "clip" | "refused" {
  try {
    const movie = parseMovie(moov);
    for (const [start, end] of [[0.5, 1.7], [2.2, undefined], [0, 0.3]] as const) {
      try {
        const layout = writeClip(movie, planClip(movie, start, end), undefined, fileSize);
        expect(layout.dataEnd).toBeLessThanOrEqual(fileSize);
        expect(layout.dataStart).toBeGreaterThanOrEqual(0);
        expect(layout.size).toBe(layout.header.length + layout.dataEnd - layout.dataStart);
        // The header is built from the tables the moov holds: never much bigger than it.
        expect(layout.header.length).toBeLessThanOrEqual(moov.length * 9 + 4096);
      } catch (error) {
        if (!(error instanceof ClipRangeError) && !(error instanceof Mp4Error)) throw error;
      }
    }
    return "clip";
  } catch (error) {
    if (error instanceof Mp4Error) return "refused";
    throw error;
  }
}

describe("bit flips in the moov", () => {
  for (const index of [0, 1]) {
    test(`source ${index}: 1500 mutants, each refused or cut within the file`, () => {
      const { file, moovStart, moovEnd } = sources[index]!;
      const random = prng(1234 + index);
      const outcomes = { clip: 0, refused: 0 };
      for (let i = 0; i < 1500; i++) {
        const moov = file.slice(moovStart, moovEnd);
        const flips = 1 + Math.floor(random() * 4);
        for (let f = 0; f < flips; f++) {
          const at = Math.floor(random() * moov.length);
          // Either one bit, or a whole byte set to an extreme (0x00 or 0xff) to hit counts and sizes.
          if (random() < 0.5) moov[at]! ^= 1 << Math.floor(random() * 8);
          else moov[at] = random() < 0.5 ? 0xff : 0x00;
        }
        outcomes[attempt(moov, file.length)]++;
      }
      // Both outcomes happen: the mutations reach the tables, not only the padding.
      expect(outcomes.refused).toBeGreaterThan(50);
      expect(outcomes.clip).toBeGreaterThan(50);
    });
  }
});

describe("hostile numbers in the sample tables", () => {
  /** Where each table box's entries start in the moov (after its full-box header and entry count). */
  function tableEntries(moov: Uint8Array): number[] {
    const starts: number[] = [];
    const text = String.fromCharCode(...moov);
    for (const type of ["stts", "ctts", "stss", "stsc", "stsz", "stco"]) {
      for (let at = text.indexOf(type); at >= 0; at = text.indexOf(type, at + 1)) starts.push(at + 4 + 4 + (type === "stsz" ? 8 : 4));
    }
    return starts;
  }

  // The two ffmpeg files, and a synthetic movie with a second video track (a track other than
  // the one the cut is timed by, with sync samples of its own: where a sync sample past the
  // end once made a negative cut).
  const cases = [
    { name: "source 0", moov: () => sources[0]!.file.slice(sources[0]!.moovStart, sources[0]!.moovEnd), fileSize: () => sources[0]!.file.length },
    { name: "source 1", moov: () => sources[1]!.file.slice(sources[1]!.moovStart, sources[1]!.moovEnd), fileSize: () => sources[1]!.file.length },
    { name: "two video tracks and audio", moov: () => synthesize([bframeVideo(), audio(), bframeVideo({ sync: [50] })], 10_000), fileSize: () => 10_000_000 },
  ];
  for (const [index, c] of cases.entries()) {
    test(`${c.name}: 3000 mutants with 32-bit entries set to edge values, each refused or cut within the file`, () => {
      const original = c.moov();
      const fileSize = c.fileSize();
      const movie = parseMovie(original);
      // Counts of this very file, and one either side: what off-by-one checks are about.
      const counts = movie.tracks.flatMap((t) => [t.tables.sizes.count, t.tables.chunkOffsets.byteLength >>> 2]);
      const edges = [0, 1, 2, 0x7fffffff, 0x80000000, 0xffffffff, ...counts.flatMap((n) => [n - 1, n, n + 1])];
      const starts = tableEntries(original);
      const random = prng(99 + index);
      const outcomes = { clip: 0, refused: 0 };
      for (let i = 0; i < 3000; i++) {
        const moov = original.slice();
        const view = new DataView(moov.buffer);
        for (let k = 1 + Math.floor(random() * 2); k > 0; k--) {
          // The first entries more often: a one-entry table's only entry, a first run's count.
          const at = starts[Math.floor(random() * starts.length)]! + 4 * Math.floor(random() ** 2 * 12);
          if (at + 4 <= moov.length) view.setUint32(at, random() < 0.7 ? edges[Math.floor(random() * edges.length)]! >>> 0 : Math.floor(random() * 2 ** 32));
        }
        outcomes[attempt(moov, fileSize)]++;
      }
      expect(outcomes.refused).toBeGreaterThan(100);
      expect(outcomes.clip).toBeGreaterThan(100);
    });
  }
});

describe("truncation", () => {
  test("every truncated moov is refused with Mp4Error", () => {
    const { file, moovStart, moovEnd } = sources[1]!;
    const moov = file.slice(moovStart, moovEnd);
    for (let cut = 0; cut < moov.length; cut += 7) {
      const piece = moov.slice(0, cut);
      expect(() => parseMovie(piece)).toThrow(Mp4Error);
    }
  });

  test("truncated files: readMovieFile refuses them, or cuts only inside what is left", async () => {
    const { file } = sources[0]!;
    const path = tempPath("mp4");
    for (const fraction of [0.01, 0.1, 0.5, 0.9, 0.999]) {
      const length = Math.floor(file.length * fraction);
      writeFileSync(path, file.subarray(0, length));
      try {
        const { movie } = await readMovieFile(path, length);
        expect(attempt(movie.bytes, length)).toBe("clip");
      } catch (error) {
        expect(error).toBeInstanceOf(Mp4Error);
      }
    }
  });

  test("a moov claiming 64-bit sizes and counts past the file is refused without allocating them", () => {
    const moov = new Uint8Array(64);
    const view = new DataView(moov.buffer);
    view.setUint32(0, 1);
    moov.set(new TextEncoder().encode("moov"), 4);
    view.setBigUint64(8, 2n ** 62n);
    expect(() => parseMovie(moov)).toThrow(Mp4Error);
    // A plain moov whose stts claims 2^32-1 entries in a 24-byte body.
    const w = new Uint8Array([0, 0, 0, 0x20, ...new TextEncoder().encode("moov"), 0, 0, 0, 0x18, ...new TextEncoder().encode("stts"), 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1]);
    expect(() => parseMovie(w)).toThrow(Mp4Error);
  });
});
