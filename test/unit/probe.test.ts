/** ffprobe JSON → MediaInfo, table-driven on output captured from real ffmpeg-made files. */
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { readEnv } from "../../src/env.ts";
import { FORMAT_WHITELIST, demuxerForContainer, demuxerOf, detectContainer, ebmlDocType } from "../../src/media/formats.ts";
import { DEFAULT_INGEST_LIMITS, MediaLimitError, NotMediaError, checkLimits, describeProbeFailure, parseProbe, parseRate, rotationOf, type MediaInfo } from "../../src/media/probe.ts";
import { lastErrorLine } from "../../src/media/tools.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/ffprobe");
const captured = async (name: string) => JSON.parse(await Bun.file(join(FIXTURES, name)).text()) as unknown;

type Expected = Partial<MediaInfo>;

const CASES: [file: string, hints: { ebmlDocType?: string }, expected: Expected][] = [
  [
    "mp4-h264-aac.json",
    {},
    { demuxer: "mov", container: "mp4", extension: "mp4", contentType: "video/mp4", duration: 2, width: 320, height: 240, videoCodec: "h264", audioCodec: "aac", bitrate: 241512, frameRate: 25, hasVideo: true, hasAudio: true },
  ],
  ["mp4-rotated-90.json", {}, { container: "mp4", width: 240, height: 320, videoCodec: "h264" }],
  ["mov-h264-aac.json", {}, { demuxer: "mov", container: "mov", extension: "mov", contentType: "video/quicktime", width: 320, height: 240, bitrate: 241716 }],
  [
    "m4a-aac.json",
    {},
    { demuxer: "mov", container: "m4a", contentType: "audio/mp4", width: null, height: null, videoCodec: null, audioCodec: "aac", duration: 2, frameRate: null, hasVideo: false, hasAudio: true },
  ],
  [
    "webm-vp9-opus.json",
    { ebmlDocType: "webm" },
    { demuxer: "matroska", container: "webm", extension: "webm", contentType: "video/webm", videoCodec: "vp9", audioCodec: "opus", duration: 2.008, bitrate: 285780 },
  ],
  // Without the DocType, the codecs decide: VP9 + Opus is WebM material.
  ["webm-vp9-opus.json", {}, { container: "webm" }],
  ["mkv-h264-aac.json", { ebmlDocType: "matroska" }, { demuxer: "matroska", container: "mkv", extension: "mkv", contentType: "video/x-matroska", videoCodec: "h264", duration: 2.023 }],
  ["mkv-h264-aac.json", {}, { container: "mkv" }],
  ["mp3.json", {}, { demuxer: "mp3", container: "mp3", contentType: "audio/mpeg", audioCodec: "mp3", videoCodec: null, duration: 2.038, bitrate: 64889 }],
  // Cover art is a picture, not a video: the file stays audio.
  ["mp3-cover-art.json", {}, { container: "mp3", hasVideo: false, width: null, height: null, videoCodec: null, audioCodec: "mp3" }],
];

describe("parseProbe on captured ffprobe output", () => {
  for (const [file, hints, expected] of CASES) {
    test(`${file}${hints.ebmlDocType ? ` (DocType ${hints.ebmlDocType})` : ""}`, async () => {
      const info = parseProbe(await captured(file), hints);
      expect(info).toMatchObject(expected);
    });
  }

  test("every field is typed: numbers or null, strings or null", async () => {
    const info = parseProbe(await captured("mp4-h264-aac.json"));
    expect(Object.keys(info).sort()).toEqual(
      ["audioCodec", "bitrate", "container", "contentType", "demuxer", "duration", "extension", "frameRate", "hasAudio", "hasVideo", "height", "videoCodec", "width"].sort(),
    );
  });
});

const mp4Format = { format_name: "mov,mp4,m4a,3gp,3g2,mj2", duration: "10.5", bit_rate: "1000000", tags: { major_brand: "isom" } };
const h264 = { codec_type: "video", codec_name: "h264", width: 1920, height: 1080, avg_frame_rate: "30000/1001" };
const aac = { codec_type: "audio", codec_name: "aac", duration: "10.4" };

describe("parseProbe on synthetic input", () => {
  const refused: [string, unknown, RegExp][] = [
    ["no JSON", null, /no description/],
    ["no format", { streams: [h264] }, /not in a recognised/],
    ["a playlist demuxer", { format: { format_name: "hls" }, streams: [h264] }, /"hls" format is not accepted/],
    ["an image demuxer", { format: { format_name: "png_pipe" }, streams: [{ ...h264, codec_name: "png" }] }, /not accepted/],
    ["no streams", { format: mp4Format, streams: [] }, /no audio or video stream/],
    ["only cover art", { format: { format_name: "mp3" }, streams: [{ ...h264, codec_name: "mjpeg", disposition: { attached_pic: 1 } }] }, /no audio or video stream/],
    ["a video stream without size", { format: mp4Format, streams: [{ codec_type: "video", codec_name: "h264" }] }, /no audio or video stream/],
    ["an unknown codec", { format: mp4Format, streams: [{ codec_type: "audio", codec_name: "none" }] }, /no audio or video stream/],
    ["only data streams", { format: mp4Format, streams: [{ codec_type: "data", codec_name: "bin_data" }] }, /no audio or video stream/],
  ];
  for (const [name, json, message] of refused) {
    test(`refuses ${name}`, () => {
      expect(() => parseProbe(json)).toThrow(NotMediaError);
      expect(() => parseProbe(json)).toThrow(message);
    });
  }

  test("duration falls back to the longest stream, bitrate to size / duration", () => {
    const info = parseProbe({ format: { format_name: "matroska,webm" }, streams: [{ ...h264, duration: "4.0" }, { ...aac, duration: "4.5" }] }, { size: 450_000 });
    expect(info.duration).toBe(4.5);
    expect(info.bitrate).toBe(800_000);
  });

  test("unknown duration and bitrate are null, not NaN", () => {
    const info = parseProbe({ format: { format_name: "matroska,webm" }, streams: [h264] });
    expect(info.duration).toBeNull();
    expect(info.bitrate).toBeNull();
  });

  test("frame rates as fractions", () => {
    expect(parseProbe({ format: mp4Format, streams: [h264, aac] }).frameRate).toBeCloseTo(29.97, 2);
    expect(parseRate("0/0")).toBeNull();
    expect(parseRate("25")).toBe(25);
    expect(parseRate(undefined)).toBeNull();
  });

  test.each([
    [{ side_data_list: [{ side_data_type: "Display Matrix", rotation: -90 }] }, 270],
    [{ side_data_list: [{ side_data_type: "Display Matrix", rotation: 180 }] }, 180],
    [{ tags: { rotate: "90" } }, 90],
    [{}, 0],
  ])("rotation %j → %d", (stream, degrees) => {
    expect(rotationOf(stream)).toBe(degrees);
  });

  test("a portrait phone video reports its display size", () => {
    const info = parseProbe({ format: mp4Format, streams: [{ ...h264, side_data_list: [{ side_data_type: "Display Matrix", rotation: -90 }] }, aac] });
    expect([info.width, info.height]).toEqual([1080, 1920]);
  });

  test.each([
    ["DVD NTSC 16:9", { width: 720, height: 480, sample_aspect_ratio: "32:27" }, [853, 480]],
    ["PAL 4:3", { width: 720, height: 576, sample_aspect_ratio: "16:15" }, [768, 576]],
    ["HDV 1440x1080", { width: 1440, height: 1080, sample_aspect_ratio: "4:3" }, [1920, 1080]],
    ["narrower than stored", { width: 720, height: 480, sample_aspect_ratio: "8:9" }, [640, 480]],
    ["square", { width: 640, height: 360, sample_aspect_ratio: "1:1" }, [640, 360]],
    ["unknown (0:1)", { width: 640, height: 360, sample_aspect_ratio: "0:1" }, [640, 360]],
    ["absurd", { width: 640, height: 360, sample_aspect_ratio: "1000:1" }, [640, 360]],
    ["malformed", { width: 640, height: 360, sample_aspect_ratio: "N/A" }, [640, 360]],
    ["anamorphic and rotated", { width: 1440, height: 1080, sample_aspect_ratio: "4:3", side_data_list: [{ side_data_type: "Display Matrix", rotation: 90 }] }, [1080, 1920]],
  ] as const)("pixel aspect: %s → the size players show", (_name, stream, size) => {
    const info = parseProbe({ format: mp4Format, streams: [{ ...h264, ...stream }, aac] });
    expect([info.width, info.height]).toEqual([...size]);
  });

  test.each([
    ["qt  ", true, "mov"],
    ["isom", true, "mp4"],
    ["mp42", true, "mp4"],
    ["M4A ", false, "m4a"],
    ["isom", false, "m4a"],
    ["3gp5", true, "3gp"],
  ])("ISO BMFF brand %j (video: %p) → %s", (majorBrand, hasVideo, container) => {
    expect(detectContainer({ demuxer: "mov", majorBrand, hasVideo, codecs: [] }).container).toBe(container);
  });

  test("ogg with video is ogv, without is ogg; mpegts is ts", () => {
    expect(detectContainer({ demuxer: "ogg", hasVideo: true, codecs: ["theora"] }).contentType).toBe("video/ogg");
    expect(detectContainer({ demuxer: "ogg", hasVideo: false, codecs: ["vorbis"] }).contentType).toBe("audio/ogg");
    expect(detectContainer({ demuxer: "mpegts", hasVideo: true, codecs: ["h264"] }).extension).toBe("ts");
  });
});

describe("formats", () => {
  test("the whitelist holds only real media containers", () => {
    expect(FORMAT_WHITELIST.split(",")).toEqual(["mov", "matroska", "ogg", "mp3", "flac", "wav", "aac", "avi", "mpegts"]);
    for (const dangerous of ["hls", "dash", "concat", "image2", "tty", "lavfi", "subfile", "data"]) expect(demuxerOf(dangerous)).toBeUndefined();
  });

  test("demuxerOf picks the accepted name out of ffprobe's list", () => {
    expect(demuxerOf("mov,mp4,m4a,3gp,3g2,mj2")).toBe("mov");
    expect(demuxerOf("matroska,webm")).toBe("matroska");
  });

  test("every stored container maps back to its demuxer", () => {
    for (const c of ["mp4", "mov", "m4a", "3gp", "webm", "mkv", "ogg", "ogv", "mp3", "flac", "wav", "aac", "avi", "ts"]) expect(demuxerForContainer(c)).toBeDefined();
    expect(demuxerForContainer(null)).toBeUndefined();
  });

  test("EBML DocType", () => {
    // The head of a real WebM file written by ffmpeg.
    const webm = Buffer.from("1a45dfa39f4286810142f7810142f2810442f381084282847765626d4287810442858102", "hex");
    expect(ebmlDocType(webm)).toBe("webm");
    // EBML header id, its size, then DocType (0x4282) of size 8 (vint 0x88): "matroska".
    const mkv = Buffer.from(`1a45dfa3938286810142f78101428288${Buffer.from("matroska").toString("hex")}`, "hex");
    expect(ebmlDocType(mkv)).toBe("matroska");
    expect(ebmlDocType(Buffer.from("000000206674797069736f6d", "hex"))).toBeUndefined();
    expect(ebmlDocType(new Uint8Array(0))).toBeUndefined();
  });
});

describe("describeProbeFailure", () => {
  test.each([
    ["[hls @ 0x55ee2ffb6280] Format not on whitelist 'mov,matroska'\nfile:/data/tmp/x.part: Invalid argument", "The file is an HLS playlist (m3u8), not a video or audio file"],
    ["[concat @ 0x5644c97da280] Format not on whitelist 'mov'\nfile:/x: Invalid argument", "The file is an ffmpeg concat script, not a video or audio file"],
    ["[png_pipe @ 0x1] Format not on whitelist 'mov'", "The file is a PNG image, not a video or audio file"],
    ["[weird @ 0xab] Format not on whitelist 'mov'", 'The file\'s format ("weird") is not an accepted video or audio container'],
    ["[mov,mp4,m4a,3gp,3g2,mj2 @ 0x1] moov atom not found\nfile:/x: Invalid data found when processing input", "The file looks like MP4 or QuickTime but has no movie index (moov): it is incomplete or not a video"],
    ["file:/data/tmp/x.part: Invalid data found when processing input", "The file is not in a recognised video or audio format"],
    ["", "The file could not be read as video or audio"],
  ])("%j", (stderr, message) => {
    expect(describeProbeFailure(stderr)).toBe(message);
    expect(describeProbeFailure(stderr)).not.toContain("/data/");
  });
});

describe("checkLimits (MAX_DURATION_S, MAX_PIXELS, MAX_FPS)", () => {
  const video = { duration: 600, width: 1920, height: 1080, frameRate: 30000 / 1001, hasVideo: true };
  const limits = { maxDurationS: 300, maxPixels: 3840 * 2160, maxFps: 60 };
  const refused: [string, Partial<typeof video>, Partial<typeof limits>, string, string][] = [
    ["too long", {}, {}, "MAX_DURATION_S", "The video is 600 s long; this server accepts at most 300 s (MAX_DURATION_S)"],
    ["too long by a fraction", { duration: 300.0234 }, {}, "MAX_DURATION_S", "The video is 300.023 s long; this server accepts at most 300 s (MAX_DURATION_S)"],
    ["audio too long", { duration: 301, width: null as unknown as number, height: null as unknown as number, frameRate: null as unknown as number, hasVideo: false }, {}, "MAX_DURATION_S", "The audio file is 301 s long; this server accepts at most 300 s (MAX_DURATION_S)"],
    ["too many pixels", { duration: 10, width: 8192, height: 8192 }, {}, "MAX_PIXELS", "The video is 8192x8192 (67108864 pixels a frame); this server accepts at most 8294400 pixels a frame (MAX_PIXELS)"],
    ["too fast", { duration: 10, frameRate: 1000 }, {}, "MAX_FPS", "The video runs at 1000 frames per second; this server accepts at most 60 (MAX_FPS)"],
    ["too fast, fractional", { duration: 10, frameRate: 120000 / 1001 }, {}, "MAX_FPS", "The video runs at 119.88 frames per second; this server accepts at most 60 (MAX_FPS)"],
  ];
  test.each(refused)("refuses %s", (_name, media, over, limit, message) => {
    const run = () => checkLimits({ ...video, ...media }, { ...limits, ...over });
    expect(run).toThrow(MediaLimitError);
    expect(run).toThrow(message);
    try {
      run();
    } catch (error) {
      expect((error as MediaLimitError).limit).toBe(limit as MediaLimitError["limit"]);
    }
  });

  const accepted: [string, Partial<typeof video>, Partial<typeof limits>][] = [
    ["exactly at every limit", { duration: 300, width: 3840, height: 2160, frameRate: 60 }, {}],
    ["0 means no limit", { duration: 1e6, width: 100_000, height: 100_000, frameRate: 10_000 }, { maxDurationS: 0, maxPixels: 0, maxFps: 0 }],
    ["what ffprobe could not tell is not judged", { duration: null as unknown as number, width: null as unknown as number, height: null as unknown as number, frameRate: null as unknown as number }, {}],
    ["rotated: the same pixels", { duration: 10, width: 2160, height: 3840 }, {}],
  ];
  test.each(accepted)("accepts %s", (_name, media, over) => {
    expect(() => checkLimits({ ...video, ...media }, { ...limits, ...over })).not.toThrow();
  });

  test("the defaults take 6 h, every 8K camera and 240 fps slow motion", () => {
    expect(DEFAULT_INGEST_LIMITS).toEqual({ maxDurationS: 21600, maxPixels: 8192 * 4320, maxFps: 240 });
    // The environment's defaults are the same numbers.
    const env = readEnv({});
    expect([env.MAX_DURATION_S, env.MAX_PIXELS, env.MAX_FPS]).toEqual([21600, 8192 * 4320, 240]);
    for (const [width, height] of [[7680, 4320], [8192, 4320], [4320, 7680]] as const) {
      expect(() => checkLimits({ duration: 21600, width, height, frameRate: 240, hasVideo: true }, DEFAULT_INGEST_LIMITS)).not.toThrow();
    }
    expect(() => checkLimits({ duration: 10, width: 8192, height: 8192, frameRate: 30, hasVideo: true }, DEFAULT_INGEST_LIMITS)).toThrow(MediaLimitError);
    expect(() => checkLimits({ duration: 21601, width: 640, height: 360, frameRate: 30, hasVideo: true }, DEFAULT_INGEST_LIMITS)).toThrow(MediaLimitError);
  });
});

describe("lastErrorLine: the line of ffmpeg's stderr that names the cause", () => {
  const cases: [string, string, string][] = [
    ["the last line, its [muxer @ 0x…] prefix dropped", "frame= 10\n[mp4 @ 0x55d1c0] Invalid data found\n", "Invalid data found"],
    ["not a repeat count (a full disk)", "[hls @ 0x1a2b] Failed to open file '360p/seg_004.m4s'\n[out#0/hls @ 0x1f] Error muxing a packet: No space left on device\n    Last message repeated 1 times\n", "Error muxing a packet: No space left on device"],
    ["not the summary after it", "Error writing trailer of out.mp4: No space left on device\nConversion failed!\n", "Error writing trailer of out.mp4: No space left on device"],
    ["nothing at all", "\n\n", ""],
  ];
  for (const [name, stderr, expected] of cases) test(name, () => expect(lastErrorLine(stderr)).toBe(expected));
});
