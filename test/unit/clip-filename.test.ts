/** Download names of clips (`?download=1`): the title, then the interval as asked. */
import { describe, expect, test } from "bun:test";
import { clipContentType, clipFilename } from "../../src/files/clip.ts";

describe("clipFilename", () => {
  const cases: [string, { start: number; end?: number }, string][] = [
    ["bframes.mp4", { start: 3.3, end: 6.1 }, "bframes 3.3-6.1s.mp4"],
    // Without an end the unit goes with the start: "3.3s-end", not "3.3-ends".
    ["bframes.mp4", { start: 3.3 }, "bframes 3.3s-end.mp4"],
    ["bframes", { start: 0, end: 6 }, "bframes 0-6s.mp4"],
    // A MOV's clip is QuickTime (its ftyp is the source's); a name of another kind gets .mp4.
    ["Gop clip.mov", { start: 12.5 }, "Gop clip 12.5s-end.mov"],
    ["sound.m4a", { start: 1, end: 2 }, "sound 1-2s.m4a"],
    ["odd.webm", { start: 1 }, "odd 1s-end.mp4"],
    ["a.b.mp4", { start: 0.000001, end: 0.000002 }, "a.b 0.000001-0.000002s.mp4"],
    [".hidden", { start: 1 }, ".hidden 1s-end.mp4"],
  ];
  for (const [name, interval, expected] of cases) test(`${name} ${JSON.stringify(interval)}`, () => expect(clipFilename(name, interval)).toBe(expected));
});

describe("clipContentType", () => {
  const cases: [string, string][] = [
    ["video/mp4", "video/mp4"],
    ["video/quicktime", "video/quicktime"],
    ["audio/mp4", "audio/mp4"],
    ["video/3gpp", "video/3gpp"],
    ["application/octet-stream", "video/mp4"],
  ];
  for (const [source, expected] of cases) test(source, () => expect(clipContentType(source)).toBe(expected));
});
