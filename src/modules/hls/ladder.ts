/**
 * The HLS ladder: which renditions to build from a source. Pure.
 *
 * Rungs follow the usual web ladder (Apple's HLS authoring spec and the big platforms use close
 * variants of it). A rung is never taller than the source nor above the source's bitrate, and
 * a lower rung is kept only when it is a real step down in bitrate from the rung above, so a
 * player always has a meaningful choice. Sizes apply to the short side, so portrait videos get
 * the same ladder as landscape ones.
 */

export interface SourceVideo {
  width: number;
  height: number;
  /** Frames per second; null when unknown (assumed 30). */
  fps: number | null;
  /** Overall bits per second of the source; null when unknown (no cap). */
  bitrate: number | null;
}

export interface RungSpec {
  name: string;
  /** Short side in pixels. */
  size: number;
  videoBitrate: number;
  audioBitrate: number;
}

export interface Rendition {
  name: string;
  width: number;
  height: number;
  fps: number;
  videoBitrate: number;
  audioBitrate: number;
}

export const STANDARD_RUNGS: readonly RungSpec[] = [
  { name: "1080p", size: 1080, videoBitrate: 5_000_000, audioBitrate: 128_000 },
  { name: "720p", size: 720, videoBitrate: 2_800_000, audioBitrate: 128_000 },
  { name: "480p", size: 480, videoBitrate: 1_400_000, audioBitrate: 96_000 },
  { name: "360p", size: 360, videoBitrate: 800_000, audioBitrate: 96_000 },
  { name: "240p", size: 240, videoBitrate: 400_000, audioBitrate: 64_000 },
];

export interface LadderOptions {
  /** Tallest rung to build (short side). Default 1080. */
  maxSize?: number;
  /** Highest output frame rate; faster sources are reduced to it. Default 60. */
  maxFps?: number;
  /** A lower rung must be at most this fraction of the bitrate of the rung above. Default 0.85. */
  minStep?: number;
  rungs?: readonly RungSpec[];
}

/** High-frame-rate video needs more bits for the same quality. */
const HFR_FACTOR = 1.5;
const DEFAULT_FPS = 30;

export const even = (value: number): number => Math.max(2, Math.round(value / 2) * 2);

/** The output frame rate: the source's, capped; 30 when unknown or absurd. */
export function outputFps(sourceFps: number | null, maxFps = 60): number {
  if (sourceFps === null || !Number.isFinite(sourceFps) || sourceFps <= 0 || sourceFps > 1000) return DEFAULT_FPS;
  if (sourceFps <= maxFps) return sourceFps;
  // Halve until under the cap, so frames are dropped evenly (120 → 60, 50 → 25 for maxFps 30).
  let fps = sourceFps;
  while (fps > maxFps) fps /= 2;
  return fps;
}

/** Frame size for a rung whose short side is `size`, keeping the source's aspect ratio. */
export function scaledSize(source: Pick<SourceVideo, "width" | "height">, size: number): { width: number; height: number } {
  if (source.width >= source.height) return { width: even((size * source.width) / source.height), height: even(size) };
  return { width: even(size), height: even((size * source.height) / source.width) };
}

export function selectLadder(source: SourceVideo, options: LadderOptions = {}): Rendition[] {
  if (!(source.width > 0 && source.height > 0)) throw new Error(`the source has no usable frame size (${source.width}x${source.height})`);
  const rungs = [...(options.rungs ?? STANDARD_RUNGS)].sort((a, b) => b.size - a.size);
  const fps = outputFps(source.fps, options.maxFps ?? 60);
  const factor = fps > 31 ? HFR_FACTOR : 1;
  const cap = source.bitrate !== null && source.bitrate > 0 ? source.bitrate : Infinity;
  const minStep = options.minStep ?? 0.85;
  const shortSide = Math.min(source.width, source.height);
  const limit = Math.min(shortSide, options.maxSize ?? 1080);

  const ladder: Rendition[] = [];
  for (const rung of rungs) {
    if (rung.size > limit) continue;
    const videoBitrate = Math.round(Math.min(rung.videoBitrate * factor, cap));
    const above = ladder[ladder.length - 1];
    if (above && videoBitrate > above.videoBitrate * minStep) continue;
    ladder.push({ name: rung.name, ...scaledSize(source, rung.size), fps, videoBitrate, audioBitrate: rung.audioBitrate });
  }
  if (ladder.length === 0) {
    // No rung fits: one rendition at the source's own size, or at HLS_MAX_HEIGHT when that is
    // below the smallest rung; rounded down to even, so it is above neither (2 at least, for x264).
    const smallest = rungs[rungs.length - 1] ?? { videoBitrate: 400_000, audioBitrate: 64_000 };
    const size = Math.max(2, Math.floor(limit / 2) * 2);
    ladder.push({
      name: `${size}p`,
      ...scaledSize(source, size),
      fps,
      videoBitrate: Math.round(Math.min(smallest.videoBitrate * factor, cap)),
      audioBitrate: smallest.audioBitrate,
    });
  }
  return ladder;
}
