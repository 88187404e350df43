/** Storyboard planning and its WebVTT. */
import { describe, expect, test } from "bun:test";
import { planStoryboard, storyboardVtt, vttTimestamp } from "../../src/modules/hls/storyboard.ts";

describe("planStoryboard", () => {
  test.each([
    ["6 s 16:9", 6, { width: 640, height: 360 }, { interval: 1, width: 160, height: 90, count: 6, sheets: 1 }],
    ["6.5 s: a last partial thumbnail", 6.5, { width: 640, height: 360 }, { interval: 1, count: 7, sheets: 1 }],
    ["10 min", 600, { width: 1920, height: 1080 }, { interval: 2, count: 300, sheets: 3 }],
    ["2 h movie", 7200, { width: 1920, height: 800 }, { interval: 15, width: 160, height: 66, count: 480, sheets: 5 }],
    ["portrait", 30, { width: 1080, height: 1920 }, { interval: 1, width: 90, height: 160, count: 30 }],
    ["4:3", 100, { width: 640, height: 480 }, { interval: 1, width: 160, height: 120, count: 100, sheets: 1 }],
    ["101 s spills into a second sheet", 101, { width: 640, height: 360 }, { interval: 1, count: 101, sheets: 2 }],
    ["very long (30 h)", 108_000, { width: 640, height: 360 }, { interval: 300, count: 360 }],
  ])("%s", (_name, duration, source, expected) => {
    expect(planStoryboard(duration, source)).toMatchObject(expected);
  });

  test("nothing to plan without a duration or a picture", () => {
    expect(planStoryboard(0, { width: 640, height: 360 })).toBeNull();
    expect(planStoryboard(Number.NaN, { width: 640, height: 360 })).toBeNull();
    expect(planStoryboard(10, { width: 0, height: 0 })).toBeNull();
  });
});

describe("vttTimestamp", () => {
  test.each([
    [0, "00:00:00.000"],
    [1.5, "00:00:01.500"],
    [61.0004, "00:01:01.000"],
    [3723.25, "01:02:03.250"],
    [-1, "00:00:00.000"],
  ])("%p → %p", (seconds, expected) => expect(vttTimestamp(seconds)).toBe(expected));
});

describe("storyboardVtt", () => {
  test("cues tile the grid left to right, top to bottom, and the last ends at the duration", () => {
    const plan = planStoryboard(2.5, { width: 640, height: 360 }, { columns: 2, rows: 1 })!;
    expect(plan).toMatchObject({ count: 3, sheets: 2 });
    expect(storyboardVtt(plan, 2.5)).toBe(
      [
        "WEBVTT",
        "",
        "00:00:00.000 --> 00:00:01.000",
        "storyboard_1.jpg#xywh=0,0,160,90",
        "",
        "00:00:01.000 --> 00:00:02.000",
        "storyboard_1.jpg#xywh=160,0,160,90",
        "",
        "00:00:02.000 --> 00:00:02.500",
        "storyboard_2.jpg#xywh=0,0,160,90",
        "",
      ].join("\n"),
    );
  });

  // The cues cover 0 to the duration with no gap, even when fewer thumbnails than planned were
  // made (ffmpeg may not make one for a short tail): the last one then stands for the rest.
  const cues = (vtt: string) => [...vtt.matchAll(/(\S+) --> (\S+)\n\S+#xywh=(\d+),(\d+)/g)].map((m) => `${m[1]}-${m[2]} ${m[3]},${m[4]}`);
  test.each([
    ["4.4 s, every thumbnail made", 4.4, undefined, ["00:00:00.000-00:00:01.000 0,0", "00:00:01.000-00:00:02.000 160,0", "00:00:02.000-00:00:03.000 320,0", "00:00:03.000-00:00:04.000 480,0", "00:00:04.000-00:00:04.400 640,0"]],
    ["4.4 s, the tail's thumbnail missing", 4.4, 4, ["00:00:00.000-00:00:01.000 0,0", "00:00:01.000-00:00:02.000 160,0", "00:00:02.000-00:00:03.000 320,0", "00:00:03.000-00:00:04.400 480,0"]],
    ["5.5 s, two missing", 5.5, 4, ["00:00:00.000-00:00:01.000 0,0", "00:00:01.000-00:00:02.000 160,0", "00:00:02.000-00:00:03.000 320,0", "00:00:03.000-00:00:05.500 480,0"]],
    ["4 s exactly", 4, undefined, ["00:00:00.000-00:00:01.000 0,0", "00:00:01.000-00:00:02.000 160,0", "00:00:02.000-00:00:03.000 320,0", "00:00:03.000-00:00:04.000 480,0"]],
    ["shorter than an interval", 0.3, undefined, ["00:00:00.000-00:00:00.300 0,0"]],
    ["one thumbnail for a longer video", 2.5, 1, ["00:00:00.000-00:00:02.500 0,0"]],
  ])("%s", (_name, duration, made, expected) => {
    const plan = planStoryboard(duration, { width: 640, height: 360 })!;
    expect(cues(storyboardVtt({ ...plan, count: made ?? plan.count }, duration))).toEqual(expected);
  });

  test("rows advance after a full row; a URL prefix is prepended", () => {
    const plan = planStoryboard(25, { width: 640, height: 360 })!;
    const vtt = storyboardVtt(plan, 25, "/api/hls/x/");
    expect(vtt).toContain("00:00:10.000 --> 00:00:11.000\n/api/hls/x/storyboard_1.jpg#xywh=0,90,160,90\n");
    expect(vtt).toContain("00:00:24.000 --> 00:00:25.000\n/api/hls/x/storyboard_1.jpg#xywh=640,180,160,90\n");
    expect(vtt.match(/-->/g)).toHaveLength(25);
  });
});
