import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { blockCount, blockLength, blockOf, blocksOf, blockSpan, checkBlockSize, sliceRange } from "../../src/storage/blocks.ts";
import { absoluteRange } from "../../src/storage/object-store.ts";
import { holds } from "../helpers/property.ts";

const K = 4096;

describe("block arithmetic", () => {
  test.each([
    [0, 0],
    [1, 1],
    [K - 1, 1],
    [K, 1],
    [K + 1, 2],
    [3 * K, 3],
    [2 ** 40 + 1, 2 ** 28 + 1],
  ])("an object of %p bytes has %p blocks of 4 KiB", (size, count) => expect(blockCount(size, K)).toBe(count));

  test.each([
    [0, 0],
    [K - 1, 0],
    [K, 1],
    [2 ** 33 + 5, 2 ** 21], // past 2^32: no 32-bit arithmetic
  ])("byte %p is in block %p", (offset, index) => expect(blockOf(offset, K)).toBe(index));

  test.each([
    [0, 10 * K, { start: 0, end: K - 1 }],
    [9, 10 * K, { start: 9 * K, end: 10 * K - 1 }],
    [2, 2 * K + 1, { start: 2 * K, end: 2 * K }], // the last block is short
    [2, 3 * K - 1, { start: 2 * K, end: 3 * K - 2 }],
  ])("block %p of %p bytes is %p", (index, size, span) => {
    expect(blockSpan(index, K, size)).toEqual(span);
    expect(blockLength(index, K, size)).toBe(span.end - span.start + 1);
  });

  test("blocks outside the object, bad ranges and block sizes are refused", () => {
    expect(() => blockSpan(3, K, 3 * K)).toThrow(RangeError);
    expect(() => blockSpan(-1, K, 3 * K)).toThrow(RangeError);
    expect(() => sliceRange({ start: 0, end: 3 * K }, K, 3 * K)).toThrow(RangeError);
    expect(() => sliceRange({ start: 5, end: 4 }, K, 3 * K)).toThrow(RangeError);
    expect(() => sliceRange({ start: 0, end: 0 }, K, 0)).toThrow(RangeError);
    for (const bad of [0, 1000, 4095, 6000, 1.5 * K]) expect(() => checkBlockSize(bad)).toThrow(RangeError);
    for (const good of [K, 2 ** 20, 2 ** 21, 2 ** 22]) expect(() => checkBlockSize(good)).not.toThrow();
  });

  test.each([
    ["the first byte", { start: 0, end: 0 }, 10 * K, [{ index: 0, offset: 0, length: 1 }]],
    ["a probe (bytes=0-1)", { start: 0, end: 1 }, 10 * K, [{ index: 0, offset: 0, length: 2 }]],
    ["one whole block", { start: K, end: 2 * K - 1 }, 10 * K, [{ index: 1, offset: 0, length: K }]],
    ["inside one block", { start: K + 10, end: K + 19 }, 10 * K, [{ index: 1, offset: 10, length: 10 }]],
    [
      "across a boundary",
      { start: K - 2, end: K + 1 },
      10 * K,
      [
        { index: 0, offset: K - 2, length: 2 },
        { index: 1, offset: 0, length: 2 },
      ],
    ],
    [
      "three blocks, the last one short",
      { start: 100, end: 2 * K + 9 },
      2 * K + 10,
      [
        { index: 0, offset: 100, length: K - 100 },
        { index: 1, offset: 0, length: K },
        { index: 2, offset: 0, length: 10 },
      ],
    ],
  ])("%s", (_name, range, size, slices) => expect(sliceRange(range, K, size)).toEqual(slices));

  test.each([
    [{ suffix: 500 }, 100_000, { start: 99_500, end: 99_999 }],
    [{ suffix: 1 }, 1, { start: 0, end: 0 }],
    [{ suffix: 10 }, 5, { start: 0, end: 4 }], // longer than the object: all of it
    [{ start: 10, end: 10 ** 12 }, 100, { start: 10, end: 99 }], // the end clamped
  ])("%p of %p bytes is absolute %p", (range, size, span) => expect(absoluteRange(range, size)).toEqual(span));

  test("unsatisfiable reads are RangeErrors", () => {
    expect(() => absoluteRange({ suffix: 0 }, 100)).toThrow(RangeError);
    expect(() => absoluteRange({ suffix: 5 }, 0)).toThrow(RangeError);
    expect(() => absoluteRange({ start: 100, end: 200 }, 100)).toThrow(RangeError);
  });
});

describe("sliceRange, for any object, block size and range", () => {
  const cases = fc
    .tuple(
      fc.integer({ min: 12, max: 22 }).map((bits) => 2 ** bits),
      fc.oneof(fc.integer({ min: 1, max: 10 * 2 ** 22 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
    )
    .chain(([blockSize, size]) =>
      fc.tuple(fc.constant(blockSize), fc.constant(size), fc.integer({ min: 0, max: size - 1 })).chain(([b, s, start]) =>
        fc.tuple(
          fc.constant(b),
          fc.constant(s),
          fc.constant(start),
          // Mostly short ranges (a range over a huge object can have billions of blocks).
          fc.integer({ min: start, max: Math.min(s - 1, start + 64 * b) }),
        ),
      ),
    );

  test("the slices are the range's bytes, in order, each inside its block", () => {
    holds(
      fc.property(cases, ([blockSize, size, start, end]) => {
        const slices = sliceRange({ start, end }, blockSize, size);
        let at = start;
        for (const [i, slice] of slices.entries()) {
          expect(slice.index).toBe(blockOf(start, blockSize) + i);
          expect(slice.index * blockSize + slice.offset).toBe(at); // contiguous
          expect(slice.length).toBeGreaterThan(0);
          expect(slice.offset + slice.length).toBeLessThanOrEqual(blockLength(slice.index, blockSize, size));
          if (i > 0) expect(slice.offset).toBe(0); // only the first starts inside its block
          if (i < slices.length - 1) expect(slice.offset + slice.length).toBe(blockSize); // only the last ends inside
          at += slice.length;
        }
        expect(at).toBe(end + 1);
        const { first, last } = blocksOf({ start, end }, blockSize, size);
        expect(slices.length).toBe(last - first + 1);
      }),
      500,
    );
  });
});
