/**
 * The sample tables of one track (ISO/IEC 14496-12 §8.6-8.7) and the arithmetic that cuts them
 * to a run of samples [a, b). Pure: tables in, tables out.
 *
 * Nothing is expanded per sample: time-to-sample, composition offsets and sample-to-chunk stay
 * as their run-length runs with cumulative starts, so a two-hour file's tables cost what its
 * `moov` holds and lookups are binary searches. The runs are typed arrays: a film with
 * B-frames has a `ctts` run per few samples and an audio `stsc` run per chunk, and as plain
 * arrays those took 8 bytes an element on the JS heap (a two-hour film: 23 MiB of heap that
 * every full collection marked) where 4 do. The two tables with an entry per sample or chunk
 * that need no index, `stsz` and `stco`, are not copied at all: they are read in place, as
 * big-endian views into the `moov` bytes the clip writer keeps anyway (3.9 MiB less for the
 * film). Sample numbers here are 0-based; the boxes use 1-based ones and the parsers and
 * writers convert.
 */
import { Mp4Error, Reader, be32, type Writer } from "./boxes.ts";

/** Run-length `stts`: `counts[r]` samples of `deltas[r]` ticks, run r starting at sample `firstSample[r]`, time `firstDts[r]`. */
export interface TimeToSample {
  counts: Uint32Array;
  deltas: Uint32Array;
  firstSample: Uint32Array;
  /** Float64: a long track's decode times pass 2^32 ticks. */
  firstDts: Float64Array;
  sampleCount: number;
  /** Sum of all deltas: the media duration in the track's timescale. */
  duration: number;
}

/** Run-length `ctts`: composition offsets (signed; version 0 values are read as signed too, as every demuxer does). */
export interface CompositionOffsets {
  version: number;
  counts: Uint32Array;
  offsets: Int32Array;
  firstSample: Uint32Array;
  /** The smallest and largest offsets: bounds for scans over presentation times. */
  min: number;
  max: number;
}

/** `stsc`: from chunk `firstChunk[r]` (0-based) on, `perChunk[r]` samples per chunk. */
export interface SampleToChunk {
  firstChunk: Uint32Array;
  perChunk: Uint32Array;
  descIndex: Uint32Array;
  /** The first sample of run r (filled by `indexStsc`). */
  firstSample: Uint32Array;
}

export interface SampleSizes {
  /** Non-zero: every sample has this size and `table` is empty. */
  constant: number;
  count: number;
  /** Big-endian 32-bit sizes: the `stsz` box's own entries in place (a `stz2` source expanded). */
  table: DataView;
}

/** Chunk offsets: `stco`'s big-endian 32-bit entries in place, or `co64`'s parsed to Numbers. */
export type ChunkOffsets = DataView | Float64Array;

/** Same-size runs of a sample-to-group box (`sbgp`). */
export interface SampleGroups {
  version: number;
  groupingType: number;
  parameter: number;
  counts: number[];
  indexes: number[];
}

export interface SampleTables {
  stts: TimeToSample;
  ctts?: CompositionOffsets;
  /** 0-based sync sample numbers, ascending; undefined when every sample is a sync sample. */
  stss?: Uint32Array;
  stsc: SampleToChunk;
  sizes: SampleSizes;
  /** Absolute file offsets of chunks (`chunkOffset`, `chunkCount`). */
  chunkOffsets: ChunkOffsets;
  /** Whether the file used 64-bit offsets. */
  co64: boolean;
  /** One byte per sample (`sdtp`), if present. */
  sdtp?: Uint8Array;
  sbgp: SampleGroups[];
}

/** A track with more samples than this is refused rather than walked (10 h of 60 fps video + 48 kHz AAC is 4.2 M). */
export const MAX_SAMPLES = 50_000_000;

// ---- parsing (each takes a Reader positioned at the box payload) ----

export function parseStts(r: Reader): TimeToSample {
  r.fullHeader();
  const n = r.count(8);
  const counts = new Uint32Array(n);
  const deltas = new Uint32Array(n);
  const firstSample = new Uint32Array(n);
  const firstDts = new Float64Array(n);
  let runs = 0;
  let sampleCount = 0;
  let duration = 0;
  const b = r.bytes;
  for (let i = 0, at = r.take(n * 8); i < n; i++, at += 8) {
    const count = be32(b, at);
    const delta = be32(b, at + 4);
    if (count === 0) continue;
    counts[runs] = count;
    deltas[runs] = delta;
    firstSample[runs] = sampleCount;
    firstDts[runs] = duration;
    runs++;
    sampleCount += count;
    duration += count * delta;
    if (sampleCount > MAX_SAMPLES) throw new Mp4Error("too many samples");
  }
  return { counts: fit(counts, runs), deltas: fit(deltas, runs), firstSample: fit(firstSample, runs), firstDts: fit(firstDts, runs), sampleCount, duration };
}

/** The first `length` elements: empty runs are skipped, so a table may hold fewer runs than its box. */
function fit<T extends Uint32Array | Int32Array | Float64Array>(array: T, length: number): T {
  return (length === array.length ? array : array.slice(0, length)) as T;
}

export function parseCtts(r: Reader): CompositionOffsets {
  const { version } = r.fullHeader();
  const n = r.count(8);
  const counts = new Uint32Array(n);
  const offsets = new Int32Array(n);
  const firstSample = new Uint32Array(n);
  let runs = 0;
  let sample = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  const b = r.bytes;
  for (let i = 0, at = r.take(n * 8); i < n; i++, at += 8) {
    const count = be32(b, at);
    const offset = be32(b, at + 4) | 0;
    if (count === 0) continue;
    counts[runs] = count;
    offsets[runs] = offset;
    firstSample[runs] = sample;
    runs++;
    sample += count;
    if (sample > MAX_SAMPLES) throw new Mp4Error("too many composition offsets");
    if (offset < min) min = offset;
    if (offset > max) max = offset;
  }
  return {
    version,
    counts: fit(counts, runs),
    offsets: fit(offsets, runs),
    firstSample: fit(firstSample, runs),
    min: Number.isFinite(min) ? min : 0,
    max: Number.isFinite(max) ? max : 0,
  };
}

export function parseStss(r: Reader): Uint32Array {
  r.fullHeader();
  const n = r.count(4);
  const out = new Uint32Array(n);
  let previous = 0;
  const b = r.bytes;
  for (let i = 0, at = r.take(n * 4); i < n; i++, at += 4) {
    const number = be32(b, at);
    // Sync sample numbers are 1-based and strictly increasing; binary searches rely on it.
    if (number <= previous) throw new Mp4Error("sync samples out of order");
    out[i] = number - 1;
    previous = number;
  }
  return out;
}

export function parseStsc(r: Reader): SampleToChunk {
  r.fullHeader();
  const n = r.count(12);
  const s: SampleToChunk = { firstChunk: new Uint32Array(n), perChunk: new Uint32Array(n), descIndex: new Uint32Array(n), firstSample: new Uint32Array(0) };
  const b = r.bytes;
  let previous = -1;
  for (let i = 0, at = r.take(n * 12); i < n; i++, at += 12) {
    const first = be32(b, at);
    const per = be32(b, at + 4);
    if (first < 1 || first - 1 <= previous) throw new Mp4Error("sample-to-chunk runs out of order");
    if (per === 0) throw new Mp4Error("a chunk of zero samples");
    s.firstChunk[i] = previous = first - 1;
    s.perChunk[i] = per;
    s.descIndex[i] = be32(b, at + 8);
  }
  return s;
}

/** Fills `stsc.firstSample` once the chunk count is known; the runs must cover `sampleCount`. */
export function indexStsc(s: SampleToChunk, chunkCount: number, sampleCount: number): void {
  let sample = 0;
  s.firstSample = new Uint32Array(s.firstChunk.length);
  for (let i = 0; i < s.firstChunk.length; i++) {
    s.firstSample[i] = sample;
    const next = i + 1 < s.firstChunk.length ? s.firstChunk[i + 1]! : chunkCount;
    if (next > chunkCount) throw new Mp4Error("sample-to-chunk names chunks that do not exist");
    sample += (next - s.firstChunk[i]!) * s.perChunk[i]!;
    // Stop counting once past the end: hostile counts must not lose precision.
    if (sample > MAX_SAMPLES * 2) sample = MAX_SAMPLES * 2;
  }
  if (sampleCount > 0 && (s.firstChunk.length === 0 || s.firstChunk[0] !== 0)) throw new Mp4Error("sample-to-chunk does not start at chunk 1");
  if (sample < sampleCount) throw new Mp4Error("chunks hold fewer samples than the track has");
}

export function parseStsz(r: Reader): SampleSizes {
  r.fullHeader();
  const constant = r.u32();
  const count = r.u32();
  if (count > MAX_SAMPLES) throw new Mp4Error("too many samples");
  if (constant !== 0) return { constant, count, table: EMPTY_VIEW };
  if (count * 4 > r.remaining()) throw new Mp4Error("sample size table exceeds the box");
  return { constant: 0, count, table: viewAt(r.bytes, r.take(count * 4), count * 4) };
}

const EMPTY_VIEW = new DataView(new ArrayBuffer(0));

/** `length` bytes of `bytes` from `at`, as a view that shares them. */
function viewAt(bytes: Uint8Array, at: number, length: number): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset + at, length);
}

export function parseStz2(r: Reader): SampleSizes {
  r.fullHeader();
  r.skip(3);
  const field = r.u8();
  const count = r.u32();
  if (field !== 4 && field !== 8 && field !== 16) throw new Mp4Error(`compact sample sizes of ${field} bits`);
  if (count > MAX_SAMPLES || Math.ceil((count * field) / 8) > r.remaining()) throw new Mp4Error("compact sample size table exceeds the box");
  const table = new DataView(new ArrayBuffer(count * 4));
  for (let i = 0; i < count; i++) {
    if (field === 16) table.setUint32(i * 4, r.u16());
    else if (field === 8) table.setUint32(i * 4, r.u8());
    else {
      const byte = r.bytes[r.pos]!;
      table.setUint32(i * 4, i % 2 === 0 ? byte >> 4 : byte & 15);
      if (i % 2 === 1 || i === count - 1) r.pos++;
    }
  }
  return { constant: 0, count, table };
}

export function parseChunkOffsets(r: Reader, co64: boolean): ChunkOffsets {
  r.fullHeader();
  const n = r.count(co64 ? 8 : 4);
  const b = r.bytes;
  if (!co64) return viewAt(b, r.take(n * 4), n * 4);
  const out = new Float64Array(n);
  for (let i = 0, at = r.take(n * 8); i < n; i++, at += 8) {
    const high = be32(b, at);
    // Past 2^53 a Number is no longer exact: no real file is that large, a hostile one is refused.
    if (high >= 0x200000) throw new Mp4Error("64-bit value too large");
    out[i] = high * 0x1_0000_0000 + be32(b, at + 4);
  }
  return out;
}

export function parseSbgp(r: Reader): SampleGroups {
  const { version } = r.fullHeader();
  const groupingType = r.u32();
  const parameter = version === 1 ? r.u32() : 0;
  const n = r.count(8);
  const g: SampleGroups = { version, groupingType, parameter, counts: [], indexes: [] };
  for (let i = 0; i < n; i++) {
    g.counts.push(r.u32());
    g.indexes.push(r.u32());
  }
  return g;
}

// ---- lookups ----

/** The last index i with keys[i] <= value (keys ascending), or -1. */
export function lastAtOrBefore(keys: ArrayLike<number>, value: number): number {
  let lo = 0;
  let hi = keys.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! <= value) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

export function dtsOf(t: TimeToSample, sample: number): number {
  const run = lastAtOrBefore(t.firstSample, sample);
  if (run < 0) return 0;
  return t.firstDts[run]! + (sample - t.firstSample[run]!) * t.deltas[run]!;
}

export function durationOf(t: TimeToSample, sample: number): number {
  const run = lastAtOrBefore(t.firstSample, sample);
  return run < 0 ? 0 : t.deltas[run]!;
}

/** The last sample whose decode time is <= `time` (0 when none is). */
export function sampleAtDts(t: TimeToSample, time: number): number {
  const run = lastAtOrBefore(t.firstDts, time);
  if (run < 0) return 0;
  const delta = t.deltas[run]!;
  const within = delta === 0 ? t.counts[run]! - 1 : Math.min(t.counts[run]! - 1, Math.floor((time - t.firstDts[run]!) / delta));
  return t.firstSample[run]! + within;
}

export function cttsOf(c: CompositionOffsets | undefined, sample: number): number {
  if (!c) return 0;
  const run = lastAtOrBefore(c.firstSample, sample);
  return run < 0 || sample >= c.firstSample[run]! + c.counts[run]! ? 0 : c.offsets[run]!;
}

export function sizeOf(s: SampleSizes, sample: number): number {
  return s.constant !== 0 ? s.constant : s.table.getUint32(sample * 4);
}

/** The total size of samples [from, to): no walk when every sample has one size (a chunk may hold millions). */
export function sizeOfRange(s: SampleSizes, from: number, to: number): number {
  if (to <= from) return 0;
  if (s.constant !== 0) return (to - from) * s.constant;
  let total = 0;
  for (let i = from; i < to; i++) total += s.table.getUint32(i * 4);
  return total;
}

export function chunkCount(offsets: ChunkOffsets): number {
  return offsets instanceof Float64Array ? offsets.length : offsets.byteLength >>> 2;
}

/** The absolute file offset of chunk `index` (0-based, below `chunkCount`). */
export function chunkOffset(offsets: ChunkOffsets, index: number): number {
  return offsets instanceof Float64Array ? offsets[index]! : offsets.getUint32(index * 4);
}

/** The chunk (0-based) holding `sample`, and that chunk's first sample. */
export function chunkOf(s: SampleToChunk, sample: number): { chunk: number; first: number; perChunk: number; run: number } {
  const run = lastAtOrBefore(s.firstSample, sample);
  if (run < 0) throw new Mp4Error("sample before the first chunk");
  const per = s.perChunk[run]!;
  const k = Math.floor((sample - s.firstSample[run]!) / per);
  return { chunk: s.firstChunk[run]! + k, first: s.firstSample[run]! + k * per, perChunk: per, run };
}

// ---- cutting to samples [a, b) ----

export interface Runs {
  counts: number[];
  values: number[];
}

function pushRun(out: Runs, count: number, value: number): void {
  const last = out.values.length - 1;
  if (last >= 0 && out.values[last] === value) out.counts[last]! += count;
  else {
    out.counts.push(count);
    out.values.push(value);
  }
}

/** Runs (count, value) restricted to samples [a, b); runs start at `firstSample`. */
export function sliceRuns(counts: ArrayLike<number>, values: ArrayLike<number>, firstSample: ArrayLike<number>, a: number, b: number): Runs {
  const out: Runs = { counts: [], values: [] };
  for (let run = Math.max(0, lastAtOrBefore(firstSample, a)); run < counts.length; run++) {
    const from = Math.max(a, firstSample[run]!);
    const to = Math.min(b, firstSample[run]! + counts[run]!);
    if (from >= b) break;
    if (to > from) pushRun(out, to - from, values[run]!);
  }
  return out;
}

export function sliceStts(t: TimeToSample, a: number, b: number): Runs {
  return sliceRuns(t.counts, t.deltas, t.firstSample, a, b);
}

export function sliceCtts(c: CompositionOffsets, a: number, b: number): Runs {
  return sliceRuns(c.counts, c.offsets, c.firstSample, a, b);
}

/** Sync samples within [a, b), renumbered from a. */
export function sliceStss(stss: Uint32Array, a: number, b: number): number[] {
  const out: number[] = [];
  for (let i = Math.max(0, lastAtOrBefore(stss, a - 1) + 1); i < stss.length && stss[i]! < b; i++) out.push(stss[i]! - a);
  return out;
}

export function sliceGroups(g: SampleGroups, a: number, b: number): Runs {
  const first: number[] = [];
  let sample = 0;
  for (const count of g.counts) {
    first.push(sample);
    sample += count;
  }
  return sliceRuns(g.counts, g.indexes, first, a, b);
}

/** The chunks holding samples [a, b): where each one now starts, how many samples it keeps. */
export interface ChunkCut {
  /** Absolute file offset of each kept chunk's first kept sample. */
  offsets: number[];
  /** sample-to-chunk runs over the kept chunks (0-based first chunk). */
  stsc: { firstChunk: number[]; perChunk: number[]; descIndex: number[] };
  /** The byte span of the kept samples in the file: [dataStart, dataEnd). */
  dataStart: number;
  dataEnd: number;
}

export function sliceChunks(t: SampleTables, a: number, b: number): ChunkCut {
  const { stsc, sizes, chunkOffsets } = t;
  const chunks = chunkCount(chunkOffsets);
  const cut: ChunkCut = { offsets: [], stsc: { firstChunk: [], perChunk: [], descIndex: [] }, dataStart: Number.POSITIVE_INFINITY, dataEnd: 0 };
  let sample = a;
  let where = chunkOf(stsc, a);
  while (sample < b) {
    const { chunk, first, perChunk, run } = where;
    if (chunk >= chunks) throw new Mp4Error("a sample lies past the last chunk");
    // Samples of this chunk before `a` are skipped: the chunk now begins after them.
    const offset = chunkOffset(chunkOffsets, chunk) + sizeOfRange(sizes, first, sample);
    const last = Math.min(b, first + perChunk);
    const end = offset + sizeOfRange(sizes, sample, last);
    const kept = last - sample;
    const index = cut.offsets.length;
    cut.offsets.push(offset);
    const runs = cut.stsc;
    const n = runs.perChunk.length;
    const desc = stsc.descIndex[run]!;
    if (n === 0 || runs.perChunk[n - 1] !== kept || runs.descIndex[n - 1] !== desc) {
      runs.firstChunk.push(index);
      runs.perChunk.push(kept);
      runs.descIndex.push(desc);
    }
    if (offset < cut.dataStart) cut.dataStart = offset;
    if (end > cut.dataEnd) cut.dataEnd = end;
    sample = last;
    if (sample < b) {
      // The next chunk: the same run, or the next one when this chunk was its last.
      const nextRun = run + 1 < stsc.firstChunk.length && chunk + 1 >= stsc.firstChunk[run + 1]! ? run + 1 : run;
      where = { chunk: chunk + 1, first: last, perChunk: stsc.perChunk[nextRun]!, run: nextRun };
    }
  }
  if (cut.offsets.length === 0) cut.dataStart = 0;
  return cut;
}

// ---- writing ----

export function writeRunsBox(w: Writer, type: "stts" | "ctts", version: number, runs: Runs): void {
  const mark = w.beginFull(type, version, 0);
  w.u32(runs.counts.length);
  for (let i = 0; i < runs.counts.length; i++) {
    w.u32(runs.counts[i]!);
    if (type === "ctts") w.i32(runs.values[i]!);
    else w.u32(runs.values[i]!);
  }
  w.end(mark);
}

export function writeStss(w: Writer, sync: number[]): void {
  const mark = w.beginFull("stss", 0, 0);
  w.u32(sync.length);
  for (const s of sync) w.u32(s + 1);
  w.end(mark);
}

export function writeStsc(w: Writer, stsc: ChunkCut["stsc"]): void {
  const mark = w.beginFull("stsc", 0, 0);
  w.u32(stsc.firstChunk.length);
  for (let i = 0; i < stsc.firstChunk.length; i++) {
    w.u32(stsc.firstChunk[i]! + 1);
    w.u32(stsc.perChunk[i]!);
    w.u32(stsc.descIndex[i]!);
  }
  w.end(mark);
}

/** `stsz` for samples [a, b) (a `stz2` source is written back as `stsz`). */
export function writeStsz(w: Writer, sizes: SampleSizes, a: number, b: number): void {
  // The copy below is a view on the whole `moov`: out of bounds it would copy other boxes, not throw.
  if (!(a >= 0 && a <= b && b <= sizes.count)) throw new Mp4Error(`samples [${a}, ${b}) of a table of ${sizes.count}`);
  const mark = w.beginFull("stsz", 0, 0);
  w.u32(sizes.constant);
  w.u32(b - a);
  // The source's big-endian entries are the box's bytes: copied as they are.
  if (sizes.constant === 0) w.bytes(new Uint8Array(sizes.table.buffer, sizes.table.byteOffset + a * 4, (b - a) * 4));
  w.end(mark);
}

/** Chunk offsets moved by `shift` (new = old + shift), as `co64` when asked or when one would not fit 32 bits. */
export function writeChunkOffsets(w: Writer, offsets: number[], shift: number, co64: boolean, placeholder = false): void {
  const mark = w.beginFull(co64 ? "co64" : "stco", 0, 0);
  w.u32(offsets.length);
  for (const o of offsets) {
    const moved = placeholder ? 0 : o + shift;
    if (co64) w.u64(moved);
    else {
      if (moved > 0xffffffff || moved < 0) throw new Mp4Error("chunk offset does not fit stco");
      w.u32(moved);
    }
  }
  w.end(mark);
}

export function writeSdtp(w: Writer, sdtp: Uint8Array, a: number, b: number): void {
  const mark = w.beginFull("sdtp", 0, 0);
  w.bytes(sdtp.subarray(a, b));
  w.end(mark);
}

export function writeSbgp(w: Writer, g: SampleGroups, runs: Runs): void {
  const mark = w.beginFull("sbgp", g.version, 0);
  w.u32(g.groupingType);
  if (g.version === 1) w.u32(g.parameter);
  w.u32(runs.counts.length);
  for (let i = 0; i < runs.counts.length; i++) {
    w.u32(runs.counts[i]!);
    w.u32(runs.values[i]!);
  }
  w.end(mark);
}
