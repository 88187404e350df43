/**
 * Real media made with ffmpeg for tests, cached per test run (one temporary directory per
 * process, keyed by the options), so many tests can ask for the same file cheaply.
 *
 *   const mp4 = await makeVideo({ seconds: 2, width: 320, height: 240, faststart: false });
 */
import { createHash } from "node:crypto";
import { mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const DIR = join(tmpdir(), `spool-test-media-${process.pid}`);
mkdirSync(DIR, { recursive: true });
process.on("exit", () => rmSync(DIR, { recursive: true, force: true }));

export const hasFfmpeg = !!Bun.which("ffmpeg") && !!Bun.which("ffprobe");

export type VideoContainer = "mp4" | "mov" | "webm" | "mkv";

export interface VideoOptions {
  seconds?: number;
  width?: number;
  height?: number;
  /** ISO BMFF only: `moov` before `mdat` (true, the default) or after it, as ffmpeg writes by default. */
  faststart?: boolean;
  container?: VideoContainer;
  audio?: boolean;
  /** Display rotation in degrees stored as metadata (ISO BMFF). */
  rotate?: 0 | 90 | 180 | 270;
  fps?: number;
  /** Frames between keyframes (default: one a second). Long ones make late frames slow to decode. */
  keyframeInterval?: number;
  /**
   * WebM/Matroska only: written as a recording is (a browser's MediaRecorder, a live encoder),
   * with no duration and no cues in its header (the muxer's `live` mode).
   */
  recorded?: boolean;
}

export interface AudioOptions {
  seconds?: number;
  format?: "mp3" | "m4a" | "ogg" | "wav";
}

const pending = new Map<string, Promise<string>>();

async function ffmpeg(args: string[]): Promise<void> {
  const proc = Bun.spawn(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", ...args], { stdout: "ignore", stderr: "pipe" });
  const stderr = await new Response(proc.stderr).text();
  if ((await proc.exited) !== 0) throw new Error(`ffmpeg ${args.join(" ")} failed: ${stderr}`);
}

function cached(key: object, ext: string, make: (out: string) => Promise<void>): Promise<string> {
  const name = `${createHash("sha256").update(JSON.stringify(key)).digest("hex").slice(0, 16)}.${ext}`;
  const out = join(DIR, name);
  let job = pending.get(out);
  if (!job) {
    job = (async () => {
      if (!existsSync(out)) {
        const part = `${out}.part.${ext}`;
        await make(part);
        const { rename } = await import("node:fs/promises");
        await rename(part, out);
      }
      return out;
    })();
    pending.set(out, job);
  }
  return job;
}

/** A test-pattern video (moving counter, so frames differ) with a sine tone. */
export function makeVideo(options: VideoOptions = {}): Promise<string> {
  const o = { seconds: 2, width: 320, height: 240, faststart: true, container: "mp4" as VideoContainer, audio: true, rotate: 0, fps: 25, ...options };
  return cached({ video: o }, o.container, async (out) => {
    const iso = o.container === "mp4" || o.container === "mov";
    const codecs =
      o.container === "webm"
        ? ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k", ...(o.audio ? ["-c:a", "libopus"] : [])]
        : ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", String(o.keyframeInterval ?? o.fps), ...(o.audio ? ["-c:a", "aac"] : [])];
    const rotated = o.rotate && iso;
    const target = rotated ? `${out}.unrotated.${o.container}` : out;
    await ffmpeg([
      "-f", "lavfi", "-i", `testsrc=size=${o.width}x${o.height}:rate=${o.fps}`,
      ...(o.audio ? ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"] : []),
      "-t", String(o.seconds),
      ...codecs,
      ...(iso && o.faststart ? ["-movflags", "+faststart"] : []),
      ...(!iso && o.recorded ? ["-live", "1"] : []),
      "-f", o.container === "mkv" ? "matroska" : o.container,
      "-y", target,
    ]);
    if (rotated) {
      await ffmpeg(["-i", target, "-c", "copy", "-metadata:s:v:0", `rotate=${o.rotate}`, ...(o.faststart ? ["-movflags", "+faststart"] : []), "-y", out]);
      rmSync(target, { force: true });
    }
  });
}

export function makeAudio(options: AudioOptions = {}): Promise<string> {
  const o = { seconds: 2, format: "mp3" as const, ...options };
  return cached({ audio: o }, o.format, async (out) => {
    const codec = { mp3: ["-c:a", "libmp3lame"], m4a: ["-c:a", "aac"], ogg: ["-c:a", "libvorbis"], wav: ["-c:a", "pcm_s16le"] }[o.format];
    await ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", String(o.seconds), ...codec, "-f", o.format === "m4a" ? "ipod" : o.format, "-y", out]);
  });
}

/**
 * A large-ish faststart MP4 (noise compresses badly), for resumable uploads in several pieces,
 * with a keyframe a second (so a clip of its later seconds starts far into the file).
 */
export function makeLargeVideo(megabytes = 4): Promise<string> {
  return cached({ large: megabytes }, "mp4", async (out) => {
    const seconds = Math.max(2, Math.ceil(megabytes / 1.5));
    await ffmpeg([
      "-f", "lavfi", "-i", "nullsrc=size=640x360:rate=25,geq=random(1)*255:128:128",
      "-t", String(seconds),
      "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", `${Math.ceil((megabytes * 8) / seconds)}M`,
      "-g", "25", "-movflags", "+faststart", "-y", out,
    ]);
  });
}

/** The SHA-256 of a file, hex. */
/** The duration ffprobe reads from a file's header (format, else its longest stream), or null when it names none. */
export async function probeDuration(path: string): Promise<number | null> {
  const proc = Bun.spawn(["ffprobe", "-v", "error", "-show_entries", "format=duration:stream=duration", "-of", "json", path], { stdout: "pipe", stderr: "pipe" });
  const out = JSON.parse(await new Response(proc.stdout).text()) as { format?: { duration?: string }; streams?: { duration?: string }[] };
  await proc.exited;
  const values = [out.format?.duration, ...(out.streams ?? []).map((s) => s.duration)].map(Number).filter((n) => Number.isFinite(n) && n > 0);
  return values.length ? Math.max(...values) : null;
}

export async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(new Uint8Array(await Bun.file(path).arrayBuffer()));
  return hasher.digest("hex");
}

/** Width and height from a JPEG's SOF marker. */
export function jpegSize(bytes: Uint8Array): { width: number; height: number } {
  if (bytes[0] !== 0xff || bytes[1] !== 0xd8) throw new Error("not a JPEG (no SOI marker)");
  let i = 2;
  while (i + 9 < bytes.length) {
    if (bytes[i] !== 0xff) throw new Error(`JPEG marker expected at ${i}`);
    const marker = bytes[i + 1]!;
    const length = (bytes[i + 2]! << 8) | bytes[i + 3]!;
    // SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { height: (bytes[i + 5]! << 8) | bytes[i + 6]!, width: (bytes[i + 7]! << 8) | bytes[i + 8]! };
    }
    i += 2 + length;
  }
  throw new Error("no SOF marker in JPEG");
}

/** Top-level ISO BMFF box types of a file, in order (a test-side reader, independent of src/). */
export async function topLevelBoxes(path: string): Promise<string[]> {
  const bytes = new Uint8Array(await Bun.file(path).arrayBuffer());
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const types: string[] = [];
  let offset = 0;
  while (offset + 8 <= bytes.length) {
    let size = view.getUint32(offset);
    const type = new TextDecoder().decode(bytes.subarray(offset + 4, offset + 8));
    if (size === 1) size = Number(view.getBigUint64(offset + 8));
    if (size === 0) size = bytes.length - offset;
    types.push(type);
    offset += size;
  }
  return types;
}

/**
 * A faststart MP4 whose media data is cut to `fraction` of the file with its `mdat` box resized to
 * match: every box holds together and ffprobe is satisfied (the index is whole), but decoding
 * fails: media that identifies as a video and fails in processing.
 */
export async function makeUndecodableVideo(dir: string, fraction = 0.2): Promise<string> {
  const bytes = new Uint8Array(await Bun.file(await makeVideo({ seconds: 2 })).arrayBuffer());
  const view = new DataView(bytes.buffer);
  let mdat = 0;
  while (mdat < bytes.length && new TextDecoder().decode(bytes.subarray(mdat + 4, mdat + 8)) !== "mdat") mdat += view.getUint32(mdat);
  const cut = bytes.slice(0, Math.floor(bytes.length * fraction));
  if (mdat + 8 > cut.length) throw new Error("the cut would remove the mdat header");
  new DataView(cut.buffer).setUint32(mdat, cut.length - mdat);
  const path = `${dir}/undecodable-${crypto.randomUUID().slice(0, 8)}.mp4`;
  await Bun.write(path, cut);
  return path;
}
