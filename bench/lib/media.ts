/**
 * The files every target serves, generated once and cached in bench/.cache/media (gitignored).
 *
 * - `main`: a real H.264 + AAC MP4 (1280x720, 30 fps, ~22 Mbit/s, faststart) of at least 64 MiB,
 *   made with ffmpeg's testsrc2 plus temporal noise so the encoder cannot squeeze it small.
 * - the library (`lib-000` … `lib-099`): a hundred short real MP4s of distinct lengths and bytes
 *   for the player-start mix (see ensureLibrary).
 * - `film`: a two-hour MP4 with a film's sample tables (a ~7 MiB `moov`) and ~1 GB of real media
 *   bytes, for the clip workloads on a long video (see ensureFilm); a two-minute one in smoke runs.
 * - size sweep files (`sweep-1m`, `sweep-1g`, `sweep-8g`): a complete real MP4 followed by a
 *   `free` box of random bytes up to the exact size. The 8 GiB file is sparse (64 MiB of random
 *   bytes, then a hole made with truncate) so it costs no disk.
 */
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { randomFillSync } from "node:crypto";
import { resolve } from "node:path";
import { ParkMiller } from "./prng.ts";
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

/** One video of the player-start library: a MediaFile plus what Spool's row needs. */
export interface LibraryVideo extends MediaFile {
  /** Hex SHA-256 of the file (Spool's strong ETag is its first 32 characters). */
  sha256: string;
  /** Seconds (the `-t` the file was cut at). */
  duration: number;
}

/** How many videos the player-start mix spreads over. */
export const LIBRARY_SIZE = 100;
/** Bumped when the recipe below changes, so a cached library is rebuilt. */
const LIBRARY_VERSION = 3;
const LIBRARY_SEED = 2026;

/**
 * The player-start mix's library: `LIBRARY_SIZE` short, real, faststart H.264 + AAC MP4s, cached
 * in bench/.cache/media/library (about 330 MiB). One 12 s 720p source (testsrc2 plus noise,
 * ~3.6 Mbit/s) is encoded once; each video is a stream copy of its first 3-12 s (seeded), with its
 * own `comment` tag, all written by one ffmpeg process with a hundred outputs (about 2 s). So every
 * file is a complete, playable video of its own size (1.4-5.3 MiB) and bytes (its moov differs),
 * and the hundred together are ten times Spool's 32 MiB RAM tier: the heads of all of them about
 * fill it, the rest of the bytes do not fit. A manifest records each file's size and SHA-256.
 */
export async function ensureLibrary(count = LIBRARY_SIZE): Promise<LibraryVideo[]> {
  if (count > 271) throw new Error("the library has at most 271 videos (one per length in frames, 3-12 s)");
  const dir = resolve(MEDIA_DIR, "library");
  const manifestPath = resolve(dir, "manifest.json");
  const keyOf = (i: number) => `lib-${String(i).padStart(3, "0")}`;
  const pathOf = (i: number) => resolve(dir, `${keyOf(i)}.mp4`);
  try {
    const m = JSON.parse(readFileSync(manifestPath, "utf8")) as { version: number; videos: LibraryVideo[] };
    if (m.version === LIBRARY_VERSION && m.videos.length >= count) {
      const videos = m.videos.slice(0, count).map((v, i) => ({ ...v, path: pathOf(i) }));
      if (videos.every((v) => existsSync(v.path) && statSync(v.path).size === v.size)) return videos;
    }
  } catch {}
  const ffmpeg = which("ffmpeg");
  if (!ffmpeg) throw new Error("ffmpeg is required to generate the benchmark library (apt-get install ffmpeg)");
  mkdirSync(dir, { recursive: true });
  const source = resolve(dir, "source-12s.mp4");
  if (!existsSync(source) || statSync(source).size === 0) {
    log("media: encoding the library's 12 s 720p source with ffmpeg");
    const r = await run(
      [
        ffmpeg, "-v", "error", "-y",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30,noise=alls=12:allf=t",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
        "-t", "12",
        "-c:v", "libx264", "-preset", "ultrafast", "-b:v", "3500k", "-maxrate", "3500k", "-bufsize", "7000k",
        "-pix_fmt", "yuv420p", "-g", "60",
        "-c:a", "aac", "-b:a", "96k",
        "-movflags", "+faststart",
        `${source}.tmp.mp4`,
      ],
      { timeoutMs: 300_000, name: "ffmpeg" },
    );
    if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.stderr.slice(-2000)}`);
    renameSync(`${source}.tmp.mp4`, source);
  }
  log(`media: cutting ${count} library videos (3-12 s each) from it`);
  const rng = new ParkMiller(LIBRARY_SEED);
  // Distinct lengths in whole frames (30 fps), hence distinct sizes.
  const frames = new Set<number>();
  while (frames.size < Math.min(count, 271)) frames.add(90 + rng.below(271));
  const durations = [...frames].map((f) => f / 30);
  const outputs = durations.flatMap((d, i) => [
    "-map", "0", "-c", "copy", "-t", d.toFixed(4),
    "-metadata", `comment=spool bench library video ${String(i).padStart(3, "0")}`,
    "-movflags", "+faststart",
    `${pathOf(i)}.tmp.mp4`,
  ]);
  const r = await run([ffmpeg, "-v", "error", "-y", "-i", source, ...outputs], { timeoutMs: 300_000, name: "ffmpeg" });
  if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.stderr.slice(-2000)}`);
  const videos: LibraryVideo[] = [];
  for (let i = 0; i < count; i++) {
    renameSync(`${pathOf(i)}.tmp.mp4`, pathOf(i));
    const bytes = readFileSync(pathOf(i));
    const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
    videos.push({ key: keyOf(i), path: pathOf(i), size: bytes.length, label: `${fmtBytes(bytes.length)} MP4`, sparse: false, sha256, duration: durations[i] as number });
  }
  writeFileSync(manifestPath, `${JSON.stringify({ version: LIBRARY_VERSION, videos }, null, 1)}\n`);
  const total = videos.reduce((s, v) => s + v.size, 0);
  log(`media: library of ${count} videos, ${fmtBytes(total)} in all (${fmtBytes(Math.min(...videos.map((v) => v.size)))} to ${fmtBytes(Math.max(...videos.map((v) => v.size)))})`);
  return videos;
}

/**
 * The film: what a share link into a long video points at. A two-hour faststart H.264 + AAC MP4
 * with a film's sample tables (216,000 video and ~337,700 audio samples, a key frame every 2 s,
 * B-frames, so `stts`, `ctts`, `stss`, `stsc`, `stsz` and `stco` are as long as a real film's: a
 * `moov` of about 7 MiB) and real media bytes (640x360, ~1 Mbit/s, testsrc2 plus noise, 64 kbit/s
 * AAC): about 1 GB. Made quickly: one segment is encoded once (~18 s), then stream-copied
 * `loops` times into one file with `-stream_loop` (~7 s), as bench/clip-moov.ts does. The segment
 * lasts a whole number of AAC frames (32 s at 48 kHz = 1,500 frames), so the looped audio neither
 * drifts nor overlaps the video. Smoke runs use a short film of the same recipe (8 s x 16: two
 * minutes, ~17 MB), which checks the plumbing in seconds; its moov is small.
 */
export interface FilmRecipe {
  /** Cache file name (without .mp4). */
  name: string;
  segmentS: number;
  loops: number;
}

export const FILM_RECIPES: Record<"full" | "smoke", FilmRecipe> = {
  full: { name: "film-2h", segmentS: 32, loops: 225 },
  smoke: { name: "film-smoke", segmentS: 8, loops: 16 },
};

/** Bumped when the recipe below changes, so a cached film is rebuilt. */
const FILM_VERSION = 1;

export interface FilmVideo extends LibraryVideo {
  width: number;
  height: number;
  /** Bytes of the film's `moov` box (what nginx's mp4 module reads and parses per clip request). */
  moovBytes: number;
  recipe: FilmRecipe;
  /** Seconds it took to make (encode + loop), when this run made it. */
  madeInS?: number;
}

/** The film's seconds, as the recipe makes it (the key frame every 2 s lines up with it). */
export const filmSeconds = (r: FilmRecipe) => r.segmentS * r.loops;

/** Top-level boxes of an MP4 file: the size of the first `moov` (0 when none is found). */
function moovSize(path: string): number {
  const fd = openSync(path, "r");
  try {
    const size = statSync(path).size;
    const head = Buffer.alloc(16);
    let off = 0;
    while (off + 8 <= size) {
      readSync(fd, head, 0, 16, off);
      let box = head.readUInt32BE(0);
      const type = head.toString("latin1", 4, 8);
      if (box === 1) box = Number(head.readBigUInt64BE(8));
      else if (box === 0) box = size - off;
      if (type === "moov") return box;
      if (box < 8) return 0;
      off += box;
    }
    return 0;
  } finally {
    closeSync(fd);
  }
}

async function sha256File(path: string): Promise<string> {
  const hasher = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hasher.update(chunk);
  return hasher.digest("hex");
}

/** Generate (or reuse) the film of `recipe`, cached in bench/.cache/media/film with a manifest (size, SHA-256, duration, moov size). */
export async function ensureFilm(recipe: FilmRecipe): Promise<FilmVideo> {
  const dir = resolve(MEDIA_DIR, "film");
  const path = resolve(dir, `${recipe.name}.mp4`);
  const manifestPath = resolve(dir, `${recipe.name}.json`);
  try {
    const m = JSON.parse(readFileSync(manifestPath, "utf8")) as { version: number; film: FilmVideo };
    if (m.version === FILM_VERSION && m.film.recipe.segmentS === recipe.segmentS && m.film.recipe.loops === recipe.loops && existsSync(path) && statSync(path).size === m.film.size) {
      return { ...m.film, path, madeInS: undefined };
    }
  } catch {}
  const ffmpeg = which("ffmpeg");
  if (!ffmpeg) throw new Error("ffmpeg is required to generate the benchmark film (apt-get install ffmpeg)");
  mkdirSync(dir, { recursive: true });
  const started = performance.now();
  const segment = resolve(dir, `${recipe.name}.segment.mp4`);
  const width = 640;
  const height = 360;
  log(`media: encoding the film's ${recipe.segmentS} s ${height}p segment with ffmpeg`);
  let r = await run(
    [
      ffmpeg, "-v", "error", "-y",
      "-f", "lavfi", "-i", `testsrc2=size=${width}x${height}:rate=30,noise=alls=8:allf=t`,
      "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
      "-t", String(recipe.segmentS),
      "-c:v", "libx264", "-preset", "veryfast", "-b:v", "1000k", "-maxrate", "1000k", "-bufsize", "2000k",
      "-bf", "2", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-pix_fmt", "yuv420p",
      "-c:a", "aac", "-b:a", "64k", "-ac", "2",
      `${segment}.tmp.mp4`,
    ],
    { timeoutMs: 300_000, name: "ffmpeg" },
  );
  if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.stderr.slice(-2000)}`);
  renameSync(`${segment}.tmp.mp4`, segment);
  log(`media: looping it ${recipe.loops} times into ${recipe.name}.mp4 (stream copy, faststart)`);
  r = await run(
    [ffmpeg, "-v", "error", "-y", "-stream_loop", String(recipe.loops - 1), "-i", segment, "-c", "copy", "-movflags", "+faststart", `${path}.tmp.mp4`],
    { timeoutMs: 600_000, name: "ffmpeg" },
  );
  if (r.code !== 0) throw new Error(`ffmpeg failed (${r.code}): ${r.stderr.slice(-2000)}`);
  renameSync(`${path}.tmp.mp4`, path);
  rmSync(segment, { force: true });
  const size = statSync(path).size;
  const moovBytes = moovSize(path);
  if (!moovBytes) throw new Error(`${path}: no moov box`);
  let duration = filmSeconds(recipe);
  const ffprobe = which("ffprobe");
  if (ffprobe) {
    const p = await run([ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path], { timeoutMs: 60_000, name: "ffprobe" });
    const d = Number(p.stdout.trim());
    if (p.code === 0 && Number.isFinite(d) && d > 0) duration = d;
  }
  const film: FilmVideo = {
    key: "film",
    path,
    size,
    label: `${fmtBytes(size)} ${filmSeconds(recipe) >= 3600 ? `${filmSeconds(recipe) / 3600} h` : `${filmSeconds(recipe)} s`} film`,
    sparse: false,
    sha256: await sha256File(path),
    duration,
    width,
    height,
    moovBytes,
    recipe,
  };
  writeFileSync(manifestPath, `${JSON.stringify({ version: FILM_VERSION, film: { ...film, madeInS: undefined } }, null, 1)}\n`);
  film.madeInS = (performance.now() - started) / 1000;
  log(`media: film ${recipe.name}.mp4, ${fmtBytes(size)}, ${duration.toFixed(1)} s, moov ${fmtBytes(moovBytes)}, made in ${film.madeInS.toFixed(1)} s`);
  return film;
}
