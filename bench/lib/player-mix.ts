/**
 * The player-start mix (issue 15): what browsers send when viewers open videos of a library
 * where a few videos get most of the views. Each player start picks a video by Zipf popularity
 * (s = 1 over the library, rank 1 the most popular) and asks for:
 *
 *   1. `Range: bytes=0-1`          Safari's probe;
 *   2. `Range: bytes=0-262143`     the player's first read: Chrome sends `bytes=0-` and reads the
 *                                  moov and first frames, then cancels or asks for the next range;
 *                                  a closed-loop generator cannot abort a body, and reading whole
 *                                  multi-MiB files would make this a download benchmark, so the
 *                                  suite asks for the first 256 KiB (the `moov` of these files is
 *                                  4-12 KiB; a player buffers a few hundred KiB before it plays);
 *   3. 2-4 seeks                   `bytes=a-b` of 64-256 KiB at uniform offsets of that video.
 *
 * The list is computed here, from the shared seeded PRNG, and written to a file that
 * bench/wrk/mix.lua (and the autocannon runner) replay in order, so the generator does no work per
 * request beyond indexing, and every target gets the identical sequence. wrk hands the next
 * request to whichever connection is free, so the connections share one stream of player starts
 * rather than each being one viewer; the server sees the same requests in the same order.
 */
import { writeFileSync } from "node:fs";
import { ParkMiller } from "./prng.ts";

export const MIX_ZIPF_S = 1;
export const MIX_HEAD_BYTES = 256 * 1024;
export const MIX_SEEK_MIN = 64 * 1024;
export const MIX_SEEK_MAX = 256 * 1024;
/** Requests in one list; a run that gets through them starts over (wrk at ~20k req/s for 2 s: ~40k). */
export const MIX_LENGTH = 60_000;

export interface MixRequest {
  /** Index into the library (0 = the most popular). */
  video: number;
  start: number;
  /** Inclusive. */
  end: number;
}

/** Cumulative Zipf(s) weights over n ranks, normalised to 1. */
export function zipfCdf(n: number, s = MIX_ZIPF_S): number[] {
  const w = Array.from({ length: n }, (_, i) => 1 / (i + 1) ** s);
  const total = w.reduce((a, b) => a + b, 0);
  let acc = 0;
  return w.map((x) => (acc += x / total));
}

/** The mix for `sizes` (bytes of each library video, by popularity rank), `length` requests long. */
export function buildMix(sizes: number[], seed: number, length = MIX_LENGTH): MixRequest[] {
  const rng = new ParkMiller(seed);
  const cdf = zipfCdf(sizes.length);
  const out: MixRequest[] = [];
  const SCALE = 1_000_000_000;
  while (out.length < length) {
    const u = rng.below(SCALE) / SCALE;
    let lo = 0;
    let hi = cdf.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cdf[mid] as number) > u) hi = mid;
      else lo = mid + 1;
    }
    const video = lo;
    const size = sizes[video] as number;
    out.push({ video, start: 0, end: Math.min(1, size - 1) });
    out.push({ video, start: 0, end: Math.min(MIX_HEAD_BYTES, size) - 1 });
    const seeks = 2 + rng.below(3);
    for (let k = 0; k < seeks; k++) {
      const len = Math.min(size, MIX_SEEK_MIN + rng.below(MIX_SEEK_MAX - MIX_SEEK_MIN + 1));
      const start = rng.below(size - len + 1);
      out.push({ video, start, end: start + len - 1 });
    }
  }
  return out.slice(0, length);
}

/** `<video> <start> <end>` per line: what bench/wrk/mix.lua reads. */
export function writeMix(file: string, mix: MixRequest[]): void {
  writeFileSync(file, `${mix.map((r) => `${r.video} ${r.start} ${r.end}`).join("\n")}\n`);
}

/** One URL path per line, line i for library video i: the target's own paths. */
export function writePaths(file: string, paths: string[]): void {
  writeFileSync(file, `${paths.join("\n")}\n`);
}

/** Body bytes of the first `n` requests of a list replayed from the start (wrapping around). */
export function bodyBytes(mix: MixRequest[], n: number): number {
  if (n <= 0 || !mix.length) return 0;
  const lens = mix.map((r) => r.end - r.start + 1);
  const full = lens.reduce((a, b) => a + b, 0);
  const whole = Math.floor(n / mix.length);
  let sum = whole * full;
  for (let i = 0; i < n % mix.length; i++) sum += lens[i] as number;
  return sum;
}

/**
 * Bounds on the bytes a generator can have received after `requests` completed answers with
 * `connections` connections replaying `mix` in order: the completed answers are `requests` of the
 * first `requests + connections` sent (at most `connections` are in flight, and may be partly
 * read when the run ends), each with at most `headerBytes` of headers. Loose on purpose: it is
 * there to catch a 200 with the whole file or answers of the wrong length, not to count bytes.
 */
export function mixByteBounds(mix: MixRequest[], requests: number, connections: number, headerBytes = 2048): [number, number] {
  return [bodyBytes(mix, requests) - connections * MIX_SEEK_MAX, bodyBytes(mix, requests + connections) + headerBytes * (requests + connections)];
}

/** Share of the starts that go to the `k` most popular videos (for the docs and the log). */
export function topShare(n: number, k: number, s = MIX_ZIPF_S): number {
  return zipfCdf(n, s)[Math.min(n, k) - 1] as number;
}
