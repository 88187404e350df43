/**
 * The scrubbing storyboard: one thumbnail every `interval` seconds, tiled into sprite sheets,
 * and a WebVTT file whose cues point at sprite regions with media fragments
 * (`storyboard_1.jpg#xywh=160,0,160,90`), the format video.js, Plyr, JW Player and Spool's own
 * player read. Pure: the plan and the VTT text.
 */

export interface StoryboardPlan {
  /** Seconds between thumbnails. */
  interval: number;
  /** Thumbnail size in pixels. */
  width: number;
  height: number;
  columns: number;
  rows: number;
  /** Thumbnails in total (the last sheet may be partly filled). */
  count: number;
  /** Sheets, named storyboard_1.jpg ... storyboard_<sheets>.jpg. */
  sheets: number;
}

export const STORYBOARD_INTERVALS = [1, 2, 3, 5, 10, 15, 20, 30, 60, 120, 300] as const;

export interface StoryboardOptions {
  /** Most thumbnails for one video. Default 500. */
  maxThumbnails?: number;
  /** The long side of a thumbnail. Default 160. */
  thumbnailSize?: number;
  columns?: number;
  rows?: number;
}

const even = (value: number): number => Math.max(2, Math.round(value / 2) * 2);

export function planStoryboard(duration: number, source: { width: number; height: number }, options: StoryboardOptions = {}): StoryboardPlan | null {
  if (!(duration > 0) || !(source.width > 0 && source.height > 0)) return null;
  const maxThumbnails = options.maxThumbnails ?? 500;
  const interval = STORYBOARD_INTERVALS.find((i) => duration / i <= maxThumbnails) ?? Math.ceil(duration / maxThumbnails);
  const long = options.thumbnailSize ?? 160;
  const landscape = source.width >= source.height;
  const width = landscape ? even(long) : even((long * source.width) / source.height);
  const height = landscape ? even((long * source.height) / source.width) : even(long);
  const columns = options.columns ?? 10;
  const rows = options.rows ?? 10;
  const count = Math.max(1, Math.ceil(duration / interval - 1e-9));
  return { interval, width, height, columns, rows, count, sheets: Math.ceil(count / (columns * rows)) };
}

export const sheetName = (sheet: number): string => `storyboard_${sheet}.jpg`;

/** `HH:MM:SS.mmm`, as WebVTT wants. */
export function vttTimestamp(seconds: number): string {
  const ms = Math.max(0, Math.round(seconds * 1000));
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(h)}:${pad(m)}:${pad(s)}.${pad(ms % 1000, 3)}`;
}

/** The WebVTT text; `urlPrefix` is prepended to sheet names (relative URLs by default). */
export function storyboardVtt(plan: StoryboardPlan, duration: number, urlPrefix = ""): string {
  const perSheet = plan.columns * plan.rows;
  const lines = ["WEBVTT", ""];
  for (let k = 0; k < plan.count; k++) {
    const start = k * plan.interval;
    // The last thumbnail stands for the rest of the video, so the cues cover it to the end even
    // when ffmpeg made fewer thumbnails than planned.
    const end = k === plan.count - 1 ? duration : Math.min((k + 1) * plan.interval, duration);
    if (end <= start) break;
    const index = k % perSheet;
    const x = (index % plan.columns) * plan.width;
    const y = Math.floor(index / plan.columns) * plan.height;
    lines.push(`${vttTimestamp(start)} --> ${vttTimestamp(end)}`);
    lines.push(`${urlPrefix}${sheetName(Math.floor(k / perSheet) + 1)}#xywh=${x},${y},${plan.width},${plan.height}`);
    lines.push("");
  }
  return lines.join("\n");
}
