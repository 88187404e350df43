/** ffmpeg -progress parsing and the percentage shown to users; retry backoff. */
import { describe, expect, test } from "bun:test";
import { backoffMs } from "../../src/queue/backoff.ts";
import { ProgressParser, outTimeSeconds, progressPercent } from "../../src/modules/hls/progress.ts";

const BLOCK = `frame=90
fps=45.00
stream_0_0_q=28.0
bitrate=N/A
total_size=N/A
out_time_us=3000000
out_time_ms=3000000
out_time=00:00:03.000000
dup_frames=0
drop_frames=0
speed=1.5x
progress=continue
`;

describe("ProgressParser", () => {
  test("a whole block", () => {
    const blocks = new ProgressParser().push(BLOCK);
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toMatchObject({ frame: "90", out_time_us: "3000000", speed: "1.5x", progress: "continue" });
  });

  test("blocks split anywhere across chunks, CRLF tolerated", () => {
    const text = BLOCK + BLOCK.replace("frame=90", "frame=180").replace("continue", "end").replaceAll("\n", "\r\n");
    for (const size of [1, 3, 7, 64]) {
      const parser = new ProgressParser();
      const blocks = [];
      for (let i = 0; i < text.length; i += size) blocks.push(...parser.push(text.slice(i, i + size)));
      expect(blocks.map((b) => [b.frame, b.progress])).toEqual([
        ["90", "continue"],
        ["180", "end"],
      ]);
    }
  });

  test("junk lines are ignored; an unfinished block is not emitted", () => {
    const parser = new ProgressParser();
    expect(parser.push("garbage\n=x\nframe=1\n")).toEqual([]);
    expect(parser.push("progress=continue\n")).toEqual([{ frame: "1", progress: "continue" }]);
  });
});

describe("outTimeSeconds", () => {
  test.each([
    [{ out_time_us: "1500000" }, 1.5],
    [{ out_time_us: "N/A", out_time_ms: "2500000" }, 2.5],
    [{ out_time: "00:01:02.500000" }, 62.5],
    [{ out_time: "-577014:32:22.77" }, null],
    [{ out_time_us: "N/A" }, null],
    [{}, null],
  ])("%p → %p", (block, expected) => expect(outTimeSeconds(block)).toBe(expected));
});

describe("progressPercent", () => {
  test.each([
    ["frames are the clock when fps is known", { frame: "90", out_time_us: "99000000", progress: "continue" }, { duration: 6, fps: 30 }, 50],
    ["out_time when fps is unknown", { frame: "90", out_time_us: "3000000", progress: "continue" }, { duration: 6 }, 50],
    ["clamped to 100", { frame: "999", progress: "continue" }, { duration: 6, fps: 30 }, 100],
    ["end is 100", { progress: "end" }, { duration: 6, fps: 30 }, 100],
    ["start", { frame: "0", progress: "continue" }, { duration: 6, fps: 30 }, 0],
    ["unknown duration", { frame: "10", progress: "continue" }, { duration: 0, fps: 30 }, null],
    ["nothing usable", { speed: "1x", progress: "continue" }, { duration: 6 }, null],
  ])("%s", (_name, block, basis, expected) => {
    expect(progressPercent(block, basis)).toBe(expected);
  });
});

describe("backoffMs", () => {
  const options = { baseMs: 1000, maxMs: 60_000 };
  test.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [4, 8000],
    [7, 60_000],
    [100, 60_000],
    [0, 1000],
  ])("after %p failure(s): %p ms", (failures, expected) => expect(backoffMs(failures, options)).toBe(expected));

  test("jitter draws from [d·(1-j), d]", () => {
    expect(backoffMs(3, { ...options, jitter: 0.5 }, () => 0)).toBe(4000);
    expect(backoffMs(3, { ...options, jitter: 0.5 }, () => 1)).toBe(2000);
    expect(backoffMs(3, { ...options, jitter: 0.5 }, () => 0.5)).toBe(3000);
  });
});
