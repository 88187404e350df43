/**
 * ffprobe's JSON (`-show_format -show_streams -of json`) → the typed metadata Spool records.
 * Pure: no I/O, so it is tested table-driven on captured ffprobe output.
 *
 * A file is media only if an accepted demuxer opened it and it has at least one real audio or
 * video stream (cover art does not count). Everything else is a `NotMediaError`.
 */
import { demuxerOf, detectContainer, type ContainerInfo, type Demuxer } from "./formats.ts";

export interface MediaInfo extends ContainerInfo {
  /** The ffmpeg demuxer later runs are pinned to with `-f` (no second guess on the same bytes). */
  demuxer: Demuxer;
  /** Seconds, when the container or its streams say. */
  duration: number | null;
  /** Display size of the first video stream: pixel aspect and rotation applied, as players show it. */
  width: number | null;
  height: number | null;
  videoCodec: string | null;
  audioCodec: string | null;
  /** Bits per second, overall. */
  bitrate: number | null;
  /** Average frames per second of the video stream. */
  frameRate: number | null;
  hasVideo: boolean;
  hasAudio: boolean;
}

export class NotMediaError extends Error {
  override name = "NotMediaError";
}

/**
 * What a server accepts, checked on ffprobe's description before anything else is done with the
 * bytes (MAX_DURATION_S, MAX_PIXELS, MAX_FPS); 0 means no limit. They bound the work an upload
 * can cause: every second and every pixel of a video is decoded again for its HLS ladder.
 */
export interface IngestLimits {
  /** Longest duration, in seconds. */
  maxDurationS: number;
  /** Largest frame, width x height of the first video stream. */
  maxPixels: number;
  /** Highest average frame rate of the first video stream. */
  maxFps: number;
}

/** The defaults of MAX_DURATION_S, MAX_PIXELS and MAX_FPS (src/env.ts declares them for the environment). */
export const DEFAULT_INGEST_LIMITS: Readonly<IngestLimits> = { maxDurationS: 6 * 60 * 60, maxPixels: 8192 * 4320, maxFps: 240 };

/** Media Spool could read but will not take: the message names the limit and the value found. */
export class MediaLimitError extends Error {
  override name = "MediaLimitError";
  constructor(
    /** The variable that sets the limit. */
    readonly limit: "MAX_DURATION_S" | "MAX_PIXELS" | "MAX_FPS",
    message: string,
  ) {
    super(message);
  }
}

/** 600 → "600", 2.0234 → "2.023", 29.97002997 → "29.97". */
const figure = (n: number) => String(Number(n.toFixed(3)));

/** Throws a MediaLimitError for the first limit the media exceeds (values ffprobe could not tell are not judged). */
export function checkLimits(info: Pick<MediaInfo, "duration" | "width" | "height" | "frameRate" | "hasVideo">, limits: IngestLimits): void {
  const what = info.hasVideo ? "video" : "audio file";
  if (limits.maxDurationS > 0 && info.duration !== null && info.duration > limits.maxDurationS) {
    throw new MediaLimitError("MAX_DURATION_S", `The ${what} is ${figure(info.duration)} s long; this server accepts at most ${limits.maxDurationS} s (MAX_DURATION_S)`);
  }
  if (limits.maxPixels > 0 && info.width !== null && info.height !== null && info.width * info.height > limits.maxPixels) {
    throw new MediaLimitError(
      "MAX_PIXELS",
      `The video is ${info.width}x${info.height} (${info.width * info.height} pixels a frame); this server accepts at most ${limits.maxPixels} pixels a frame (MAX_PIXELS)`,
    );
  }
  if (limits.maxFps > 0 && info.frameRate !== null && info.frameRate > limits.maxFps) {
    throw new MediaLimitError("MAX_FPS", `The video runs at ${figure(info.frameRate)} frames per second; this server accepts at most ${limits.maxFps} (MAX_FPS)`);
  }
}

/** What the parser needs besides ffprobe's output: facts about the bytes it cannot see. */
export interface ProbeHints {
  /** File size in bytes, for a bitrate when the container states none. */
  size?: number;
  /** Matroska EBML DocType read from the file head (see `ebmlDocType`). */
  ebmlDocType?: string;
}

interface RawStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  /** "32:27" for anamorphic video; "1:1", "0:1" or absent for square pixels. */
  sample_aspect_ratio?: string;
  duration?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  disposition?: Record<string, number>;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number | string }[];
}

interface RawFormat {
  format_name?: string;
  duration?: string;
  bit_rate?: string;
  size?: string;
  tags?: Record<string, string>;
}

function positive(value: unknown): number | null {
  const n = typeof value === "number" ? value : typeof value === "string" && value.trim() !== "" ? Number(value) : NaN;
  return Number.isFinite(n) && n > 0 ? n : null;
}

function positiveInt(value: unknown): number | null {
  const n = positive(value);
  return n === null ? null : Math.round(n);
}

/** "30000/1001" → 29.97; "0/0" → null. */
export function parseRate(value: string | undefined): number | null {
  if (!value) return null;
  const [num, den] = value.split("/").map(Number);
  if (den === undefined) return positive(num);
  if (!Number.isFinite(num) || !Number.isFinite(den) || den === 0) return null;
  return positive(num! / den);
}

/**
 * Pixel aspect ratio ("32:27" → 1.185); 1 when square, unknown ("0:1") or absurd. Anamorphic video
 * (DVD, HDV, some phone and broadcast files) stores fewer columns than it shows.
 */
export function sampleAspect(value: string | undefined): number {
  const m = value ? /^(\d+):(\d+)$/.exec(value) : null;
  if (!m) return 1;
  const ratio = Number(m[1]) / Number(m[2]);
  return Number.isFinite(ratio) && ratio >= 0.1 && ratio <= 10 ? ratio : 1;
}

/** Rotation in degrees from the display matrix (or the legacy `rotate` tag), normalized to 0..359. */
export function rotationOf(stream: RawStream): number {
  let degrees = 0;
  const matrix = stream.side_data_list?.find((s) => s.side_data_type === "Display Matrix" && s.rotation !== undefined);
  if (matrix) degrees = Number(matrix.rotation);
  else if (stream.tags?.rotate !== undefined) degrees = Number(stream.tags.rotate);
  if (!Number.isFinite(degrees)) return 0;
  return ((Math.round(degrees) % 360) + 360) % 360;
}

const NO_CODEC = new Set(["", "none", "unknown"]);

function isRealStream(s: RawStream, type: "video" | "audio"): boolean {
  if (s.codec_type !== type || !s.codec_name || NO_CODEC.has(s.codec_name)) return false;
  // Cover art and thumbnails are video streams of one picture: not a video.
  if (type === "video" && (s.disposition?.attached_pic === 1 || s.disposition?.timed_thumbnails === 1)) return false;
  if (type === "video" && !(positive(s.width) && positive(s.height))) return false;
  return true;
}

/**
 * A readable reason from ffprobe's stderr when it refused a file, without the server's paths:
 * "Format not on whitelist" names the demuxer that recognised the bytes (an HLS playlist, a
 * concat script...), anything else is "not audio or video".
 */
export function describeProbeFailure(stderr: string): string {
  const refused = /\[([a-z0-9_]+) @ 0x[0-9a-f]+\] Format not on whitelist/i.exec(stderr);
  if (refused) {
    const format = refused[1]!;
    const kind = FORMAT_KINDS[format];
    return kind ? `The file is ${kind}, not a video or audio file` : `The file's format ("${format}") is not an accepted video or audio container`;
  }
  if (/moov atom not found/.test(stderr)) return "The file looks like MP4 or QuickTime but has no movie index (moov): it is incomplete or not a video";
  if (/Invalid data found when processing input/.test(stderr)) return "The file is not in a recognised video or audio format";
  return "The file could not be read as video or audio";
}

/** Demuxers whose input is not media but instructions to open other inputs, or pictures. */
const FORMAT_KINDS: Record<string, string> = {
  hls: "an HLS playlist (m3u8)",
  dash: "a DASH manifest",
  concat: "an ffmpeg concat script",
  image2: "an image",
  png_pipe: "a PNG image",
  jpeg_pipe: "a JPEG image",
  webp_pipe: "a WebP image",
  gif: "a GIF image",
  tty: "a text file",
  srt: "a subtitle file",
  webvtt: "a subtitle file",
  ass: "a subtitle file",
  ffmetadata: "an ffmpeg metadata file",
  sdp: "an SDP session description",
  rtsp: "an RTSP session description",
};

export function parseProbe(json: unknown, hints: ProbeHints = {}): MediaInfo {
  if (!json || typeof json !== "object") throw new NotMediaError("ffprobe returned no description of the file");
  const { format, streams } = json as { format?: RawFormat; streams?: RawStream[] };
  if (!format?.format_name) throw new NotMediaError("The file is not in a recognised audio or video container");
  const demuxer = demuxerOf(format.format_name);
  if (!demuxer) throw new NotMediaError(`The "${format.format_name}" format is not accepted`);

  const all = Array.isArray(streams) ? streams : [];
  const video = all.find((s) => isRealStream(s, "video"));
  const audio = all.find((s) => isRealStream(s, "audio"));
  if (!video && !audio) throw new NotMediaError("The file contains no audio or video stream");

  let duration = positive(format.duration);
  if (duration === null) {
    const durations = [video, audio].map((s) => positive(s?.duration)).filter((d): d is number => d !== null);
    duration = durations.length ? Math.max(...durations) : null;
  }

  let width = video ? positiveInt(video.width) : null;
  let height = video ? positiveInt(video.height) : null;
  // The size players show (a browser's videoWidth): the stored width stretched by the pixel
  // aspect, so the ladder, storyboard and thumbnails keep the picture's real proportions.
  const sar = video ? sampleAspect(video.sample_aspect_ratio) : 1;
  if (width !== null && sar !== 1) width = Math.max(1, Math.round(width * sar));
  if (video && (rotationOf(video) === 90 || rotationOf(video) === 270)) [width, height] = [height, width];

  const size = positive(hints.size) ?? positive(format.size);
  let bitrate = positiveInt(format.bit_rate);
  if (bitrate === null && size !== null && duration !== null) bitrate = Math.round((size * 8) / duration);

  const hasVideo = !!video;
  const container = detectContainer({
    demuxer,
    majorBrand: format.tags?.major_brand,
    ebmlDocType: hints.ebmlDocType,
    hasVideo,
    codecs: [video?.codec_name, audio?.codec_name].filter((c): c is string => !!c),
  });

  return {
    ...container,
    demuxer,
    duration: duration === null ? null : Math.round(duration * 1000) / 1000,
    width,
    height,
    videoCodec: video?.codec_name ?? null,
    audioCodec: audio?.codec_name ?? null,
    bitrate,
    frameRate: video ? (parseRate(video.avg_frame_rate) ?? parseRate(video.r_frame_rate)) : null,
    hasVideo,
    hasAudio: !!audio,
  };
}
