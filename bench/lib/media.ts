/**
 * The files every target serves, generated once and cached in bench/.cache/media (gitignored).
 *
 * - `main`: a real H.264 + AAC MP4 (1280x720, 30 fps, ~22 Mbit/s, faststart) of at least 64 MiB,
 *   made with ffmpeg's testsrc2 plus temporal noise so the encoder cannot squeeze it small.
 * - size sweep files (`sweep-1m`, `sweep-1g`, `sweep-8g`): a complete real MP4 followed by a
 *   `free` box of random bytes up to the exact size. The 8 GiB file is sparse (64 MiB of random
 *   bytes, then a hole made with truncate) so it costs no disk.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { resolve } from "node:path";
import { CACHE_DIR, GiB, MiB, fmtBytes, log, run, which } from "./util.ts";

export interface MediaFile {
  key: string;
  /** Absolute path of the cached source file. */
  path: string;
  size: number;
  /** Human label for tables, e.g. "64 MiB MP4". */
  label: string;
  sparse: boolean;
}

export const MEDIA_DIR = resolve(CACHE_DIR, "media");
export const MAIN_MIN_BYTES = 64 * MiB;

export const SWEEP_SIZES: Record<string, number> = {
  "sweep-1m": 1 * MiB,
  "sweep-1g": 1 * GiB,
  "sweep-8g": 8 * GiB,
};

/** Generate (or reuse) the main MP4. Throws with a clear message when ffmpeg is missing. */
export async function ensureMainVideo(): Promise<MediaFile> {
  mkdirSync(MEDIA_DIR, { recursive: true });
  const path = resolve(MEDIA_DIR, "spool-bench-720p.mp4");
  if (existsSync(path) && statSync(path).size >= MAIN_MIN_BYTES) {
    return { key: "main", path, size: statSync(path).size, label: `${fmtBytes(statSync(path).size)} H.264 MP4`, sparse: false };
  }
  const ffmpeg = which("ffmpeg");
  if (!ffmpeg) throw new Error("ffmpeg is required to generate the benchmark video (apt-get install ffmpeg)");
  // Bounded: at most three attempts, each longer, until the file reaches 64 MiB.
  for (const seconds of [32, 60, 120]) {
    log(`media: encoding ${seconds}s 720p H.264 test video with ffmpeg`);
    const tmp = `${path}.tmp.mp4`;
    const r = await run(
      [
        ffmpeg, "-v", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", String(seconds),
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "20M", "-maxrate", "20M", "-bufsize", "40M",
        "-pix_fmt", "yuv420p", "-g", "60",
        "-c:a", "aac", "-b:a", "128k",
        "-movflags", "+faststart",
        tmp,
      ],
      { timeoutMs: 300_000, name: "ffmpeg" },
    );
    if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.stderr.slice(-2000)}`);
    const size = statSync(tmp).size;
    if (size >= MAIN_MIN_BYTES) {
      renameSync(tmp, path);
      return { key: "main", path, size, label: `${fmtBytes(size)} H.264 MP4`, sparse: false };
    }
  }
  throw new Error("could not produce a >= 64 MiB MP4");
}

/** A small real MP4 (2 s, 320x180) used as the head of size-sweep files smaller than the main one. */
async function ensureTinyVideo(): Promise<string> {
  const path = resolve(MEDIA_DIR, "tiny-180p.mp4");
  if (existsSync(path) && statSync(path).size > 0) return path;
  const ffmpeg = which("ffmpeg");
  if (!ffmpeg) throw new Error("ffmpeg is required to generate the benchmark media");
  const tmp = `${path}.tmp.mp4`;
  const r = await run(
    [
      ffmpeg, "-v", "error", "-y",
      "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=30",
      "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
      "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
      "-c:a", "aac", "-b:a", "64k", "-movflags", "+faststart", tmp,
    ],
    { timeoutMs: 120_000, name: "ffmpeg" },
  );
  if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.stderr.slice(-2000)}`);
  renameSync(tmp, path);
  return path;
}

/**
 * A size-sweep file: a complete real MP4 (the main video, or a tiny one for files smaller than
 * it) followed by a trailing `free` box that pads it to exactly `size` bytes. The padding is random
 * bytes; for files above 2 GiB only its first 64 MiB are written and the rest is a hole (sparse).
 * Every offset in the MP4's sample tables stays valid, so ffprobe/ffmpeg accept the file.
 */
async function ensureSweepFile(main: MediaFile, key: string, size: number): Promise<MediaFile> {
  const path = resolve(MEDIA_DIR, `${key}.mp4`);
  const sparse = size > 2 * GiB;
  const label = `${fmtBytes(size)}${sparse ? " (sparse)" : ""}`;
  const stamp = `${path}.v2`;
  if (existsSync(path) && existsSync(stamp) && statSync(path).size === size) return { key, path, size, label, sparse };
  log(`media: writing ${key} (${label})`);
  const basePath = main.size + 16 <= size ? main.path : await ensureTinyVideo();
  const base = readFileSync(basePath);
  if (base.length + 16 > size) throw new Error(`${key}: ${size} bytes is too small for the MP4 head (${base.length} bytes)`);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    let off = 0;
    const writeAll = (b: Uint8Array) => {
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done, off + done);
      off += b.length;
    };
    writeAll(base);
    const boxLen = size - off;
    const hdr = Buffer.alloc(boxLen > 0xffffffff ? 16 : 8);
    if (hdr.length === 16) {
      hdr.writeUInt32BE(1, 0); // size 1 => 64-bit largesize follows
      hdr.write("free", 4, "latin1");
      hdr.writeBigUInt64BE(BigInt(boxLen), 8);
    } else {
      hdr.writeUInt32BE(boxLen, 0);
      hdr.write("free", 4, "latin1");
    }
    writeAll(hdr);
    const randomEnd = sparse ? Math.min(size, off + 64 * MiB) : size;
    const chunk = Buffer.alloc(16 * MiB);
    while (off < randomEnd) {
      const n = Math.min(chunk.length, randomEnd - off);
      randomFillSync(chunk, 0, n);
      writeAll(chunk.subarray(0, n));
    }
    if (sparse) ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  writeFileSync(stamp, "mp4 + trailing free box\n");
  return { key, path, size, label, sparse };
}

export async function ensureSweep(main: MediaFile, keys: string[]): Promise<MediaFile[]> {
  const out: MediaFile[] = [];
  for (const key of keys) {
    const size = SWEEP_SIZES[key];
    if (size === undefined) throw new Error(`unknown sweep file ${key}`);
    out.push(await ensureSweepFile(main, key, size));
  }
  return out;
}

/** Free bytes on the filesystem holding `dir` (via df; null when unknown). */
export async function freeBytes(dir: string): Promise<number | null> {
  const df = which("df");
  if (!df) return null;
  const r = await run([df, "-Pk", dir], { timeoutMs: 10_000, name: "df" });
  const line = r.stdout.trim().split("\n")[1];
  const avail = line?.split(/\s+/)[3];
  return avail ? Number(avail) * 1024 : null;
}
