/** The thumbnail grid: `t` to the nearest step of the video's time grid, `width` up the ladder. */
import { describe, expect, test } from "bun:test";
import { MAX_TIME_STEPS, WIDTH_LADDER, snapTimeMs, snapWidth, timeStepMs } from "../../src/modules/thumbnails/grid.ts";
import { Thumbnails, thumbnailName } from "../../src/modules/thumbnails/service.ts";

describe("timeStepMs", () => {
  test.each([
    ["unknown duration", null, 500],
    ["zero duration", 0, 500],
    ["2 s clip", 2, 500],
    ["exactly 500 s: 1000 steps of 0.5 s", 500, 500],
    ["just over 500 s", 500.1, 1000],
    ["10 min", 600, 1000],
    ["1 h", 3600, 4000],
    ["2 h film", 7200, 7500],
    ["24 h stream recording", 86_400, 86_500],
  ])("%s (%p s): %p ms", (_name, duration, step) => {
    expect(timeStepMs(duration)).toBe(step);
  });

  test("a multiple of 0.5 s that never leaves more than MAX_TIME_STEPS steps", () => {
    for (const duration of [0.04, 1, 59.9, 499.9, 500, 501, 999, 1234.5, 5400, 36_000]) {
      const step = timeStepMs(duration);
      expect(step % 500).toBe(0);
      expect((duration * 1000) / step).toBeLessThanOrEqual(MAX_TIME_STEPS);
    }
  });
});

describe("snapTimeMs", () => {
  test.each([
    // [t, duration, snapped ms]
    [0, 2, 0],
    [0.1, 2, 0],
    [0.24, 2, 0],
    [0.25, 2, 500], // halfway rounds up
    [0.5, 2, 500],
    [0.500, 2, 500],
    [0.74, 2, 500],
    [1.25, 2, 1500],
    [1.9, 2, 2000],
    [2, 2, 2000],
    [2.3, 2.3, 2000], // the nearest point (2.5) lies past the end: one step back
    [2.2, 2.3, 2000],
    [0.2, 0.3, 0], // shorter than a step: only 0
    [7.3, null, 7500], // unknown duration: the finest step, no clamp
    [3.7, 7200, 0],
    [3.8, 7200, 7500],
    [3600, 7200, 3600_000],
    [7199, 7200, 7200_000],
    [345.567, 600, 346_000],
    [599.6, 600, 600_000],
  ])("t=%p in a %p s video: %p ms", (t, duration, snapped) => {
    expect(snapTimeMs(t, duration)).toBe(snapped);
  });

  test("every snapped time is on the grid and within the video", () => {
    for (const duration of [1, 2.3, 61.04, 700, 7200]) {
      const step = timeStepMs(duration);
      for (let i = 0; i <= 200; i++) {
        const t = (duration * i) / 200;
        const ms = snapTimeMs(t, duration);
        expect(ms % step).toBe(0);
        expect(ms).toBeGreaterThanOrEqual(0);
        expect(ms).toBeLessThanOrEqual(duration * 1000);
        expect(Math.abs(ms - t * 1000)).toBeLessThanOrEqual(step);
      }
    }
  });
});

describe("snapWidth", () => {
  test.each([
    // [width, video width, snapped (null: the video's own width)]
    [16, 1920, 80],
    [80, 1920, 80],
    [81, 1920, 160],
    [120, 1920, 160],
    [200, 1920, 240],
    [320, 1920, 320],
    [321, 1920, 480],
    [1000, 1920, 1280],
    [1280, 1920, 1280],
    [1281, 1920, null], // 1920 is the video itself
    [3840, 1920, null], // never upscaled
    [3840, 7680, 3840],
    [2000, 7680, 2560],
    [64, 320, 80],
    [160, 320, 160],
    [300, 320, null],
    [320, 320, null],
    [100, 120, null], // a tiny video: its own width
    [500, null, 640], // width unknown: the ladder alone
  ])("width=%p of a %p px video: %p", (width, videoWidth, snapped) => {
    expect(snapWidth(width, videoWidth)).toBe(snapped);
  });

  test("the ladder is increasing and spans what the route accepts", () => {
    for (let i = 1; i < WIDTH_LADDER.length; i++) expect(WIDTH_LADDER[i]!).toBeGreaterThan(WIDTH_LADDER[i - 1]!);
    expect(snapWidth(16, null)).toBe(WIDTH_LADDER[0]);
    expect(snapWidth(3840, null)).toBe(3840);
  });
});

describe("Thumbnails.frame", () => {
  const video = { duration: 12, width: 1920 };
  test.each([
    ["no parameters: the poster (1.2 s in, at most 1280 wide)", {}, "t1200-w1280.jpg", true],
    ["only width: the poster's time at that rung", { width: 300 }, "t1200-w320.jpg", false],
    ["only t: the video's own width", { t: 3.3 }, "t3500-w0.jpg", false],
    ["both", { t: 11.9, width: 150 }, "t12000-w160.jpg", false],
    ["a rung at least as wide as the video: its own width", { t: 6, width: 1500 }, "t6000-w0.jpg", false],
  ])("%s", (_name, request, name, poster) => {
    const frame = Thumbnails.frame(video, request);
    expect(thumbnailName(frame.seconds, frame.width)).toBe(name);
    expect(frame.poster).toBe(poster);
  });

  test("requests that snap to the same frame name the same file", () => {
    const name = (request: { t?: number; width?: number }) => {
      const frame = Thumbnails.frame(video, request);
      return thumbnailName(frame.seconds, frame.width);
    };
    expect(name({ t: 4.9, width: 300 })).toBe(name({ t: 5.2, width: 241 }));
    expect(name({ t: 4.9, width: 300 })).not.toBe(name({ t: 5.3, width: 300 }));
  });
});
