/**
 * Byte-range parsing and planning, RFC 9110 §14.1–14.2. Pure: no I/O.
 *
 * The planner turns a Range header and a representation size into one of:
 *  - `full`: ignore the header and send the whole representation (200);
 *  - `partial`: one or more satisfiable, coalesced ranges (206);
 *  - `unsatisfiable`: nothing can be sent (416 with `Content-Range: bytes *\/size`).
 */

/** An inclusive byte interval, as written in Content-Range. */
export interface ByteRange {
  start: number;
  end: number;
}

export type RangePlan =
  | { kind: "full" }
  | { kind: "partial"; ranges: ByteRange[] }
  | { kind: "unsatisfiable" };

export interface RangeLimits {
  /** More range-specs than this is treated as abuse and refused with 416 (CVE-2011-3192). */
  maxRanges: number;
  /** Ranges closer than this many bytes are merged: a part header costs about as much. */
  coalesceGap: number;
}

export const DEFAULT_RANGE_LIMITS: RangeLimits = { maxRanges: 64, coalesceGap: 80 };

type Spec = { first: number; last: number } | { suffix: number };

const DIGITS = /^[0-9]+$/;

/**
 * Parses a decimal position. Numbers beyond 2^53 cannot be represented exactly, but no file is
 * that large, so they become Infinity: past any end, which is exactly how they compare.
 */
function position(text: string): number | undefined {
  if (!DIGITS.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : Number.POSITIVE_INFINITY;
}

/**
 * Parses `bytes=<range-set>` into range-specs. Returns undefined when the header is not a
 * syntactically valid bytes range (other unit, garbage, last < first): such a header is ignored.
 */
export function parseRangeHeader(header: string): Spec[] | undefined {
  const eq = header.indexOf("=");
  if (eq < 0) return undefined;
  // The unit is case-insensitive (RFC 9110 §14.1); whitespace around "=" is not allowed.
  if (header.slice(0, eq).toLowerCase() !== "bytes") return undefined;
  const specs: Spec[] = [];
  // range-set is a #list: empty elements and optional whitespace are permitted.
  for (const raw of header.slice(eq + 1).split(",")) {
    const item = raw.trim();
    if (item === "") continue;
    const dash = item.indexOf("-");
    if (dash < 0) return undefined;
    const left = item.slice(0, dash);
    const right = item.slice(dash + 1);
    if (left === "") {
      const suffix = position(right);
      if (suffix === undefined) return undefined;
      specs.push({ suffix });
      continue;
    }
    const first = position(left);
    if (first === undefined) return undefined;
    if (right === "") {
      specs.push({ first, last: Number.POSITIVE_INFINITY });
      continue;
    }
    const last = position(right);
    if (last === undefined || last < first) return undefined;
    specs.push({ first, last });
  }
  return specs.length > 0 ? specs : undefined;
}

/** Resolves one spec against the size; undefined when it is unsatisfiable (§14.1.1). */
function resolve(spec: Spec, size: number): ByteRange | undefined {
  if ("suffix" in spec) {
    if (spec.suffix === 0) return undefined;
    // A suffix longer than the representation selects all of it.
    return { start: Math.max(0, size - spec.suffix), end: size - 1 };
  }
  if (spec.first >= size) return undefined;
  return { start: spec.first, end: Math.min(spec.last, size - 1) };
}

/**
 * Merges overlapping ranges and ranges separated by less than `gap` bytes. Parts keep the order
 * in which their first range was requested (§14.6 asks for request order where possible).
 */
export function coalesce(ranges: ByteRange[], gap: number): ByteRange[] {
  if (ranges.length < 2) return ranges;
  const indexed = ranges.map((r, order) => ({ ...r, order }));
  indexed.sort((a, b) => a.start - b.start || a.end - b.end);
  const merged: { start: number; end: number; order: number }[] = [];
  for (const r of indexed) {
    const last = merged[merged.length - 1];
    if (last && r.start <= last.end + 1 + gap) {
      last.end = Math.max(last.end, r.end);
      last.order = Math.min(last.order, r.order);
    } else {
      merged.push({ ...r });
    }
  }
  merged.sort((a, b) => a.order - b.order);
  return merged.map(({ start, end }) => ({ start, end }));
}

/** Decides what to send for a Range header (already known to apply: GET/HEAD, If-Range passed). */
export function planRange(
  header: string | null | undefined,
  size: number,
  limits: RangeLimits = DEFAULT_RANGE_LIMITS,
): RangePlan {
  if (!header) return { kind: "full" };
  const specs = parseRangeHeader(header);
  // Invalid or foreign-unit headers are ignored, as nginx does (§14.2 allows ignoring).
  if (!specs) return { kind: "full" };
  // An empty representation has no byte positions to select; send it whole.
  if (size === 0) return { kind: "full" };
  if (specs.length > limits.maxRanges) return { kind: "unsatisfiable" };
  const ranges: ByteRange[] = [];
  for (const spec of specs) {
    const r = resolve(spec, size);
    if (r) ranges.push(r);
  }
  if (ranges.length === 0) return { kind: "unsatisfiable" };
  return { kind: "partial", ranges: coalesce(ranges, limits.coalesceGap) };
}

/** `bytes a-b/size` for a 206 part. */
export function contentRange(range: ByteRange, size: number): string {
  return `bytes ${range.start}-${range.end}/${size}`;
}

/** `bytes *\/size` for a 416. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}
