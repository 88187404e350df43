/**
 * The files every target serves, generated once and cached in bench/.cache/media (gitignored).
 *
 * - `main`: a real H.264 + AAC MP4 (1280x720, 30 fps, ~22 Mbit/s, faststart) of at least 64 MiB,
 *   made with ffmpeg's testsrc2 plus temporal noise so the encoder cannot squeeze it small.
 * - size sweep files (`sweep-1m`, `sweep-1g`, `sweep-8g`): the real `ftyp`+`moov` header of the
 *   main file, an `mdat` box header covering the rest, then random bytes. The 8 GiB file is sparse
 *   (64 MiB of random bytes, then a hole made with truncate) so it costs no disk.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readSync, renameSync, statSync, writeSync } from "node:fs";
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

/** Byte length of the leading boxes before `mdat` (ftyp + moov + free), read from the file. */
function headerLength(path: string): number {
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    const buf = Buffer.alloc(16);
    let off = 0;
    for (let i = 0; i < 64 && off + 8 <= size; i++) {
      readSync(fd, buf, 0, 16, off);
      let boxSize = buf.readUInt32BE(0);
      const type = buf.toString("latin1", 4, 8);
      if (boxSize === 1) boxSize = Number(buf.readBigUInt64BE(8));
      if (type === "mdat") return off;
      if (boxSize < 8) break;
      off += boxSize;
    }
    throw new Error(`${path}: no mdat box found in the first boxes (not a faststart MP4?)`);
  } finally {
    closeSync(fd);
  }
}

/**
 * A size-sweep file: real MP4 header + an mdat box over the rest. `randomBytes` bytes of the body
 * are random; anything beyond is a hole (sparse) when `sparse` is set.
 */
async function ensureSweepFile(main: MediaFile, key: string, size: number): Promise<MediaFile> {
  const path = resolve(MEDIA_DIR, `${key}.mp4`);
  const sparse = size > 2 * GiB;
  const label = `${fmtBytes(size)}${sparse ? " (sparse)" : ""}`;
  if (existsSync(path) && statSync(path).size === size) return { key, path, size, label, sparse };
  log(`media: writing ${key} (${label})`);
  const hdrLen = headerLength(main.path);
  const header = Buffer.alloc(hdrLen);
  const mfd = openSync(main.path, "r");
  readSync(mfd, header, 0, hdrLen, 0);
  closeSync(mfd);
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  try {
    let off = 0;
    const writeAll = (b: Uint8Array) => {
      let done = 0;
      while (done < b.length) done += writeSync(fd, b, done, b.length - done, off + done);
      off += b.length;
    };
    const useHeader = hdrLen + 16 <= size / 2;
    if (useHeader) {
      writeAll(header);
      const mdat = Buffer.alloc(16);
      mdat.writeUInt32BE(1, 0); // size 1 => 64-bit largesize follows
      mdat.write("mdat", 4, "latin1");
      mdat.writeBigUInt64BE(BigInt(size - off), 8);
      writeAll(mdat);
    }
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
