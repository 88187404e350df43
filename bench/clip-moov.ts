#!/usr/bin/env bun
/**
 * What a clip of a two-hour MP4 costs before any media byte moves: reading and parsing its
 * `moov`, then planning the cut and writing the clip's header (issue 13: "milliseconds, not
 * hundreds"). Outside the test suite: timings are the bench's business.
 *
 * The file is real ffmpeg output with a film's sample tables: 10 s of 64x36 H.264 (30 fps,
 * 2 B-frames, a key frame every 2 s, so `ctts` and `stss` are as dense as a film's) and 48 kHz
 * AAC, stream-copied 720 times into one 2 h faststart MP4 (216,000 video and 337,500 audio
 * samples). Tiny frames keep it small and quick to make; the tables are what is measured.
 *
 *   bun bench/clip-moov.ts [--hours=2] [--runs=30]
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { planClip, writeClip } from "../src/media/mp4/clip.ts";
import { readMovieFile } from "../src/media/mp4/file.ts";

const arg = (name: string, fallback: number) => Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const hours = arg("hours", 2);
const runs = arg("runs", 30);
const SEGMENT_S = 10;

async function ffmpeg(args: string[]): Promise<void> {
  const proc = Bun.spawn(["ffmpeg", "-hide_banner", "-nostdin", "-v", "error", "-y", ...args], { stderr: "pipe" });
  const [code, err] = await Promise.all([proc.exited, new Response(proc.stderr).text()]);
  if (code !== 0) throw new Error(`ffmpeg: ${err}`);
}

const dir = mkdtempSync(join(tmpdir(), "spool-clip-moov-"));
try {
  const segment = join(dir, "segment.mp4");
  const film = join(dir, "film.mp4");
  await ffmpeg([
    "-f", "lavfi", "-i", "testsrc=size=64x36:rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
    "-t", String(SEGMENT_S), "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "60", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "32k", segment,
  ]);
  const loops = Math.round((hours * 3600) / SEGMENT_S);
  await ffmpeg(["-stream_loop", String(loops - 1), "-i", segment, "-c", "copy", "-movflags", "+faststart", film]);
  const size = statSync(film).size;

  const ms = (from: number) => (Bun.nanoseconds() - from) / 1e6;
  const parse: number[] = [];
  const header: number[] = [];
  let summary = "";
  for (let i = 0; i < runs; i++) {
    let t = Bun.nanoseconds();
    const file = await readMovieFile(film, size);
    parse.push(ms(t));
    t = Bun.nanoseconds();
    // A clip in the middle: start mid-GOP, 30 s long.
    const plan = planClip(file.movie, hours * 1800 + 0.37, hours * 1800 + 30.37);
    const layout = writeClip(file.movie, plan, file.ftyp, size);
    header.push(ms(t));
    if (i === 0) {
      const samples = file.movie.tracks.map((track) => `${track.handler} ${track.tables.sizes.count}`).join(", ");
      summary = `moov ${(file.movie.bytes.length / 1024).toFixed(0)} KiB (${samples} samples; ${(file.cost / 1024).toFixed(0)} KiB held once parsed), clip header ${layout.header.length} bytes`;
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`${hours} h MP4, ${(size / 1e6).toFixed(1)} MB: ${summary}`);
  console.log(`read + parse moov: first ${parse[0]!.toFixed(1)} ms, median ${median(parse).toFixed(1)} ms`);
  console.log(`plan + write clip header: first ${header[0]!.toFixed(2)} ms, median ${median(header).toFixed(2)} ms`);
  console.log(`(${runs} runs; Bun ${Bun.version}; ${cpus()[0]?.model ?? "?"} x${cpus().length})`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
