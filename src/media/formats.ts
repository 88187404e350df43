/**
 * Which containers Spool accepts, and what they are called once accepted. Pure.
 *
 * ffmpeg's demuxers are the unit of trust: ffprobe and ffmpeg only ever open user bytes with
 * `-format_whitelist` set to ACCEPTED_DEMUXERS, so playlists (hls, dash), scripts (concat),
 * image sequences (image2), device and network demuxers are never even tried. The stored
 * extension and Content-Type come from what the demuxer found, never from the client.
 */

/** ffmpeg demuxer names (the first word of ffprobe's `format_name`). */
export const ACCEPTED_DEMUXERS = ["mov", "matroska", "ogg", "mp3", "flac", "wav", "aac", "avi", "mpegts"] as const;
export type Demuxer = (typeof ACCEPTED_DEMUXERS)[number];

export const FORMAT_WHITELIST = ACCEPTED_DEMUXERS.join(",");

export interface ContainerInfo {
  /** Normalized name stored in `videos.container` (and the stored file's extension). */
  container: string;
  extension: string;
  contentType: string;
}

const CONTAINERS: Record<string, ContainerInfo> = {
  mp4: { container: "mp4", extension: "mp4", contentType: "video/mp4" },
  mov: { container: "mov", extension: "mov", contentType: "video/quicktime" },
  m4a: { container: "m4a", extension: "m4a", contentType: "audio/mp4" },
  "3gp": { container: "3gp", extension: "3gp", contentType: "video/3gpp" },
  webm: { container: "webm", extension: "webm", contentType: "video/webm" },
  mkv: { container: "mkv", extension: "mkv", contentType: "video/x-matroska" },
  ogv: { container: "ogv", extension: "ogv", contentType: "video/ogg" },
  ogg: { container: "ogg", extension: "ogg", contentType: "audio/ogg" },
  mp3: { container: "mp3", extension: "mp3", contentType: "audio/mpeg" },
  flac: { container: "flac", extension: "flac", contentType: "audio/flac" },
  wav: { container: "wav", extension: "wav", contentType: "audio/wav" },
  aac: { container: "aac", extension: "aac", contentType: "audio/aac" },
  avi: { container: "avi", extension: "avi", contentType: "video/x-msvideo" },
  ts: { container: "ts", extension: "ts", contentType: "video/mp2t" },
};

export function containerInfo(name: string): ContainerInfo | undefined {
  return CONTAINERS[name];
}

/** The accepted demuxer named by ffprobe's `format_name` ("mov,mp4,m4a,3gp,3g2,mj2" → "mov"). */
export function demuxerOf(formatName: string): Demuxer | undefined {
  const names = formatName.split(",").map((n) => n.trim());
  return ACCEPTED_DEMUXERS.find((d) => names.includes(d));
}

/** Codecs a WebM file may carry; anything else in Matroska means .mkv. */
const WEBM_CODECS = new Set(["vp8", "vp9", "av1", "opus", "vorbis"]);

export interface ContainerEvidence {
  demuxer: Demuxer;
  /** ISO BMFF `major_brand` (format tags), e.g. "isom", "qt  ", "M4A ". */
  majorBrand?: string;
  /** Matroska EBML DocType read from the file's first bytes: "webm" or "matroska". */
  ebmlDocType?: string;
  hasVideo: boolean;
  codecs: string[];
}

/** Decides the stored container from the demuxer and the bytes' own declarations. */
export function detectContainer(e: ContainerEvidence): ContainerInfo {
  switch (e.demuxer) {
    case "mov": {
      const brand = (e.majorBrand ?? "").trim().toLowerCase();
      if (brand === "qt") return CONTAINERS.mov!;
      if (brand.startsWith("3g")) return CONTAINERS["3gp"]!;
      if (brand === "m4a" || brand === "m4b" || !e.hasVideo) return CONTAINERS.m4a!;
      return CONTAINERS.mp4!;
    }
    case "matroska": {
      const webm = e.ebmlDocType ? e.ebmlDocType === "webm" : e.codecs.every((c) => WEBM_CODECS.has(c));
      return webm ? CONTAINERS.webm! : CONTAINERS.mkv!;
    }
    case "ogg":
      return e.hasVideo ? CONTAINERS.ogv! : CONTAINERS.ogg!;
    case "mpegts":
      return CONTAINERS.ts!;
    default:
      return CONTAINERS[e.demuxer]!;
  }
}

/** The demuxer that reads a stored container (the inverse of `detectContainer`). */
export function demuxerForContainer(container: string | null): Demuxer | undefined {
  switch (container) {
    case "mp4":
    case "mov":
    case "m4a":
    case "3gp":
      return "mov";
    case "webm":
    case "mkv":
      return "matroska";
    case "ogg":
    case "ogv":
      return "ogg";
    case "ts":
      return "mpegts";
    case "mp3":
    case "flac":
    case "wav":
    case "aac":
    case "avi":
      return container;
    default:
      return undefined;
  }
}

/** The muxer that rewrites an ISO BMFF file of this container (faststart remux). */
export function isoMuxerFor(container: string): string | undefined {
  switch (container) {
    case "mp4":
      return "mp4";
    case "mov":
      return "mov";
    case "m4a":
      return "ipod";
    case "3gp":
      return "3gp";
    default:
      return undefined;
  }
}

/** The muxer that rewrites a Matroska file of this container with its duration and cues (see MediaTools.remuxIndexed). */
export function matroskaMuxerFor(container: string): string | undefined {
  switch (container) {
    case "webm":
      return "webm";
    case "mkv":
      return "matroska";
    default:
      return undefined;
  }
}

/**
 * Reads the EBML DocType ("webm" / "matroska") from the first bytes of a Matroska file.
 * Returns undefined when the header is not where EBML puts it.
 */
export function ebmlDocType(head: Uint8Array): string | undefined {
  if (head.length < 4 || head[0] !== 0x1a || head[1] !== 0x45 || head[2] !== 0xdf || head[3] !== 0xa3) return undefined;
  // DocType is element 0x4282 inside the EBML header; its size is an EBML variable-length int.
  for (let i = 4; i + 3 < head.length; i++) {
    if (head[i] !== 0x42 || head[i + 1] !== 0x82) continue;
    const first = head[i + 2]!;
    let width = 1;
    while (width <= 8 && !(first & (0x80 >> (width - 1)))) width++;
    if (width > 8) return undefined;
    let size = first & (0xff >> width);
    for (let k = 1; k < width; k++) size = size * 256 + (head[i + 2 + k] ?? 0);
    const start = i + 2 + width;
    if (size > 32 || start + size > head.length) return undefined;
    return new TextDecoder().decode(head.subarray(start, start + size)).replace(/\0+$/, "");
  }
  return undefined;
}
