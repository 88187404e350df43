import { describe, expect, test } from "bun:test";
import { signPlaylist, signStoryboard } from "../../src/modules/hls/signed.ts";
import { newUploadId, videoIdOfUpload } from "../../src/modules/uploads/upload-ids.ts";

const T = "eyJ.a-b_c.x";

describe("signPlaylist", () => {
  test("a master playlist: every variant URI carries the token; tags and attributes are untouched", () => {
    const master = '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n#EXT-X-STREAM-INF:BANDWIDTH=389818,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n360p/index.m3u8\n#EXT-X-STREAM-INF:BANDWIDTH=989818,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"\n720p/index.m3u8\n';
    expect(signPlaylist(master, T)).toBe(
      `#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\n#EXT-X-STREAM-INF:BANDWIDTH=389818,RESOLUTION=640x360,CODECS="avc1.64001e,mp4a.40.2"\n360p/index.m3u8?token=${T}\n#EXT-X-STREAM-INF:BANDWIDTH=989818,RESOLUTION=1280x720,CODECS="avc1.64001f,mp4a.40.2"\n720p/index.m3u8?token=${T}\n`,
    );
  });

  test("a media playlist: the init segment (EXT-X-MAP URI) and every segment", () => {
    const media = '#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init_0.mp4"\n#EXTINF:4.000000,\nseg_00000.m4s\n#EXTINF:2.5,\nseg_00001.m4s\n#EXT-X-ENDLIST\n';
    expect(signPlaylist(media, T)).toBe(
      `#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI="init_0.mp4?token=${T}"\n#EXTINF:4.000000,\nseg_00000.m4s?token=${T}\n#EXTINF:2.5,\nseg_00001.m4s?token=${T}\n#EXT-X-ENDLIST\n`,
    );
  });

  test("CRLF line ends, URIs with a query, and URI attributes of other tags", () => {
    const text = '#EXTM3U\r\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="audio/index.m3u8?v=1"\r\nseg.m4s?v=2\r\n';
    expect(signPlaylist(text, T)).toBe(`#EXTM3U\r\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",URI="audio/index.m3u8?v=1&token=${T}"\r\nseg.m4s?v=2&token=${T}\r\n`);
  });
});

describe("signStoryboard", () => {
  test("each cue's sprite URL carries the token before its #xywh fragment", () => {
    const vtt = "WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard_1.jpg#xywh=0,0,160,90\n\n00:00:01.000 --> 00:00:02.000\nstoryboard_1.jpg#xywh=160,0,160,90\n";
    expect(signStoryboard(vtt, T)).toBe(
      `WEBVTT\n\n00:00:00.000 --> 00:00:01.000\nstoryboard_1.jpg?token=${T}#xywh=0,0,160,90\n\n00:00:01.000 --> 00:00:02.000\nstoryboard_1.jpg?token=${T}#xywh=160,0,160,90\n`,
    );
  });
});

describe("upload ids", () => {
  test("carry the video id and 192 secret bits; never equal the video id; always different", () => {
    const a = newUploadId("q7cN0l1dQ5m0tS9xYk3eZA");
    const b = newUploadId("q7cN0l1dQ5m0tS9xYk3eZA");
    expect(a).toMatch(/^q7cN0l1dQ5m0tS9xYk3eZA\.[A-Za-z0-9_-]{32}$/);
    expect(a).not.toBe(b);
    expect(videoIdOfUpload(a)).toBe("q7cN0l1dQ5m0tS9xYk3eZA");
  });
  test.each([
    ["q7cN0l1dQ5m0tS9xYk3eZA", null],
    ["q7cN0l1dQ5m0tS9xYk3eZA.short", null],
    [`bad!id.${"a".repeat(32)}`, null],
    [`demo.${"a".repeat(32)}`, "demo"],
    [`demo.${"a".repeat(31)}!`, null],
    [".", null],
  ] as const)("videoIdOfUpload(%p) → %p", (id, expected) => expect(videoIdOfUpload(id)).toBe(expected));
});
