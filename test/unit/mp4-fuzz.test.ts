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
