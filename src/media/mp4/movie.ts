/**
 * A parsed `moov`: the movie header, and per track its timescale, edit list and sample tables,
 * plus where each rewritable box sits so the clip writer can copy everything else verbatim.
 * Pure: takes the `moov` box's bytes.
 */
import { childBoxes, fourcc, Mp4Error, Reader, type BoxRef } from "./boxes.ts";
import {
  chunkCount,
  indexStsc,
  parseChunkOffsets,
  parseCtts,
  parseSbgp,
  parseStsc,
  parseStss,
  parseStsz,
  parseStts,
  parseStz2,
  type SampleTables,
} from "./sample-tables.ts";

export interface Edit {
  /** In the movie timescale. */
  duration: number;
  /** In the media timescale; -1 for an empty edit. */
  mediaTime: number;
  rate: number;
}

export interface Track {
  id: number;
  /** `vide`, `soun`, ...: the `hdlr` handler type. */
  handler: string;
  timescale: number;
  /** The edit that maps the track's media onto the movie timeline (see `timeline`). */
  timeline: { emptyBefore: number; mediaTime: number };
  tables: SampleTables;
  trak: BoxRef;
  tkhd: BoxRef;
  mdia: BoxRef;
  mdhd: BoxRef;
  minf: BoxRef;
  stbl: BoxRef;
}

export interface Movie {
  /** The whole `moov` box, header included. */
  bytes: Uint8Array;
  timescale: number;
  /** In the movie timescale. */
  duration: number;
  mvhd: BoxRef;
  tracks: Track[];
}

function find(boxes: BoxRef[], type: string): BoxRef | undefined {
  return boxes.find((b) => b.type === type);
}

function need(boxes: BoxRef[], type: string, where: string): BoxRef {
  const box = find(boxes, type);
  if (!box) throw new Mp4Error(`no ${type} in ${where}`);
  return box;
}

/** Timescale and duration of `mvhd` or `mdhd` (same layout up to there, after tkhd-like times). */
export function readTimes(bytes: Uint8Array, box: BoxRef): { version: number; timescale: number; duration: number } {
  const r = new Reader(bytes, box.body, box.end);
  const { version } = r.fullHeader();
  if (version === 1) {
    r.skip(16);
    return { version, timescale: r.u32(), duration: r.u64() };
  }
  r.skip(8);
  return { version, timescale: r.u32(), duration: r.u32() };
}

export function parseEdits(bytes: Uint8Array, elst: BoxRef): Edit[] {
  const r = new Reader(bytes, elst.body, elst.end);
  const { version } = r.fullHeader();
  const n = r.count(version === 1 ? 20 : 12);
  const edits: Edit[] = [];
  for (let i = 0; i < n; i++) {
    const duration = version === 1 ? r.u64() : r.u32();
    const mediaTime = version === 1 ? r.i64() : r.i32();
    const rate = r.i32() / 65536;
    edits.push({ duration, mediaTime, rate });
  }
  return edits;
}

/**
 * The edit lists clips support: an optional empty edit (the track starts late), then one edit
 * at normal rate. A trailing edit list entry that repeats or skips media, or a rate other than
 * 1, would need the timeline rebuilt rather than cut, and is refused.
 */
export function timelineOf(edits: Edit[], movieTimescale: number, mediaTimescale: number): Track["timeline"] {
  let emptyBefore = 0;
  let i = 0;
  while (i < edits.length && edits[i]!.mediaTime === -1) emptyBefore += edits[i++]!.duration;
  const rest = edits.slice(i);
  if (rest.length === 0) return { emptyBefore: emptyBefore / movieTimescale, mediaTime: 0 };
  if (rest.length > 1 || rest[0]!.rate !== 1 || rest[0]!.mediaTime < 0) throw new Mp4Error("edit lists other than one plain edit are not supported");
  void mediaTimescale;
  return { emptyBefore: emptyBefore / movieTimescale, mediaTime: rest[0]!.mediaTime };
}

function parseTables(bytes: Uint8Array, stbl: BoxRef, depth: number): SampleTables {
  const boxes = childBoxes(bytes, stbl.body, stbl.end, depth);
  const at = (b: BoxRef) => new Reader(bytes, b.body, b.end);
  const stts = parseStts(at(need(boxes, "stts", "stbl")));
  const cttsBox = find(boxes, "ctts");
  const stssBox = find(boxes, "stss");
  const stszBox = find(boxes, "stsz");
  const stz2Box = find(boxes, "stz2");
  const sizes = stszBox ? parseStsz(at(stszBox)) : stz2Box ? parseStz2(at(stz2Box)) : undefined;
  if (!sizes) throw new Mp4Error("no sample sizes (stsz) in stbl");
  const stcoBox = find(boxes, "stco");
  const co64Box = find(boxes, "co64");
  const offsetsBox = stcoBox ?? co64Box;
  if (!offsetsBox) throw new Mp4Error("no chunk offsets (stco) in stbl");
  const chunkOffsets = parseChunkOffsets(at(offsetsBox), offsetsBox.type === "co64");
  const stsc = parseStsc(at(need(boxes, "stsc", "stbl")));
  if (stts.sampleCount !== sizes.count) throw new Mp4Error(`stts counts ${stts.sampleCount} samples, stsz ${sizes.count}`);
  indexStsc(stsc, chunkCount(chunkOffsets), sizes.count);
  const tables: SampleTables = { stts, stsc, sizes, chunkOffsets, co64: offsetsBox.type === "co64", sbgp: [] };
  if (cttsBox) tables.ctts = parseCtts(at(cttsBox));
  if (stssBox) {
    const stss = parseStss(at(stssBox));
    // Ascending (parseStss), so the last one bounds them all: a key frame that does not exist
    // would cut a track to a negative run of samples.
    if (stss.length > 0 && stss[stss.length - 1]! >= sizes.count) throw new Mp4Error("sync sample past the last sample");
    tables.stss = stss;
  }
  const sdtpBox = find(boxes, "sdtp");
  if (sdtpBox) {
    const r = at(sdtpBox);
    r.fullHeader();
    // One byte per sample; a shorter table is kept only as far as it goes.
    tables.sdtp = bytes.subarray(r.pos, Math.min(r.end, r.pos + sizes.count));
  }
  for (const b of boxes) if (b.type === "sbgp") tables.sbgp.push(parseSbgp(at(b)));
  if (boxes.some((b) => b.type === "saiz" || b.type === "saio" || b.type === "senc")) throw new Mp4Error("encrypted tracks are not supported");
  return tables;
}

/** Parses a `moov` box (its header included in `bytes`). Throws Mp4Error on anything it cannot cut. */
export function parseMovie(bytes: Uint8Array): Movie {
  const top = childBoxes(bytes, 0, bytes.length);
  if (top.length !== 1 || top[0]!.type !== "moov") throw new Mp4Error("not a moov box");
  const moov = top[0]!;
  const children = childBoxes(bytes, moov.body, moov.end, 1);
  if (find(children, "mvex")) throw new Mp4Error("fragmented MP4 (mvex) is not supported");
  if (find(children, "cmov")) throw new Mp4Error("compressed moov (cmov) is not supported");
  const mvhd = need(children, "mvhd", "moov");
  const movieTimes = readTimes(bytes, mvhd);
  if (movieTimes.timescale === 0) throw new Mp4Error("movie timescale is 0");
  const tracks: Track[] = [];
  for (const trak of children) {
    if (trak.type !== "trak") continue;
    const inTrak = childBoxes(bytes, trak.body, trak.end, 2);
    const tkhd = need(inTrak, "tkhd", "trak");
    const mdia = need(inTrak, "mdia", "trak");
    const inMdia = childBoxes(bytes, mdia.body, mdia.end, 3);
    const mdhd = need(inMdia, "mdhd", "mdia");
    const hdlr = need(inMdia, "hdlr", "mdia");
    const minf = need(inMdia, "minf", "mdia");
    const stbl = need(childBoxes(bytes, minf.body, minf.end, 4), "stbl", "minf");
    const { timescale } = readTimes(bytes, mdhd);
    if (timescale === 0) throw new Mp4Error("track timescale is 0");
    if (hdlr.end - hdlr.body < 12) throw new Mp4Error("truncated hdlr");
    const tkhdReader = new Reader(bytes, tkhd.body, tkhd.end);
    const { version } = tkhdReader.fullHeader();
    tkhdReader.skip(version === 1 ? 16 : 8);
    const id = tkhdReader.u32();
    const edts = find(inTrak, "edts");
    const elst = edts ? find(childBoxes(bytes, edts.body, edts.end, 3), "elst") : undefined;
    const edits = elst ? parseEdits(bytes, elst) : [];
    tracks.push({
      id,
      handler: fourcc(bytes, hdlr.body + 8),
      timescale,
      timeline: timelineOf(edits, movieTimes.timescale, timescale),
      tables: parseTables(bytes, stbl, 5),
      trak,
      tkhd,
      mdia,
      mdhd,
      minf,
      stbl,
    });
  }
  if (tracks.length === 0) throw new Mp4Error("no tracks");
  return { bytes, timescale: movieTimes.timescale, duration: movieTimes.duration, mvhd, tracks };
}
