/**
 * ffmpeg's `-progress pipe:1` output: blocks of `key=value` lines, each closed by
 * `progress=continue` or `progress=end`. Pure: a chunk-fed parser and the percentage.
 */

export type ProgressBlock = Record<string, string>;

export class ProgressParser {
  private buffer = "";
  private block: ProgressBlock = {};

  /** Feeds a chunk; returns the blocks it completed. Lines may be split across chunks. */
  push(chunk: string): ProgressBlock[] {
    this.buffer += chunk;
    const done: ProgressBlock[] = [];
    let newline: number;
    while ((newline = this.buffer.indexOf("\n")) >= 0) {
      const line = this.buffer.slice(0, newline).replace(/\r$/, "");
      this.buffer = this.buffer.slice(newline + 1);
      const eq = line.indexOf("=");
      if (eq <= 0) continue;
      const key = line.slice(0, eq).trim();
      const value = line.slice(eq + 1).trim();
      this.block[key] = value;
      if (key === "progress") {
        done.push(this.block);
        this.block = {};
      }
    }
    return done;
  }
}

export interface ProgressBasis {
  /** Source duration in seconds. */
  duration: number;
  /** Output frame rate of the first video output, when known: frames are the most exact clock. */
  fps?: number | null;
}

/** Seconds of output a block reports, from out_time_us (or out_time_ms, which is µs too). */
export function outTimeSeconds(block: ProgressBlock): number | null {
  for (const key of ["out_time_us", "out_time_ms"]) {
    const raw = block[key];
    if (raw === undefined || raw === "N/A") continue;
    const us = Number(raw);
    if (Number.isFinite(us) && us >= 0) return us / 1e6;
  }
  const text = block.out_time;
  const match = text?.match(/^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/);
  if (match && !match[1]) return Number(match[2]) * 3600 + Number(match[3]) * 60 + Number(match[4]);
  return null;
}

/**
 * 0-100, or null when the block says nothing usable. The frame count of the first video output
 * is preferred: out_time is the furthest point of *any* output, and an image output (the
 * storyboard's sprite sheets) jumps ahead of the video.
 */
export function progressPercent(block: ProgressBlock, basis: ProgressBasis): number | null {
  if (block.progress === "end") return 100;
  if (!(basis.duration > 0)) return null;
  const frame = Number(block.frame);
  let fraction: number | null = null;
  if (basis.fps && basis.fps > 0 && block.frame !== undefined && Number.isFinite(frame) && frame >= 0) {
    fraction = frame / (basis.duration * basis.fps);
  } else {
    const seconds = outTimeSeconds(block);
    if (seconds !== null) fraction = seconds / basis.duration;
  }
  if (fraction === null) return null;
  return Math.min(100, Math.max(0, fraction * 100));
}
