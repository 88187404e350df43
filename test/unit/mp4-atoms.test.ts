/** The top-level ISO BMFF box scanner: reads headers only, and knows a faststart file. */
import { describe, expect, test } from "bun:test";
import { BoxError, MAX_TRAILING_PADDING, isFaststart, scanTopLevelBoxes, type Box, type ByteReader } from "../../src/media/mp4-atoms.ts";

/** A box: 32-bit size (or 1 + 64-bit largesize, or 0), type, payload of `payload` bytes. */
function box(type: string, payload: number, form: "normal" | "large" | "to-end" = "normal"): Uint8Array {
  const header = form === "large" ? 16 : 8;
  const bytes = new Uint8Array(header + payload);
  const view = new DataView(bytes.buffer);
  if (form === "large") {
    view.setUint32(0, 1);
    view.setBigUint64(8, BigInt(header + payload));
  } else {
    view.setUint32(0, form === "to-end" ? 0 : header + payload);
  }
  bytes.set(new TextEncoder().encode(type), 4);
  return bytes;
}

function file(...boxes: Uint8Array[]): { read: ByteReader; size: number; reads: [number, number][] } {
  const bytes = Buffer.concat(boxes);
  const reads: [number, number][] = [];
  return {
    size: bytes.length,
    reads,
    read: async (offset, length) => {
      reads.push([offset, length]);
      return bytes.subarray(offset, offset + length);
    },
  };
}

const types = (boxes: Box[]) => boxes.map((b) => b.type);

describe("scanTopLevelBoxes", () => {
  test("lists boxes with offsets and sizes, reading only their headers", async () => {
    const f = file(box("ftyp", 24), box("moov", 5000), box("free", 0), box("mdat", 100_000));
    const boxes = await scanTopLevelBoxes(f.read, f.size);
    expect(boxes).toEqual([
      { type: "ftyp", offset: 0, size: 32 },
      { type: "moov", offset: 32, size: 5008 },
      { type: "free", offset: 5040, size: 8 },
      { type: "mdat", offset: 5048, size: 100_008 },
    ]);
    // Four reads of at most 16 bytes each: never the payloads.
    expect(f.reads).toEqual([
      [0, 16],
      [32, 16],
      [5040, 16],
      [5048, 16],
    ]);
  });

  test("64-bit largesize boxes", async () => {
    const f = file(box("ftyp", 8), box("mdat", 300, "large"), box("moov", 40));
    const boxes = await scanTopLevelBoxes(f.read, f.size);
    expect(boxes[1]).toEqual({ type: "mdat", offset: 16, size: 316 });
    expect(types(boxes)).toEqual(["ftyp", "mdat", "moov"]);
  });

  test("size 0 extends to the end of the file", async () => {
    const f = file(box("ftyp", 8), box("moov", 40), box("mdat", 1000, "to-end"));
    const boxes = await scanTopLevelBoxes(f.read, f.size);
    expect(boxes[2]).toEqual({ type: "mdat", offset: 64, size: 1008 });
  });

  test.each([1, 4, 7, 8, 1024, 3 * 1024 * 1024 + 5])("%i zero bytes after the last box are padding: not a box, and all of them are read", async (n) => {
    const f = file(box("ftyp", 8), box("moov", 40), box("mdat", 1000), new Uint8Array(n));
    const boxes = await scanTopLevelBoxes(f.read, f.size);
    expect(types(boxes)).toEqual(["ftyp", "moov", "mdat"]);
    // Checked to the last byte: zeros with anything after them would be damage.
    expect(Math.max(...f.reads.map(([offset, length]) => offset + length))).toBeGreaterThanOrEqual(f.size);
  });

  test("padding past MAX_TRAILING_PADDING is refused as damage", async () => {
    const size = 16 + MAX_TRAILING_PADDING + 1;
    const read: ByteReader = async (offset, length) => (offset === 0 ? box("ftyp", 8) : new Uint8Array(Math.max(0, Math.min(length, size - offset))));
    await expect(scanTopLevelBoxes(read, size)).rejects.toThrow(/not a box type at 16/);
  });

  test("an empty file has no boxes", async () => {
    expect(await scanTopLevelBoxes(file().read, 0)).toEqual([]);
  });

  test.each([
    ["a box that overruns the file", () => file(box("ftyp", 8), box("mdat", 100)).read, 16 + 50, /overruns/],
    ["a truncated header", () => file(box("ftyp", 8), new Uint8Array([0, 0, 1])).read, 19, /truncated box header/],
    ["zeros followed by other bytes (damage, not padding)", () => file(box("ftyp", 8), box("moov", 40), new Uint8Array(100), new Uint8Array([1])).read, 16 + 48 + 101, /not a box type at 64/],
    ["a file of zeros", () => file(new Uint8Array(64)).read, 64, /not a box type at 0/],
    ["an impossible size", () => file(new Uint8Array([0, 0, 0, 4, 0x66, 0x74, 0x79, 0x70])).read, 8, /impossible size/],
    ["a non-printable type", () => file(new Uint8Array([0, 0, 0, 8, 0, 1, 2, 3])).read, 8, /not a box type/],
    ["text", () => file(new TextEncoder().encode("hello, this is not a video at all")).read, 33, /not a box type|overruns|impossible/],
  ])("refuses %s", async (_name, reader, size, message) => {
    await expect(scanTopLevelBoxes(reader(), size)).rejects.toThrow(BoxError);
    await expect(scanTopLevelBoxes(reader(), size)).rejects.toThrow(message);
  });
});

describe("isFaststart", () => {
  const b = (...names: string[]) => names.map((type, i) => ({ type, offset: i, size: 1 }));
  test.each([
    [["ftyp", "moov", "mdat"], true],
    [["ftyp", "moov", "free", "mdat"], true],
    [["ftyp", "free", "mdat", "moov"], false],
    [["ftyp", "mdat", "moov", "mdat"], false],
    [["ftyp", "moov", "moof", "mdat", "moof", "mdat"], true],
    [["ftyp", "moov"], true],
    [["ftyp", "mdat"], false],
    [[], false],
  ])("%j → %p", (names, expected) => {
    expect(isFaststart(b(...names))).toBe(expected);
  });
});
