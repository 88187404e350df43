/** HLS ladder selection: never above the source's size or bitrate, real steps between rungs. */
import { describe, expect, test } from "bun:test";
import { hlsFileName } from "../../src/modules/hls/files.ts";
import { outputFps, scaledSize, selectLadder, type SourceVideo } from "../../src/modules/hls/ladder.ts";

const src = (width: number, height: number, fps: number | null = 30, bitrate: number | null = null): SourceVideo => ({ width, height, fps, bitrate });
const summary = (s: SourceVideo, maxSize?: number) => selectLadder(s, { maxSize }).map((r) => `${r.name} ${r.width}x${r.height} ${r.videoBitrate / 1000}k`);

describe("selectLadder", () => {
  test.each([
    ["1080p source, no bitrate known", src(1920, 1080), undefined, ["1080p 1920x1080 5000k", "720p 1280x720 2800k", "480p 854x480 1400k", "360p 640x360 800k", "240p 426x240 400k"]],
    ["4K source is capped at 1080p by default", src(3840, 2160), undefined, ["1080p 1920x1080 5000k", "720p 1280x720 2800k", "480p 854x480 1400k", "360p 640x360 800k", "240p 426x240 400k"]],
    ["maxSize 720", src(1920, 1080), 720, ["720p 1280x720 2800k", "480p 854x480 1400k", "360p 640x360 800k", "240p 426x240 400k"]],
    ["720p source", src(1280, 720), undefined, ["720p 1280x720 2800k", "480p 854x480 1400k", "360p 640x360 800k", "240p 426x240 400k"]],
    ["640x360 test clip", src(640, 360), undefined, ["360p 640x360 800k", "240p 426x240 400k"]],
    ["400-line source gets the rungs below it", src(711, 400), undefined, ["360p 640x360 800k", "240p 426x240 400k"]],
    ["1080p at 3 Mb/s: top rung capped, 720p dropped as no real step", src(1920, 1080, 30, 3_000_000), undefined, ["1080p 1920x1080 3000k", "480p 854x480 1400k", "360p 640x360 800k", "240p 426x240 400k"]],
    ["360p at 500 kb/s", src(640, 360, 30, 500_000), undefined, ["360p 640x360 500k", "240p 426x240 400k"]],
    ["360p at 300 kb/s: one rung at the source bitrate", src(640, 360, 30, 300_000), undefined, ["360p 640x360 300k"]],
    ["tiny source: one rung at its own size", src(160, 120), undefined, ["120p 160x120 400k"]],
    ["tiny source at low bitrate", src(176, 144, 15, 100_000), undefined, ["144p 176x144 100k"]],
    ["portrait 1080x1920: sizes apply to the short side", src(1080, 1920), 720, ["720p 720x1280 2800k", "480p 480x854 1400k", "360p 360x640 800k", "240p 240x426 400k"]],
    ["4:3 source", src(640, 480), undefined, ["480p 640x480 1400k", "360p 480x360 800k", "240p 320x240 400k"]],
    ["odd sizes round to even", src(1001, 563), undefined, ["480p 854x480 1400k", "360p 640x360 800k", "240p 426x240 400k"]],
    ["a few pixels high: its own size (x264 wants even sizes, 2 at least)", src(14, 8), undefined, ["8p 14x8 400k"]],
    ["one pixel high", src(9, 1), undefined, ["2p 18x2 400k"]],
    ["an odd size rounds down", src(15, 9), undefined, ["8p 14x8 400k"]],
    ["a limit below the smallest rung scales down to it", src(640, 360), 200, ["200p 356x200 400k"]],
    ["the lowest HLS_MAX_HEIGHT", src(1920, 1080), 144, ["144p 256x144 400k"]],
    ["an odd limit rounds down, never above it", src(640, 360), 145, ["144p 256x144 400k"]],
    ["portrait under a low limit", src(360, 640), 200, ["200p 200x356 400k"]],
    ["a limit above a tiny source keeps the source's size", src(160, 120), 200, ["120p 160x120 400k"]],
  ])("%s", (_name, source, maxSize, expected) => {
    expect(summary(source, maxSize)).toEqual(expected);
  });

  test("never above the source's height or bitrate, and strictly decreasing", () => {
    for (const [w, h] of [[3840, 2160], [1920, 1080], [1280, 720], [854, 480], [640, 360], [320, 240], [1080, 1920]] as const) {
      for (const bitrate of [null, 200_000, 900_000, 2_000_000, 8_000_000]) {
        const ladder = selectLadder(src(w, h, 30, bitrate));
        expect(ladder.length).toBeGreaterThan(0);
        for (const r of ladder) {
          expect(Math.min(r.width, r.height)).toBeLessThanOrEqual(Math.min(w, h));
          if (bitrate) expect(r.videoBitrate).toBeLessThanOrEqual(bitrate);
          expect(r.width % 2 + r.height % 2).toBe(0);
        }
        for (let i = 1; i < ladder.length; i++) expect(ladder[i]!.videoBitrate).toBeLessThan(ladder[i - 1]!.videoBitrate);
      }
    }
  });

  test("high frame rate gets 1.5x bitrate, frame rate kept", () => {
    const ladder = selectLadder(src(1280, 720, 60));
    expect(ladder[0]).toMatchObject({ name: "720p", fps: 60, videoBitrate: 4_200_000 });
    expect(ladder.every((r) => r.fps === 60)).toBe(true);
  });

  test("every rendition name is one the ladder routes serve", () => {
    for (let side = 1; side <= 1200; side++) {
      for (const maxSize of [144, 145, 200, 239, 240, 1080, 4320]) {
        for (const ladder of [selectLadder(src(side, side), { maxSize }), selectLadder(src(side * 3, side), { maxSize }), selectLadder(src(side, side * 2), { maxSize })]) {
          for (const r of ladder) {
            expect([r.name, hlsFileName(`${r.name}/index.m3u8`), hlsFileName(`${r.name}/seg_00000.m4s`)]).toEqual([r.name, `${r.name}/index.m3u8`, `${r.name}/seg_00000.m4s`]);
            expect(Math.min(r.width, r.height)).toBeLessThanOrEqual(Math.max(2, Math.min(side, maxSize)));
          }
        }
      }
    }
  });

  test("a source without a frame size is refused", () => {
    expect(() => selectLadder(src(0, 0))).toThrow(/frame size/);
  });
});

describe("outputFps", () => {
  test.each([
    [30, 30],
    [29.97, 29.97],
    [25, 25],
    [60, 60],
    [120, 60],
    [240, 60],
    [null, 30],
    [0, 30],
    [Number.NaN, 30],
    [90000, 30],
  ] as const)("%p → %p", (input, expected) => {
    expect(outputFps(input)).toBe(expected);
  });

  test("a lower cap halves evenly", () => {
    expect(outputFps(50, 30)).toBe(25);
    expect(outputFps(60, 30)).toBe(30);
  });
});

describe("scaledSize", () => {
  test.each([
    [{ width: 1920, height: 1080 }, 720, { width: 1280, height: 720 }],
    [{ width: 1920, height: 800 }, 480, { width: 1152, height: 480 }],
    [{ width: 720, height: 1280 }, 360, { width: 360, height: 640 }],
    [{ width: 640, height: 360 }, 240, { width: 426, height: 240 }],
  ])("%p at %p", (source, size, expected) => {
    expect(scaledSize(source, size)).toEqual(expected);
  });
});
