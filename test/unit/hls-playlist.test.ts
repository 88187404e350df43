/** Media playlist parsing, measured bandwidth, codec strings and the master playlist. */
import { describe, expect, test } from "bun:test";
import { avcCodecFromInit, hasAacTrack, measureBandwidth, parseMediaPlaylist, writeMasterPlaylist } from "../../src/modules/hls/playlist.ts";

const FFMPEG_PLAYLIST = `#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init_0.mp4"
#EXTINF:4.000000,
seg_00000.m4s
#EXTINF:2.000000,
seg_00001.m4s
#EXT-X-ENDLIST
`;

describe("parseMediaPlaylist", () => {
  test("ffmpeg's fMP4 VOD playlist", () => {
    expect(parseMediaPlaylist(FFMPEG_PLAYLIST)).toEqual({
      targetDuration: 4,
      map: "init_0.mp4",
      segments: [
        { uri: "seg_00000.m4s", duration: 4 },
        { uri: "seg_00001.m4s", duration: 2 },
      ],
      endList: true,
    });
  });

  test("CRLF line ends and titles after the duration", () => {
    const text = "#EXTM3U\r\n#EXT-X-TARGETDURATION:6\r\n#EXTINF:5.5,first\r\na.ts\r\n";
    expect(parseMediaPlaylist(text)).toEqual({ targetDuration: 6, map: null, segments: [{ uri: "a.ts", duration: 5.5 }], endList: false });
  });

  test.each([
    ["not a playlist", "hello"],
    ["segment without duration", "#EXTM3U\nseg.ts\n"],
  ])("refuses %s", (_name, text) => {
    expect(() => parseMediaPlaylist(text)).toThrow();
  });
});

describe("measureBandwidth", () => {
  // RFC 8216 §4.1: the peak is the largest rate of any contiguous run of segments lasting 0.5 to
  // 1.5 times the target duration.
  const seg = (duration: number, bytes: number) => ({ duration, bytes });
  test.each([
    ["empty", [], 4, { peak: 0, average: 0 }],
    ["constant", [seg(4, 400_000), seg(4, 400_000)], 4, { peak: 800_000, average: 800_000 }],
    ["peak is the busiest segment", [seg(4, 200_000), seg(4, 600_000)], 4, { peak: 1_200_000, average: 800_000 }],
    // A short last segment is too short alone but counts with the one before: 152029 B in 2.4 s.
    ["a short last segment, with the one before (the 4.4 s repro)", [seg(2, 122_113), seg(0.4, 29_916)], 2, { peak: 506_764, average: 506_764 }],
    ["a short stub at the end, with the one before", [seg(4, 400_000), seg(4, 400_000), seg(0.5, 100_000)], 4, { peak: 888_889, average: 847_059 }],
    ["a dense stub is not a peak alone", [seg(4, 400_000), seg(4, 400_000), seg(0.5, 400_000)], 4, { peak: 1_422_223, average: 1_129_412 }],
    ["short segments in the middle count with their neighbours (0.5+4+0.5 s)", [seg(4, 400_000), seg(0.5, 200_000), seg(4, 400_000), seg(0.5, 200_000)], 4, { peak: 1_280_000, average: 1_066_667 }],
    ["a run up to exactly 1.5x the target counts", [seg(4, 400_000), seg(2, 300_000)], 4, { peak: 1_200_000, average: 933_334 }],
    ["a run up to exactly 0.5x the target counts", [seg(1, 100_000), seg(1, 150_000), seg(4, 100_000)], 4, { peak: 1_000_000, average: 466_667 }],
    ["short segments pair up into runs", [seg(1, 50_000), seg(1, 50_000), seg(1, 200_000), seg(4, 200_000)], 4, { peak: 1_000_000, average: 571_429 }],
    // [4.4, 1.9] would be 380953 b/s, but 6.3 s is more than 6: the 1.9 s segment is in no run.
    ["runs longer than 1.5x the target do not count", [seg(4.4, 100_000), seg(1.9, 200_000), seg(4.4, 100_000)], 4, { peak: 299_066, average: 299_066 }],
    // Only the 4.4 s segment qualifies alone ([1.9, 4.4] is 6.3 s); the average is the floor.
    ["never below the average", [seg(1.9, 500_000), seg(4.4, 100_000), seg(1.9, 500_000)], 4, { peak: 1_073_171, average: 1_073_171 }],
    ["fallback: a video shorter than half the target is its own peak", [seg(1, 50_000)], 4, { peak: 400_000, average: 400_000 }],
    ["fallback: two segments shorter than half the target together", [seg(0.5, 50_000), seg(0.5, 100_000)], 4, { peak: 1_200_000, average: 1_200_000 }],
  ])("%s", (_name, segments, target, expected) => {
    expect(measureBandwidth(segments, target)).toEqual(expected);
  });
});

describe("avcCodecFromInit", () => {
  const box = (bytes: number[]) => new Uint8Array([0, 0, 0, 0, ...Buffer.from("ftyp"), 0, 0, 0, 20, ...Buffer.from("avcC"), ...bytes]);
  test.each([
    ["High 3.0", [1, 0x64, 0x00, 0x1e], "avc1.64001e"],
    ["High 4.0", [1, 0x64, 0x00, 0x28], "avc1.640028"],
    ["Main 3.1", [1, 0x4d, 0x40, 0x1f], "avc1.4d401f"],
    ["Constrained Baseline 3.0", [1, 0x42, 0xe0, 0x1e], "avc1.42e01e"],
  ])("%s", (_name, record, expected) => {
    expect(avcCodecFromInit(box([...record, 0xff, 0xe1]))).toBe(expected);
  });

  test("no avcC box (e.g. HEVC or audio only)", () => {
    expect(avcCodecFromInit(new Uint8Array(Buffer.from("....ftypisom....hvcC\x01\x01")))).toBeNull();
    expect(avcCodecFromInit(new Uint8Array(0))).toBeNull();
  });

  test("AAC track detection", () => {
    expect(hasAacTrack(new Uint8Array(Buffer.from("stsd....mp4a....esds")))).toBe(true);
    expect(hasAacTrack(new Uint8Array(Buffer.from("stsd....avc1....avcC")))).toBe(false);
  });
});

describe("writeMasterPlaylist", () => {
  test("every attribute a player chooses by, lowest bandwidth first", () => {
    const text = writeMasterPlaylist([
      { uri: "360p/index.m3u8", bandwidth: { peak: 1_000_000, average: 900_000 }, width: 640, height: 360, fps: 30, codecs: ["avc1.64001e", "mp4a.40.2"] },
      { uri: "240p/index.m3u8", bandwidth: { peak: 520_000.4, average: 480_000 }, width: 426, height: 240, fps: 30000 / 1001, codecs: ["avc1.640015", "mp4a.40.2"] },
    ]);
    expect(text).toBe(
      [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        "",
        '#EXT-X-STREAM-INF:BANDWIDTH=520000,AVERAGE-BANDWIDTH=480000,RESOLUTION=426x240,FRAME-RATE=29.970,CODECS="avc1.640015,mp4a.40.2"',
        "240p/index.m3u8",
        '#EXT-X-STREAM-INF:BANDWIDTH=1000000,AVERAGE-BANDWIDTH=900000,RESOLUTION=640x360,FRAME-RATE=30.000,CODECS="avc1.64001e,mp4a.40.2"',
        "360p/index.m3u8",
        "",
      ].join("\n"),
    );
  });

  test("needs a variant", () => {
    expect(() => writeMasterPlaylist([])).toThrow();
  });
});
