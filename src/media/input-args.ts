/**
 * The input options every ffmpeg/ffprobe run on user bytes carries, for ingest and transcoding
 * alike (one definition, so a hardening fix reaches every run). Pure.
 *
 *  - `-protocol_whitelist file`: no network protocol, no `concat:`/`subfile:`/`data:` tricks.
 *  - `-format_whitelist`: the demuxer ffprobe identified (then pinned with `-f`), or, before
 *    anything is known, the list of accepted demuxers: playlists, scripts, image sequences and
 *    devices are refused by the probe itself.
 */
import { FORMAT_WHITELIST, type Demuxer } from "./formats.ts";

/** `input` is passed as given: callers pass `file:<absolute path>` so a name never reads as a protocol. */
export function hardenedInput(input: string, demuxer?: Demuxer | string): string[] {
  return ["-protocol_whitelist", "file", "-format_whitelist", demuxer ?? FORMAT_WHITELIST, ...(demuxer ? ["-f", demuxer] : []), "-i", input];
}
