/** The ffmpeg command line for an HLS build: hardening, aligned keyframes, fMP4 ladder, storyboard. */
import { describe, expect, test } from "bun:test";
import { buildSpriteArgs, buildTranscodeArgs, fpsExpression, type TranscodePlan } from "../../src/modules/hls/args.ts";
import { selectLadder } from "../../src/modules/hls/ladder.ts";
import { planStoryboard } from "../../src/modules/hls/storyboard.ts";

const source = { width: 640, height: 360, fps: 30, bitrate: null };
const plan = (over: Partial<TranscodePlan> = {}): TranscodePlan => ({
  input: "/data/videos/abcd/source.mp4",
  demuxer: "mov",
  renditions: selectLadder(source),
  hasAudio: true,
  duration: 6.5,
  segmentSeconds: 4,
  preset: "veryfast",
  storyboard: planStoryboard(6, source),
  ...over,
});

/** The value following `flag` (the first occurrence). */
const after = (args: string[], flag: string) => args[args.indexOf(flag) + 1];

describe("buildTranscodeArgs", () => {
  const args = buildTranscodeArgs(plan());

  test("the input is a local file, pinned to its demuxer, before -i", () => {
    const input = args.indexOf("-i");
    expect(after(args, "-protocol_whitelist")).toBe("file");
    expect(after(args, "-format_whitelist")).toBe("mov");
    expect(after(args, "-f")).toBe("mov");
    expect(args.indexOf("-protocol_whitelist")).toBeLessThan(input);
    expect(args[input + 1]).toBe("file:/data/videos/abcd/source.mp4");
    expect(args).toContain("-nostdin");
  });

  test("one decode, split into every rendition and the storyboard", () => {
    expect(after(args, "-filter_complex")).toBe(
      "[0:v:0]fps=30,tpad=stop_mode=clone:stop_duration=6.5,split=3[s0][s1][sb];" +
        "[s0]scale=640:360:flags=bicubic,setsar=1,format=yuv420p[v0];" +
        "[s1]scale=426:240:flags=bicubic,setsar=1,format=yuv420p[v1];" +
        "[0:a:0]aresample=async=1:first_pts=0,apad,asplit=2[a0][a1];" +
        "[sb]fps=1/1:round=up,settb=AVTB,scale=160:90:flags=bicubic,setsar=1[sbo]",
    );
  });

  test("fixed GOP with keyframes forced on segment boundaries, no scene cuts", () => {
    expect(after(args, "-g")).toBe("120");
    expect(after(args, "-keyint_min")).toBe("120");
    expect(after(args, "-sc_threshold")).toBe("0");
    expect(after(args, "-force_key_frames")).toBe("expr:gte(t,n_forced*4)");
    expect(after(args, "-hls_time")).toBe("4");
  });

  test("H.264 + AAC per rendition with capped VBR", () => {
    expect(after(args, "-c:v")).toBe("libx264");
    expect(after(args, "-preset")).toBe("veryfast");
    expect(after(args, "-b:v:0")).toBe("800000");
    expect(after(args, "-maxrate:v:0")).toBe("856000");
    expect(after(args, "-bufsize:v:0")).toBe("1200000");
    expect(after(args, "-b:v:1")).toBe("400000");
    expect(after(args, "-c:a")).toBe("aac");
    expect(after(args, "-b:a:0")).toBe("96000");
    expect(after(args, "-b:a:1")).toBe("64000");
    // Each rendition's sound, with silence where it has none (before, in holes, after; cut by -t).
    expect(args.filter((a, i) => args[i - 1] === "-map" && /^\[a\d\]$/.test(a))).toEqual(["[a0]", "[a1]"]);
  });

  test("fMP4 HLS, VOD, relative outputs, one variant per rendition", () => {
    expect(after(args, "-hls_segment_type")).toBe("fmp4");
    expect(after(args, "-hls_playlist_type")).toBe("vod");
    expect(after(args, "-hls_flags")).toBe("independent_segments");
    expect(after(args, "-var_stream_map")).toBe("v:0,a:0,name:360p v:1,a:1,name:240p");
    expect(after(args, "-hls_segment_filename")).toBe("%v/seg_%05d.m4s");
    expect(args).toContain("%v/index.m3u8");
    expect(args.slice(-2)).toEqual(["-progress", "pipe:1"]);
  });

  test("the storyboard's frames are a second output of the same run (tiled afterwards)", () => {
    const i = args.indexOf("[sbo]");
    expect(args.slice(i - 1, i + 11)).toEqual(["-map", "[sbo]", "-t", "6.5", "-c:v", "mjpeg", "-q:v", "2", "-f", "image2", "thumb_%05d.jpg", "-progress"]);
  });

  test("every output ends at the source's duration; with audio the last frame is held until the audio ends", () => {
    const hls = args.indexOf("hls");
    const t = args.indexOf("-t");
    expect(args[t + 1]).toBe("6.5");
    expect(t).toBeLessThan(hls);
    expect(t).toBeGreaterThan(args.indexOf("-b:a:1"));
    expect(after(buildTranscodeArgs(plan({ duration: 1 / 3 })), "-t")).toBe("0.333");
  });

  test("the sprite pass reads only its own frames and tiles them into sheets", () => {
    const sprite = buildSpriteArgs(planStoryboard(250, source)!);
    expect(after(sprite, "-protocol_whitelist")).toBe("file");
    expect(after(sprite, "-format_whitelist")).toBe("image2");
    expect(after(sprite, "-i")).toBe("thumb_%05d.jpg");
    expect(after(sprite, "-vf")).toBe("tile=10x10");
    expect(sprite.at(-1)).toBe("storyboard_%d.jpg");
  });

  test("a silent source maps no audio", () => {
    const silent = buildTranscodeArgs(plan({ hasAudio: false }));
    expect(after(silent, "-filter_complex")).not.toContain("[0:a:0]");
    expect(silent).not.toContain("[a0]");
    expect(silent).not.toContain("-c:a");
    expect(after(silent, "-var_stream_map")).toBe("v:0,name:360p v:1,name:240p");
    // Nothing outlasts the picture: no padding.
    expect(after(silent, "-filter_complex")).toStartWith("[0:v:0]fps=30,split=3[s0][s1][sb];");
  });

  test("no storyboard: no extra branch", () => {
    const bare = buildTranscodeArgs(plan({ storyboard: null }));
    expect(after(bare, "-filter_complex")).toStartWith("[0:v:0]fps=30,tpad=stop_mode=clone:stop_duration=6.5,split=2[s0][s1];");
    expect(bare).not.toContain("[sbo]");
  });

  test("NTSC rates stay exact and the GOP follows the segment length", () => {
    const ntsc = buildTranscodeArgs(plan({ renditions: selectLadder({ ...source, fps: 29.97 }), segmentSeconds: 6 }));
    expect(after(ntsc, "-filter_complex")).toStartWith("[0:v:0]fps=30000/1001,");
    expect(after(ntsc, "-g")).toBe("180");
    expect(after(ntsc, "-force_key_frames")).toBe("expr:gte(t,n_forced*6)");
  });

  test("an empty ladder is refused", () => {
    expect(() => buildTranscodeArgs(plan({ renditions: [] }))).toThrow(/empty/);
  });
});

describe("fpsExpression", () => {
  test.each([
    [30, "30"],
    [25, "25"],
    [29.97, "30000/1001"],
    [30000 / 1001, "30000/1001"],
    [23.976, "24000/1001"],
    [59.94, "60000/1001"],
    [12.5, "12.500"],
  ])("%p → %p", (fps, expected) => expect(fpsExpression(fps)).toBe(expected));
});
