/**
 * The ffmpeg command line for one HLS build. Pure, so every flag is tested without running ffmpeg.
 *
 * One ffmpeg process decodes the source once and encodes every rendition (plus the storyboard)
 * from a split filter graph. Keyframes are aligned across renditions: all renditions share one
 * constant frame rate, keyframes are forced at the same instants (every segment duration),
 * scene-cut keyframes are off and the GOP is fixed, so every segment of every rendition starts
 * with a keyframe at the same time, and switching or seeking lands on a clean boundary.
 *
 * ffmpeg runs in the output directory with relative output names, so nothing in DATA_DIR's path
 * can be mistaken for an ffmpeg pattern (`%d`) or protocol.
 */
import { hardenedInput } from "../../media/input-args.ts";
import type { Rendition } from "./ladder.ts";
import type { StoryboardPlan } from "./storyboard.ts";

export interface TranscodePlan {
  /** Absolute path of the source file. */
  input: string;
  /** The ffmpeg demuxer ffprobe identified: the input is opened with it and nothing else. */
  demuxer?: string;
  renditions: readonly Rendition[];
  hasAudio: boolean;
  /** The source's duration in seconds (the longest stream): every output ends there. */
  duration: number;
  segmentSeconds: number;
  /** x264 preset. */
  preset: string;
  storyboard: StoryboardPlan | null;
}

export const PLAYLIST_NAME = "index.m3u8";
export const MASTER_NAME = "master.m3u8";
export const STORYBOARD_VTT = "storyboard.vtt";
export const SEGMENT_PATTERN = "seg_%05d.m4s";
/** ffmpeg names each rendition's init segment init_<n>.mp4 (n = variant index). */
export const INIT_NAME = "init.mp4";
/** The storyboard's single frames, tiled into sheets by a second, quick pass (buildSpriteArgs). */
export const THUMB_PATTERN = "thumb_%05d.jpg";

/** Every run: no banner, no stdin, no stats, errors only, overwrite our own temporary outputs. */
const QUIET_BATCH = ["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-y"] as const;

/** A rational-ish rendering of a frame rate for ffmpeg filters (`30000/1001` for 29.97). */
export function fpsExpression(fps: number): string {
  for (const base of [24, 30, 60, 120]) {
    const ntsc = (base * 1000) / 1001;
    if (Math.abs(fps - ntsc) < 0.005) return `${base * 1000}/1001`;
  }
  return Number.isInteger(fps) ? String(fps) : fps.toFixed(3);
}

/** Seconds for ffmpeg, to the millisecond. */
const seconds = (value: number): string => String(Math.round(value * 1000) / 1000);

export function buildTranscodeArgs(plan: TranscodePlan): string[] {
  const { renditions, hasAudio, segmentSeconds: seg } = plan;
  if (renditions.length === 0) throw new Error("nothing to build: the ladder is empty");
  const fps = renditions[0]!.fps;
  const gop = Math.max(1, Math.round(fps * seg));
  const branches = renditions.length + (plan.storyboard ? 1 : 0);

  const graph: string[] = [];
  const splitOutputs = renditions.map((_, i) => `[s${i}]`).join("") + (plan.storyboard ? "[sb]" : "");
  // Audio that outlasts the picture: the last frame is held until the audio ends (tpad, cut at
  // the duration by -t), as players show it. Without it the last segment carries all the
  // remaining audio while its EXTINF counts only the video, and BANDWIDTH is overstated.
  const hold = hasAudio ? `,tpad=stop_mode=clone:stop_duration=${seconds(plan.duration)}` : "";
  graph.push(`[0:v:0]fps=${fpsExpression(fps)}${hold},split=${branches}${splitOutputs}`);
  renditions.forEach((r, i) => graph.push(`[s${i}]scale=${r.width}:${r.height}:flags=bicubic,setsar=1,format=yuv420p[v${i}]`));
  // Sound that starts late, has holes or ends early: silence in its place (aresample fills the
  // start and the holes, apad the end, -t cuts it). A browser's MediaSource buffers only where
  // both tracks have media, so a late start made hls.js skip the picture before the sound, and
  // an early end stalled playback where the sound ended.
  if (hasAudio) graph.push(`[0:a:0]aresample=async=1:first_pts=0,apad,asplit=${renditions.length}${renditions.map((_, i) => `[a${i}]`).join("")}`);
  if (plan.storyboard) {
    const sb = plan.storyboard;
    // Single frames here, tiled later: a `tile` filter in this graph holds its output back until a
    // sheet is full, and ffmpeg 5 then reports no progress at all until the very end.
    // round=up: thumbnail k is the frame at k*interval, and a tail shorter than half an interval
    // still gets one. settb: in the 1/interval time base, -t 4.4 becomes 4 and drops the one at 4 s.
    graph.push(`[sb]fps=1/${sb.interval}:round=up,settb=AVTB,scale=${sb.width}:${sb.height}:flags=bicubic,setsar=1[sbo]`);
  }

  const args = [
    ...QUIET_BATCH,
    // Only local files, only the identified container: the same hardening as ingest's runs.
    ...hardenedInput(`file:${plan.input}`, plan.demuxer),
    "-filter_complex",
    graph.join(";"),
  ];
  renditions.forEach((_, i) => {
    args.push("-map", `[v${i}]`);
    if (hasAudio) args.push("-map", `[a${i}]`);
  });
  args.push(
    "-c:v",
    "libx264",
    "-preset",
    plan.preset,
    "-profile:v",
    "high",
    "-pix_fmt",
    "yuv420p",
    "-g",
    String(gop),
    "-keyint_min",
    String(gop),
    "-sc_threshold",
    "0",
    "-force_key_frames",
    `expr:gte(t,n_forced*${seg})`,
  );
  renditions.forEach((r, i) => {
    args.push(`-b:v:${i}`, String(r.videoBitrate));
    args.push(`-maxrate:v:${i}`, String(Math.round(r.videoBitrate * 1.07)));
    args.push(`-bufsize:v:${i}`, String(Math.round(r.videoBitrate * 1.5)));
  });
  if (hasAudio) {
    args.push("-c:a", "aac", "-ac", "2", "-ar", "48000");
    renditions.forEach((r, i) => args.push(`-b:a:${i}`, String(r.audioBitrate)));
  }
  const streamMap = renditions.map((r, i) => (hasAudio ? `v:${i},a:${i},name:${r.name}` : `v:${i},name:${r.name}`)).join(" ");
  args.push(
    "-t",
    seconds(plan.duration),
    "-map_metadata",
    "-1",
    "-f",
    "hls",
    "-hls_time",
    String(seg),
    "-hls_playlist_type",
    "vod",
    "-hls_segment_type",
    "fmp4",
    "-hls_flags",
    "independent_segments",
    "-hls_list_size",
    "0",
    "-hls_fmp4_init_filename",
    INIT_NAME,
    "-hls_segment_filename",
    `%v/${SEGMENT_PATTERN}`,
    "-var_stream_map",
    streamMap,
    `%v/${PLAYLIST_NAME}`,
  );
  if (plan.storyboard) args.push("-map", "[sbo]", "-t", seconds(plan.duration), "-c:v", "mjpeg", "-q:v", "2", "-f", "image2", THUMB_PATTERN);
  args.push("-progress", "pipe:1");
  return args;
}

/** Tiles the storyboard's frames (written by the transcode) into sprite sheets storyboard_<n>.jpg. */
export function buildSpriteArgs(plan: StoryboardPlan): string[] {
  return [
    ...QUIET_BATCH,
    "-start_number",
    "1",
    ...hardenedInput(THUMB_PATTERN, "image2"),
    "-vf",
    `tile=${plan.columns}x${plan.rows}`,
    "-c:v",
    "mjpeg",
    "-q:v",
    "5",
    "-f",
    "image2",
    "storyboard_%d.jpg",
  ];
}
