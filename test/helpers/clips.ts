/**
 * Test-side tools for MP4 clips: media ffmpeg makes for them (B-frames, 64-bit chunk offsets),
 * and checks done by ffprobe/ffmpeg rather than by Spool's own parser.
 */
import { mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DIR = join(tmpdir(), `spool-test-clips-${process.pid}`);
mkdirSync(DIR, { recursive: true });
process.on("exit", () => rmSync(DIR, { recursive: true, force: true }));

let counter = 0;
/** A fresh path in this process's temporary directory. */
export function tempPath(ext: string): string {
  return join(DIR, `f${counter++}.${ext}`);
}

async function run(args: string[]): Promise<{ code: number; stdout: Uint8Array; stderr: string }> {
  const proc = Bun.spawn(args, { stdout: "pipe", stderr: "pipe", stdin: "ignore" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).arrayBuffer(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout: new Uint8Array(stdout), stderr };
}

async function ffmpeg(args: string[]): Promise<void> {
  const r = await run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", ...args]);
  if (r.code !== 0) throw new Error(`ffmpeg ${args.join(" ")}: ${r.stderr}`);
}

/** H.264 with B-frames (x264 `medium`, 2 B-frames, GOP of 2 s at 25 fps) and AAC, faststart. */
export async function makeBframesVideo(seconds = 8): Promise<string> {
  const out = tempPath("mp4");
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
    "-t", String(seconds),
    "-c:v", "libx264", "-preset", "medium", "-bf", "2", "-g", "50", "-pix_fmt", "yuv420p", "-c:a", "aac",
    "-movflags", "+faststart", "-y", out,
  ]);
  return out;
}

/**
 * A/V with side tracks as ffmpeg writes them: chapters (a `text` track whose samples ffmpeg puts
 * at the start of mdat) and mov_text subtitles, one cue a second (interleaved with the media).
 */
export async function makeVideoWithSideTracks(seconds: number): Promise<string> {
  const out = tempPath("mp4");
  const chapters = tempPath("txt");
  const half = Math.round((seconds * 1000) / 2);
  await Bun.write(chapters, `;FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=${half}\ntitle=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=${half}\nEND=${seconds * 1000}\ntitle=Two\n`);
  const srt = tempPath("srt");
  const at = (s: number) => `00:00:${String(s).padStart(2, "0")},000`;
  await Bun.write(srt, Array.from({ length: seconds }, (_, i) => `${i + 1}\n${at(i)} --> ${at(i + 1)}\nLine ${i}\n`).join("\n"));
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
    "-i", srt, "-i", chapters,
    "-map", "0:v", "-map", "1:a", "-map", "2:s", "-map_chapters", "3",
    "-t", String(seconds),
    "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac", "-c:s", "mov_text",
    "-movflags", "+faststart", "-y", out,
  ]);
  return out;
}

/**
 * The same media with `co64` instead of `stco`: the source must have its `moov` after `mdat`,
 * so the bigger `moov` moves no sample and the offsets stay as they are.
 */
export async function toCo64(source: string): Promise<string> {
  const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
  const out = tempPath("mp4");
  const parts: Uint8Array[] = [];
  for (const box of boxesIn(bytes, 0, bytes.length)) {
    parts.push(box.type === "moov" ? rewrite(bytes, box) : bytes.subarray(box.start, box.end));
  }
  await Bun.write(out, new Blob(parts as BlobPart[]));
  return out;
}

/**
 * `co64` with the `moov` in front (as Spool stores it: a file whose `moov` follows `mdat` is
 * remuxed at ingest, and ffmpeg's remux writes `stco` again). From a source whose `moov` is
 * last: the rewritten `moov` moves to just after `ftyp`, every chunk offset grows by its size.
 */
export async function toFaststartCo64(source: string): Promise<string> {
  const bytes = new Uint8Array(await Bun.file(source).arrayBuffer());
  const boxes = boxesIn(bytes, 0, bytes.length);
  const moov = boxes.find((b) => b.type === "moov");
  if (!moov || boxes[0]?.type !== "ftyp" || boxes.at(-1) !== moov) throw new Error(`${source}: wants ftyp first and moov last`);
  const shift = rewrite(bytes, moov).length;
  const parts: Uint8Array[] = [bytes.subarray(boxes[0].start, boxes[0].end), rewrite(bytes, moov, shift)];
  for (const box of boxes.slice(1, -1)) parts.push(bytes.subarray(box.start, box.end));
  const out = tempPath("mp4");
  await Bun.write(out, new Blob(parts as BlobPart[]));
  return out;
}

interface Box {
  type: string;
  start: number;
  end: number;
}

function boxesIn(bytes: Uint8Array, from: number, to: number): Box[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const out: Box[] = [];
  for (let at = from; at + 8 <= to; ) {
    const size = view.getUint32(at);
    out.push({ type: String.fromCharCode(...bytes.subarray(at + 4, at + 8)), start: at, end: at + size });
    at += size;
  }
  return out;
}

const CONTAINERS = new Set(["moov", "trak", "mdia", "minf", "stbl"]);

function rewrite(bytes: Uint8Array, box: Box, shift = 0): Uint8Array {
  if (box.type === "stco") {
    const view = new DataView(bytes.buffer, bytes.byteOffset);
    const n = view.getUint32(box.start + 12);
    const out = new Uint8Array(16 + n * 8);
    const w = new DataView(out.buffer);
    w.setUint32(0, out.length);
    out.set(new TextEncoder().encode("co64"), 4);
    w.setUint32(12, n);
    for (let i = 0; i < n; i++) w.setBigUint64(16 + i * 8, BigInt(view.getUint32(box.start + 16 + i * 4) + shift));
    return out;
  }
  if (!CONTAINERS.has(box.type)) return bytes.subarray(box.start, box.end);
  const children = boxesIn(bytes, box.start + 8, box.end).map((c) => rewrite(bytes, c, shift));
  const length = 8 + children.reduce((n, c) => n + c.length, 0);
  const out = new Uint8Array(length);
  new DataView(out.buffer).setUint32(0, length);
  out.set(bytes.subarray(box.start + 4, box.start + 8), 4);
  let at = 8;
  for (const c of children) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Whether a file's `moov` holds a box of this type anywhere in the sample tables. */
export async function hasBox(path: string, type: string): Promise<boolean> {
  const bytes = new Uint8Array(await Bun.file(path).arrayBuffer());
  const walk = (from: number, to: number): boolean =>
    boxesIn(bytes, from, to).some((b) => b.type === type || (CONTAINERS.has(b.type) && walk(b.start + 8, b.end)));
  return walk(0, bytes.length);
}

export interface Probe {
  duration: number;
  streams: { codec_type: string; duration?: string; nb_frames?: string }[];
  /** How many chapters ffprobe reads (a chapter track or Nero `chpl`). */
  chapters: number;
}

export async function ffprobe(path: string): Promise<Probe> {
  const r = await run(["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", "-show_chapters", path]);
  if (r.code !== 0) throw new Error(`ffprobe ${path}: ${r.stderr}`);
  const json = JSON.parse(new TextDecoder().decode(r.stdout)) as { format: { duration: string }; streams: Probe["streams"]; chapters?: unknown[] };
  return { duration: Number(json.format.duration), streams: json.streams, chapters: json.chapters?.length ?? 0 };
}

/** ffmpeg's decoder's complaints about a file (empty when it decodes cleanly). */
export async function decodeErrors(path: string): Promise<string> {
  const r = await run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-f", "null", "-"]);
  return r.code === 0 ? r.stderr.trim() : `exit ${r.code}: ${r.stderr}`;
}

/** The `index`-th shown frame (presentation order) of a file as 8-bit luma. */
export async function lumaFrame(path: string, index = 0): Promise<Uint8Array> {
  const r = await run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-vf", `select=eq(n\\,${index})`, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"]);
  if (r.code !== 0 || r.stdout.length === 0) throw new Error(`no frame ${index} in ${path}: ${r.stderr}`);
  return r.stdout;
}

/** Peak signal-to-noise ratio of two same-sized 8-bit images, in dB (Infinity when identical). */
export function psnr(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`frames differ in size: ${a.length} vs ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  const mse = sum / a.length;
  return mse === 0 ? Number.POSITIVE_INFINITY : 10 * Math.log10((255 * 255) / mse);
}

/**
 * `seconds` of test pattern at `fps` (a number or a ratio, "30000/1001"), a key frame every
 * `gop` frames, x264's default B-frames, with a sine as AAC unless `audio` is false; faststart.
 */
export async function makePattern(options: { seconds: number; fps: string; gop: number; audio?: boolean }): Promise<string> {
  const out = tempPath("mp4");
  const sound = options.audio === false ? [] : ["-f", "lavfi", "-i", `sine=frequency=440:sample_rate=48000:duration=${options.seconds}`];
  await ffmpeg([
    "-f", "lavfi", "-i", `testsrc2=size=320x240:rate=${options.fps}:duration=${options.seconds}`,
    ...sound,
    "-c:v", "libx264", "-preset", "medium", "-g", String(options.gop), "-pix_fmt", "yuv420p",
    ...(options.audio === false ? [] : ["-c:a", "aac", "-shortest"]),
    "-movflags", "+faststart", "-y", out,
  ]);
  return out;
}

/** How many video frames ffmpeg shows from a file (its edit list applied). */
export async function shownFrames(path: string): Promise<number> {
  const r = await run(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-i", path, "-map", "0:v:0", "-f", "framemd5", "-"]);
  if (r.code !== 0) throw new Error(`ffmpeg ${path}: ${r.stderr}`);
  return new TextDecoder().decode(r.stdout).split("\n").filter((line) => line !== "" && !line.startsWith("#")).length;
}

/** The durations a file's boxes state: mvhd's, each track's tkhd and its elst entries [duration, media time] (movie ticks). */
export async function statedDurations(path: string): Promise<{ mvhd: number; tracks: { tkhd: number; elst: [number, number][] }[] }> {
  const bytes = new Uint8Array(await Bun.file(path).arrayBuffer());
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  const moov = boxesIn(bytes, 0, bytes.length).find((b) => b.type === "moov")!;
  const version = (box: Box) => bytes[box.start + 8]!;
  const wide = (at: number, v: number) => (v === 1 ? Number(view.getBigUint64(at)) : view.getUint32(at));
  let mvhd = -1;
  const tracks: { tkhd: number; elst: [number, number][] }[] = [];
  for (const box of boxesIn(bytes, moov.start + 8, moov.end)) {
    if (box.type === "mvhd") mvhd = wide(box.start + 8 + (version(box) === 1 ? 24 : 16), version(box));
    if (box.type !== "trak") continue;
    const track = { tkhd: -1, elst: [] as [number, number][] };
    for (const inner of boxesIn(bytes, box.start + 8, box.end)) {
      if (inner.type === "tkhd") track.tkhd = wide(inner.start + 8 + (version(inner) === 1 ? 28 : 20), version(inner));
      if (inner.type !== "edts") continue;
      const elst = boxesIn(bytes, inner.start + 8, inner.end).find((b) => b.type === "elst")!;
      const v = version(elst);
      const size = v === 1 ? 20 : 12;
      for (let i = 0, at = elst.start + 16; i < view.getUint32(elst.start + 12); i++, at += size) {
        track.elst.push([wide(at, v), v === 1 ? Number(view.getBigInt64(at + 8)) : view.getInt32(at + 4)]);
      }
    }
    tracks.push(track);
  }
  return { mvhd, tracks };
}
