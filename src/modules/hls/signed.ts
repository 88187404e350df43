/**
 * Playlists of a signed video, as served to a token holder: every URI they contain carries the
 * token, so hls.js, Safari's native player or any HLS client follows master → variant →
 * init/media segments (and a player the storyboard's sprites) with nothing but the first URL.
 * Pure text rewriting; table-tested in test/unit/hls-signed.test.ts.
 */
import { withToken } from "../../http/path.ts";

/**
 * An M3U8 playlist (RFC 8216) with the token on every URI: URI lines, and the quoted URI
 * attributes of tags (EXT-X-MAP, EXT-X-MEDIA, EXT-X-KEY, EXT-X-I-FRAME-STREAM-INF, ...).
 */
export function signPlaylist(text: string, token: string): string {
  return text
    .split("\n")
    .map((line) => {
      const trimmed = line.trim();
      if (trimmed === "") return line;
      if (!trimmed.startsWith("#")) return withToken(trimmed, token) + (line.endsWith("\r") ? "\r" : "");
      return line.replace(/URI="([^"]*)"/g, (_m, uri: string) => `URI="${withToken(uri, token)}"`);
    })
    .join("\n");
}

/** A WebVTT storyboard: each cue's payload (a sprite URL with `#xywh=`) carries the token. */
export function signStoryboard(text: string, token: string): string {
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    if (lines[i - 1]!.includes("-->") && lines[i]!.trim() !== "") lines[i] = withToken(lines[i]!.trim(), token);
  }
  return lines.join("\n");
}
