/**
 * HLS playlists (RFC 8216). Pure: reading the media playlists ffmpeg wrote, measuring the
 * bit rates of what was actually produced, reading the codec from an init segment, and writing
 * the master playlist with every attribute a player uses to choose (ffmpeg's own master playlist
 * lacks AVERAGE-BANDWIDTH and FRAME-RATE, and its CODECS is unreliable).
 */

export interface MediaSegment {
  uri: string;
  duration: number;
}

export interface MediaPlaylist {
  targetDuration: number;
  /** The EXT-X-MAP init segment (fMP4), if any. */
  map: string | null;
  segments: MediaSegment[];
  endList: boolean;
}

function attribute(line: string, name: string): string | null {
  const match = line.match(new RegExp(`(?:^|[:,])${name}=("([^"]*)"|[^,]*)`));
  if (!match) return null;
  return match[2] ?? match[1] ?? null;
}

export function parseMediaPlaylist(text: string): MediaPlaylist {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  if (lines[0] !== "#EXTM3U") throw new Error("not an HLS playlist (no #EXTM3U)");
  const playlist: MediaPlaylist = { targetDuration: 0, map: null, segments: [], endList: false };
  let pending: number | null = null;
  for (const line of lines.slice(1)) {
    if (line === "") continue;
    if (line.startsWith("#EXT-X-TARGETDURATION:")) playlist.targetDuration = Number(line.slice(22));
    else if (line.startsWith("#EXT-X-MAP:")) playlist.map = attribute(line.slice(11), "URI");
    else if (line.startsWith("#EXTINF:")) pending = Number.parseFloat(line.slice(8));
    else if (line === "#EXT-X-ENDLIST") playlist.endList = true;
    else if (!line.startsWith("#")) {
      if (pending === null || !Number.isFinite(pending)) throw new Error(`segment ${line} has no #EXTINF duration`);
      playlist.segments.push({ uri: line, duration: pending });
      pending = null;
    }
  }
  return playlist;
}

export interface SegmentSize {
  duration: number;
  bytes: number;
}

export interface Bandwidth {
  /** Peak segment bit rate, bits/s (BANDWIDTH). */
  peak: number;
  /** Average segment bit rate, bits/s (AVERAGE-BANDWIDTH). */
  average: number;
}

/** EXTINF durations carry six decimals: run lengths on a boundary must not miss it by rounding. */
const DURATION_EPSILON = 1e-6;

/**
 * BANDWIDTH is the peak segment bit rate and AVERAGE-BANDWIDTH the average (RFC 8216 §4.3.4.2).
 * The peak is §4.1's: the largest bit rate of any run of contiguous segments lasting between 0.5
 * and 1.5 times the target duration, so a short segment counts only together with its neighbours.
 */
export function measureBandwidth(segments: readonly SegmentSize[], targetDuration: number): Bandwidth {
  if (segments.length === 0) return { peak: 0, average: 0 };
  const min = 0.5 * targetDuration - DURATION_EPSILON;
  const max = 1.5 * targetDuration + DURATION_EPSILON;
  let peak = 0;
  for (let i = 0; i < segments.length; i++) {
    let bytes = 0;
    let seconds = 0;
    for (let j = i; j < segments.length; j++) {
      bytes += segments[j]!.bytes;
      seconds += segments[j]!.duration;
      if (seconds > max) break;
      if (seconds >= min && seconds > 0) peak = Math.max(peak, (bytes * 8) / seconds);
    }
  }
  const bytes = segments.reduce((sum, s) => sum + s.bytes, 0);
  const seconds = segments.reduce((sum, s) => sum + s.duration, 0);
  const average = seconds > 0 ? (bytes * 8) / seconds : 0;
  // No run qualifies when the whole rendition lasts less than half the target (a very short
  // video): its one rate is then the peak. The average is a floor too: with uneven segments the
  // qualifying runs may leave a busy one out, and BANDWIDTH below AVERAGE-BANDWIDTH is nonsense.
  return { peak: Math.ceil(Math.max(peak, average)), average: Math.ceil(average) };
}

const hex2 = (n: number) => n.toString(16).padStart(2, "0");

/**
 * The RFC 6381 codec string of the H.264 stream in an MP4 init segment, from its avcC box
 * (profile, constraint flags, level): e.g. `avc1.64001f`. Null when there is no avcC.
 */
export function avcCodecFromInit(bytes: Uint8Array): string | null {
  for (let i = 4; i + 8 <= bytes.length; i++) {
    // 'avcC' box type, preceded by its 32-bit size; the record starts with configurationVersion 1.
    if (bytes[i] === 0x61 && bytes[i + 1] === 0x76 && bytes[i + 2] === 0x63 && bytes[i + 3] === 0x43 && bytes[i + 4] === 1) {
      return `avc1.${hex2(bytes[i + 5]!)}${hex2(bytes[i + 6]!)}${hex2(bytes[i + 7]!)}`;
    }
  }
  return null;
}

/** Whether an init segment carries an AAC ('mp4a') track. */
export function hasAacTrack(bytes: Uint8Array): boolean {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).includes("mp4a");
}

export interface VariantEntry {
  uri: string;
  bandwidth: Bandwidth;
  width: number;
  height: number;
  fps: number;
  codecs: string[];
}

/** The master playlist, variants in ascending bandwidth (the first is where Apple players start). */
export function writeMasterPlaylist(variants: readonly VariantEntry[]): string {
  if (variants.length === 0) throw new Error("a master playlist needs at least one variant");
  const lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", ""];
  for (const v of [...variants].sort((a, b) => a.bandwidth.peak - b.bandwidth.peak)) {
    const attrs = [
      `BANDWIDTH=${Math.round(v.bandwidth.peak)}`,
      `AVERAGE-BANDWIDTH=${Math.round(v.bandwidth.average)}`,
      `RESOLUTION=${v.width}x${v.height}`,
      `FRAME-RATE=${v.fps.toFixed(3)}`,
      `CODECS="${v.codecs.join(",")}"`,
    ];
    lines.push(`#EXT-X-STREAM-INF:${attrs.join(",")}`, v.uri);
  }
  return lines.join("\n") + "\n";
}
