/**
 * Synthetic `moov`s for the MP4 unit tests, written with the library's own box writer: tracks
 * described by their tables (time-to-sample, composition offsets, sync samples, sizes, chunks),
 * so a test states exactly the numbers it is about.
 */
import { Writer } from "../../src/media/mp4/boxes.ts";

export interface SyntheticTrack {
  handler: "vide" | "soun" | "text" | "tmcd";
  timescale: number;
  deltas: [number, number][];
  ctts?: [number, number][];
  sync?: number[];
  sizes: number[];
  /** Every sample this size (stsz's constant): `sizes` then only gives the count, as `sizes.length` or `sampleCount`. */
  constantSize?: number;
  sampleCount?: number;
  /** stsc runs, 1-based first chunk as in the box. */
  stsc: [number, number][];
  offsets: number[];
  co64?: boolean;
  edits?: [number, number][];
  /** Track references: [type, track ids]. */
  tref?: [string, number[]][];
}

function fullBox(w: Writer, type: string, body: () => void, version = 0): void {
  const m = w.beginFull(type, version, 0);
  body();
  w.end(m);
}

function box(w: Writer, type: string, body: () => void): void {
  const m = w.begin(type);
  body();
  w.end(m);
}

/** A moov with mvhd (timescale 1000) and the given tracks. */
export function synthesize(tracks: SyntheticTrack[], movieDuration: number): Uint8Array {
  const w = new Writer();
  box(w, "moov", () => {
    fullBox(w, "mvhd", () => {
      w.u32(0), w.u32(0), w.u32(1000), w.u32(movieDuration);
      for (let i = 0; i < 80; i++) w.u8(0);
    });
    tracks.forEach((t, index) =>
      box(w, "trak", () => {
        fullBox(w, "tkhd", () => {
          w.u32(0), w.u32(0), w.u32(index + 1), w.u32(0), w.u32(movieDuration);
          for (let i = 0; i < 60; i++) w.u8(0);
        });
        if (t.tref) box(w, "tref", () => { for (const [type, ids] of t.tref!) box(w, type, () => { for (const id of ids) w.u32(id); }); });
        if (t.edits) box(w, "edts", () => fullBox(w, "elst", () => {
          w.u32(t.edits!.length);
          for (const [d, m] of t.edits!) w.u32(d), w.i32(m), w.u32(0x10000);
        }));
        box(w, "mdia", () => {
          fullBox(w, "mdhd", () => {
            w.u32(0), w.u32(0), w.u32(t.timescale), w.u32(t.deltas.reduce((n, [c, d]) => n + c * d, 0)), w.u32(0);
          });
          fullBox(w, "hdlr", () => {
            w.u32(0), w.fourcc(t.handler), w.u32(0), w.u32(0), w.u32(0), w.u8(0);
          });
          box(w, "minf", () => box(w, "stbl", () => {
            fullBox(w, "stsd", () => w.u32(0));
            fullBox(w, "stts", () => { w.u32(t.deltas.length); for (const [c, d] of t.deltas) w.u32(c), w.u32(d); });
            if (t.ctts) fullBox(w, "ctts", () => { w.u32(t.ctts!.length); for (const [c, o] of t.ctts!) w.u32(c), w.i32(o); });
            if (t.sync) fullBox(w, "stss", () => { w.u32(t.sync!.length); for (const s of t.sync!) w.u32(s + 1); });
            fullBox(w, "stsc", () => { w.u32(t.stsc.length); for (const [f, n] of t.stsc) w.u32(f), w.u32(n), w.u32(1); });
            if (t.constantSize) fullBox(w, "stsz", () => { w.u32(t.constantSize!), w.u32(t.sampleCount ?? t.sizes.length); });
            else fullBox(w, "stsz", () => { w.u32(0), w.u32(t.sizes.length); for (const s of t.sizes) w.u32(s); });
            fullBox(w, t.co64 ? "co64" : "stco", () => { w.u32(t.offsets.length); for (const o of t.offsets) t.co64 ? w.u64(o) : w.u32(o); });
          }));
        });
      }),
    );
  });
  return w.result();
}

/** 10 s of 10 fps video, GOP of 20 frames, B-frames (I P B B ... with ctts), one chunk per 5 frames. */
export function bframeVideo(extra: Partial<SyntheticTrack> = {}): SyntheticTrack {
  const n = 100;
  // Decode order I0 P3 B1 B2 P6 B4 B5 ...: offsets 1 (shown a frame later, as x264's delay) then 3, 0, 0.
  const ctts: [number, number][] = [];
  for (let i = 0; i < n; i++) ctts.push([1, i % 3 === 0 ? 300 : 0]);
  return {
    handler: "vide",
    timescale: 1000,
    deltas: [[n, 100]],
    ctts,
    sync: [0, 20, 40, 60, 80],
    sizes: Array(n).fill(100),
    stsc: [[1, 5]],
    offsets: Array.from({ length: 20 }, (_, i) => 100_000 + i * 1000),
    edits: [[10_000, 100]],
    ...extra,
  };
}

/** 10 s of audio at 1000 Hz in frames of 100 ticks, variable stsc runs (3 then 7 per chunk). */
export function audio(extra: Partial<SyntheticTrack> = {}): SyntheticTrack {
  return {
    handler: "soun",
    timescale: 1000,
    deltas: [[100, 100]],
    sizes: Array(100).fill(10),
    stsc: [[1, 3], [5, 7]],
    // 4 chunks of 3 (12 samples), then 88 / 7 → 13 chunks (the last one partly used).
    offsets: Array.from({ length: 17 }, (_, i) => 100_500 + i * 1000),
    edits: [[10_000, 0]],
    ...extra,
  };
}
