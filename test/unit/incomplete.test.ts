/** The message for a truncated MP4/MOV (pure, table-driven). */
import { describe, expect, test } from "bun:test";
import { incompleteFileMessage, incompleteFromOverrun } from "../../src/media/incomplete.ts";

const ftyp = { type: "ftyp", offset: 0, size: 32 };
const moov = (offset: number, size: number) => ({ type: "moov", offset, size });
const mdat = (offset: number, size: number) => ({ type: "mdat", offset, size });

describe("incompleteFileMessage", () => {
  const TABLE: [name: string, boxes: { type: string; offset: number; size: number }[], fileSize: number, brand: string | undefined, expected: string | null][] = [
    ["faststart, cut in mdat", [ftyp, moov(32, 33_527), mdat(33_559, 10_666_441)], 3_100_000, "isom", "incomplete file: 3.1 MB of an MP4 whose index expects 10.7 MB"],
    ["moov at end, cut before moov (mdat overruns)", [ftyp, mdat(32, 10_000_000)], 2_500_000, "mp42", "incomplete file: 2.5 MB of an MP4 whose index expects 10 MB"],
    ["a MOV", [ftyp, mdat(32, 5_000_000)], 1_000, "qt  ", "incomplete file: 1 kB of a QuickTime (MOV) file whose index expects 5 MB"],
    ["a 3GP", [ftyp, mdat(32, 5_000_000)], 999, "3gp5", "incomplete file: 999 bytes of a 3GP file whose index expects 5 MB"],
    ["an M4A", [ftyp, mdat(32, 2_000_000)], 1_500_000, "M4A ", "incomplete file: 1.5 MB of an M4A file whose index expects 2 MB"],
    ["whole", [ftyp, moov(32, 1000), mdat(1032, 5000)], 6032, "isom", null],
    ["no boxes", [], 10, undefined, null],
    ["large sizes", [ftyp, mdat(32, 8 * 1024 ** 3)], 4 * 1024 ** 3, undefined, "incomplete file: 4.3 GB of an MP4 whose index expects 8.6 GB"],
  ];
  for (const [name, boxes, size, brand, expected] of TABLE) {
    test(name, () => expect(incompleteFileMessage(boxes, size, brand)).toBe(expected));
  }
});

describe("incompleteFromOverrun", () => {
  function file(bytes: Uint8Array) {
    return async (offset: number, length: number) => bytes.subarray(offset, offset + length);
  }
  test("reads the overrunning box's declared size from its header", async () => {
    const bytes = new Uint8Array(3_100_000);
    const view = new DataView(bytes.buffer);
    view.setUint32(33_559, 10_700_000 - 33_559);
    bytes.set([0x6d, 0x64, 0x61, 0x74], 33_563);
    expect(await incompleteFromOverrun('box "mdat" at 33559 overruns the file', file(bytes), bytes.length)).toBe("incomplete file: 3.1 MB of an MP4 whose index expects 10.7 MB");
  });
  test("64-bit sizes", async () => {
    const bytes = new Uint8Array(1000);
    const view = new DataView(bytes.buffer);
    view.setUint32(100, 1);
    view.setBigUint64(108, 5_000_000_000n);
    expect(await incompleteFromOverrun('box "mdat" at 100 overruns the file', file(bytes), 1000)).toBe("incomplete file: 1 kB of an MP4 whose index expects 5 GB");
  });
  test("other refusals are not about truncation", async () => {
    expect(await incompleteFromOverrun("not a box type at 0", file(new Uint8Array(10)), 10)).toBeNull();
  });
});
