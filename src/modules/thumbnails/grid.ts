/**
 * The thumbnail grid: the frames a client may ask for are snapped to a fixed set, so one video
 * has a bounded number of distinct thumbnails (each a cached file and at most one ffmpeg run),
 * whatever the URLs say. Pure functions, no I/O.
 *
 *  - Time (`t`): to the nearest multiple of a step. The step is 0.5 s, or for videos longer than
 *    500 s the smallest multiple of 0.5 s that leaves at most 1000 steps (a 2 h film: 7.5 s), so
 *    a video has at most 1001 positions. A position past the duration goes one step back.
 *  - Width: up to the next size of WIDTH_LADDER (a client gets at least the pixels it asked for
 *    and scales down), and never wider than the video: a rung at or above the video's own width
 *    is the video's width (no upscaling; the same file as a frame asked with no width).
 */

/** The widths thumbnails are made at; a requested width snaps up to the next one. */
export const WIDTH_LADDER = [80, 160, 240, 320, 480, 640, 960, 1280, 1920, 2560, 3840] as const;
/** The finest time step, in milliseconds. */
export const TIME_STEP_MS = 500;
/** The most steps one video's time axis is cut into (longer videos get a coarser step). */
export const MAX_TIME_STEPS = 1000;

/** The time step for a video of `duration` seconds (unknown: the finest), in milliseconds. */
export function timeStepMs(duration: number | null): number {
  if (!duration || !Number.isFinite(duration) || duration <= 0) return TIME_STEP_MS;
  return TIME_STEP_MS * Math.max(1, Math.ceil((duration * 1000) / (TIME_STEP_MS * MAX_TIME_STEPS)));
}

/** `seconds` (>= 0, at most the duration) snapped to the video's grid, in whole milliseconds. */
export function snapTimeMs(seconds: number, duration: number | null): number {
  const step = timeStepMs(duration);
  let ms = Math.round((seconds * 1000) / step) * step;
  if (duration && duration > 0 && ms > duration * 1000) ms -= step;
  return Math.max(0, ms);
}

/**
 * `width` snapped up to the ladder, or null for the video's own width (when the rung would be
 * at least as wide as the video).
 */
export function snapWidth(width: number, videoWidth: number | null): number | null {
  const rung: number = WIDTH_LADDER.find((w) => w >= width) ?? WIDTH_LADDER[WIDTH_LADDER.length - 1]!;
  return videoWidth && rung >= videoWidth ? null : rung;
}
