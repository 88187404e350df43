/**
 * src/http/range.ts against a reference model of RFC 9110 §14 as Spool applies it, on thousands
 * of random Range headers (well-formed sets and garbage) and sizes from 0 to 2^53.
 *
 * The model is written for obviousness, not speed: regular expressions per list element,
 * BigInt arithmetic (exact past 2^53), and merging by repeating "join any two ranges that are
 * close" until nothing changes.
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { coalesce, DEFAULT_RANGE_LIMITS, parseRangeHeader, planRange, type ByteRange, type RangePlan } from "../../src/http/range.ts";
import { holds, ows } from "../helpers/property.ts";

const { maxRanges: MAX_RANGES, coalesceGap: GAP } = DEFAULT_RANGE_LIMITS;
const TWO_53 = 2 ** 53;

// ---------------------------------------------------------------------------------------------
// The model

type ModelSpec = { first: bigint; last: bigint | null } | { suffix: bigint };
interface Interval {
  start: bigint;
  end: bigint;
  order: number;
}

/** `bytes=` (unit case-insensitive, no whitespace around "="), then a #list of range-specs. */
function modelSpecs(header: string): ModelSpec[] | undefined {
  const match = /^bytes=(.*)$/is.exec(header);
  if (!match) return undefined;
  const specs: ModelSpec[] = [];
  for (const raw of match[1]!.split(",")) {
    const element = raw.replace(/^[ \t]+|[ \t]+$/g, ""); // OWS is SP and HTAB, nothing else
    if (element === "") continue; // empty list elements are allowed
    const range = /^([0-9]+)-([0-9]*)$/.exec(element);
    const suffix = /^-([0-9]+)$/.exec(element);
    if (range) {
      const first = BigInt(range[1]!);
      const last = range[2] === "" ? null : BigInt(range[2]!);
      if (last !== null && last < first) return undefined; // invalid: the header is ignored
      specs.push({ first, last });
    } else if (suffix) {
      specs.push({ suffix: BigInt(suffix[1]!) });
    } else {
      return undefined;
    }
  }
  return specs.length > 0 ? specs : undefined;
}

/** Joins any two intervals less than `gap` bytes apart (or overlapping) until none are. */
function modelMerge(intervals: Interval[], gap: bigint): Interval[] {
  const set = intervals.map((r) => ({ ...r }));
  const close = (a: Interval, b: Interval) => {
    const [lo, hi] = a.start <= b.start ? [a, b] : [b, a];
    return hi.start - lo.end - 1n <= gap; // bytes strictly between them
  };
  for (let changed = true; changed; ) {
    changed = false;
    outer: for (let i = 0; i < set.length; i++) {
      for (let j = i + 1; j < set.length; j++) {
        if (close(set[i]!, set[j]!)) {
          const a = set[i]!;
          const b = set[j]!;
          set[i] = { start: a.start < b.start ? a.start : b.start, end: a.end > b.end ? a.end : b.end, order: Math.min(a.order, b.order) };
          set.splice(j, 1);
          changed = true;
          break outer;
        }
      }
    }
  }
  // Each part is sent where its earliest-requested range was asked for.
  return set.sort((a, b) => a.order - b.order);
}

function modelPlan(header: string | null, size: number): RangePlan {
  if (header === null || header === "") return { kind: "full" };
  const specs = modelSpecs(header);
  if (!specs) return { kind: "full" }; // syntax error or another unit: ignored, whole file
  if (size === 0) return { kind: "full" }; // no byte to select
  if (specs.length > MAX_RANGES) return { kind: "unsatisfiable" };
  const n = BigInt(size);
  const satisfiable: Interval[] = [];
  specs.forEach((spec, order) => {
    if ("suffix" in spec) {
      if (spec.suffix === 0n) return;
      satisfiable.push({ start: spec.suffix >= n ? 0n : n - spec.suffix, end: n - 1n, order });
    } else {
      if (spec.first >= n) return;
      const last = spec.last === null || spec.last > n - 1n ? n - 1n : spec.last;
      satisfiable.push({ start: spec.first, end: last, order });
    }
  });
  if (satisfiable.length === 0) return { kind: "unsatisfiable" };
  const ranges = modelMerge(satisfiable, BigInt(GAP)).map(({ start, end }) => ({ start: Number(start), end: Number(end) }));
  return { kind: "partial", ranges };
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Sizes around the interesting places: nothing, one byte, the gap, 2^31, 2^32, 2^53. */
const sizes = fc.oneof(
  fc.constantFrom(0, 1, 2, GAP, GAP + 1, GAP + 2, 2 ** 31 - 1, 2 ** 31, 2 ** 31 + 1, 2 ** 32, TWO_53 - 1, TWO_53),
  fc.integer({ min: 0, max: 1_000 }),
  fc.integer({ min: 0, max: 100_000 }),
  fc.integer({ min: 2 ** 31 - 1_000, max: 2 ** 32 + 1_000 }),
  fc.integer({ min: 0, max: TWO_53 - 1 }),
);

/**
 * Headers are generated as functions of the size (so that positions can be chosen relative to
 * it) and applied to a size at the end: cheaper than building new arbitraries per size.
 */
type OfSize = (size: number) => string;

/** A decimal position as written in a header, chosen relative to the size. */
const position: fc.Arbitrary<OfSize> = fc.oneof(
  // Anywhere in the file (or just past it).
  { weight: 3, arbitrary: fc.bigInt({ min: 0n, max: 2n ** 53n }).map((v): OfSize => (size) => String(v % BigInt(size + 1))) },
  // Near the places where rules change: 0, the end, a gap before the end, the middle.
  {
    weight: 2,
    arbitrary: fc.tuple(fc.constantFrom(0, 1, 2, 3), fc.integer({ min: -3, max: 3 })).map(([where, d]): OfSize => (size) => {
      const at = [0, size, size - GAP, Math.floor(size / 2)][where]!;
      return String(Math.max(0, at + d));
    }),
  },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 300 }).map((v): OfSize => () => String(v)) },
  { weight: 1, arbitrary: fc.maxSafeNat().map((v): OfSize => () => String(v)) },
  // Past 2^53, where doubles lose integers: up to 25 digits, and 2^53 ± a little exactly.
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 53n - 3n, max: 10n ** 25n }).map((v): OfSize => () => String(v)) },
  { weight: 1, arbitrary: fc.bigInt({ min: 2n ** 53n - 3n, max: 2n ** 53n + 3n }).map((v): OfSize => () => String(v)) },
  // Leading zeros are still decimal digits.
  { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 9999 })).map(([zeros, v]): OfSize => () => "0".repeat(zeros) + v) },
);

/** One well-formed list element: a range-spec of each kind, or an empty element. */
const validElement: fc.Arbitrary<OfSize> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.tuple(position, position).map(([p, q]): OfSize => (size) => {
      const [a, b] = [p(size), q(size)];
      return BigInt(a) <= BigInt(b) ? `${a}-${b}` : `${b}-${a}`;
    }),
  },
  // Short ranges, so that sets of disjoint ones (multipart) and near ones (merged) are common.
  {
    weight: 5,
    arbitrary: fc.tuple(position, fc.integer({ min: 0, max: 3 * GAP })).map(([p, length]): OfSize => (size) => {
      const a = p(size);
      return `${a}-${BigInt(a) + BigInt(length)}`;
    }),
  },
  { weight: 2, arbitrary: position.map((p): OfSize => (size) => `${p(size)}-`) },
  { weight: 2, arbitrary: position.map((p): OfSize => (size) => `-${p(size)}`) },
  { weight: 1, arbitrary: fc.constantFrom("", "-0", "0-0", "0-").map((e): OfSize => () => e) },
);

/** Any list element: mostly well-formed, sometimes last < first or malformed. */
const element: fc.Arbitrary<OfSize> = fc.oneof(
  { weight: 12, arbitrary: validElement },
  { weight: 1, arbitrary: fc.tuple(position, position).map(([p, q]): OfSize => (size) => `${p(size)}-${q(size)}`) }, // last < first half the time
  {
    weight: 1,
    arbitrary: fc
      .constantFrom("-", "--5", "5", "a-b", "1-2-3", "+1-2", "0x10-0x20", "1 -2", "1- 2", "- 5", "1e3-", "١-٢", "1-\u00a0", "½-1", "\u00a01-2")
      .map((e): OfSize => () => e),
  },
);

const unit = fc.oneof(
  { weight: 12, arbitrary: fc.mixedCase(fc.constant("bytes")) },
  { weight: 1, arbitrary: fc.constantFrom("items", "byte", "bytes ", " bytes", "bytess", "none", "") },
);

/** A #list of elements with optional whitespace around each. */
function list(of: fc.Arbitrary<OfSize>, minLength: number, maxLength: number): fc.Arbitrary<OfSize> {
  return fc
    .array(fc.tuple(ows(), of, ows()), { minLength, maxLength })
    .map((parts): OfSize => (size) => parts.map(([l, e, r]) => l + e(size) + r).join(","));
}

/** Range sets: well-formed, or with a flaw somewhere; sometimes more than 64 elements. */
const rangeHeader: fc.Arbitrary<OfSize> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc
      .tuple(
        fc.mixedCase(fc.constant("bytes")),
        fc.oneof({ weight: 4, arbitrary: list(validElement, 1, 3) }, { weight: 4, arbitrary: list(validElement, 2, 12) }, { weight: 1, arbitrary: list(validElement, 60, 70) }),
      )
      .map(([u, set]): OfSize => (size) => `${u}=${set(size)}`),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(unit, fc.constantFrom("=", "=", "=", " =", "= ", ":"), fc.oneof({ weight: 8, arbitrary: list(element, 0, 8) }, { weight: 1, arbitrary: list(element, 60, 70) }))
      .map(([u, eq, set]): OfSize => (size) => `${u}${eq}${set(size)}`),
  },
);

/** Garbage: random text over the characters a Range header is made of, and any text at all. */
const garbage = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."bytesBYTES=-,0123456789 \t;xX.+\u00a0"), maxLength: 40 }),
  fc.string({ unit: fc.constantFrom(..."0123456789-, "), maxLength: 40 }).map((s) => `bytes=${s}`),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 30 }).map((s) => `bytes=${s}`),
);

const headerAndSize: fc.Arbitrary<[string | null, number]> = fc
  .tuple(
    fc.oneof(
      { weight: 4, arbitrary: rangeHeader },
      { weight: 1, arbitrary: garbage.map((g): OfSize => () => g) },
      { weight: 1, arbitrary: fc.constant(null) },
    ),
    sizes,
  )
  .map(([header, size]) => [header === null ? null : header(size), size]);

// ---------------------------------------------------------------------------------------------
// Properties

/** Spool's parse of a header in the model's terms: positions past 2^53 are Infinity, "past any end". */
function asSpoolSpecs(model: ModelSpec[]) {
  const num = (v: bigint | null) => (v === null || v >= 2n ** 53n ? Number.POSITIVE_INFINITY : Number(v));
  return model.map((s) => ("suffix" in s ? { suffix: num(s.suffix) } : { first: num(s.first), last: num(s.last) }));
}

/** What any 206 plan must be, whatever the header: within the file, no more than it, apart, few. */
function expectSafePlan(plan: RangePlan, size: number): void {
  if (plan.kind !== "partial") return;
  expect(plan.ranges.length).toBeGreaterThan(0);
  expect(plan.ranges.length).toBeLessThanOrEqual(MAX_RANGES);
  let total = 0;
  for (const r of plan.ranges) {
    expect(Number.isSafeInteger(r.start) && Number.isSafeInteger(r.end)).toBe(true);
    expect(0 <= r.start && r.start <= r.end && r.end <= size - 1).toBe(true);
    total += r.end - r.start + 1;
  }
  expect(total).toBeLessThanOrEqual(size);
  const sorted = [...plan.ranges].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.start - sorted[i - 1]!.end - 1).toBeGreaterThan(GAP);
}

describe("Range headers agree with the RFC 9110 §14 model", () => {
  // One property checks all three on the same inputs: generating them is most of the cost.
  test("planRange plans what the model plans, parseRangeHeader accepts what it accepts, and no plan exceeds the file (sizes 0 to 2^53)", () => {
    holds(
      fc.property(headerAndSize, ([header, size]) => {
        const plan = planRange(header, size);
        expect(plan).toEqual(modelPlan(header, size));
        expectSafePlan(plan, size);
        if (header === null) return;
        const model = modelSpecs(header);
        expect(parseRangeHeader(header)).toEqual(model && asSpoolSpecs(model));
      }),
      3000,
    );
  });
});

describe("coalesce agrees with merging close pairs until none are left", () => {
  const ranges = fc.array(
    fc.tuple(fc.integer({ min: 0, max: 2000 }), fc.integer({ min: 0, max: 300 })).map(([start, length]): ByteRange => ({ start, end: start + length })),
    { maxLength: 30 },
  );
  test("on random ranges and gaps", () => {
    holds(
      fc.property(ranges, fc.constantFrom(0, 1, 10, GAP, 500), (input, gap) => {
        const model = modelMerge(
          input.map((r, order) => ({ start: BigInt(r.start), end: BigInt(r.end), order })),
          BigInt(gap),
        ).map(({ start, end }) => ({ start: Number(start), end: Number(end) }));
        expect(coalesce(input, gap)).toEqual(model);
      }),
      2000,
    );
  });
});
