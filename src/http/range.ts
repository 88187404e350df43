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

/**
 * Parses decimal digits in text[from, to). Numbers beyond 2^53 cannot be represented exactly,
 * but no file is that large, so they become Infinity: past any end, which is how they compare.
 * Returns -1 when the span is empty or holds anything but digits.
 */
function digits(text: string, from: number, to: number): number {
  if (from >= to) return -1;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    value = value * 10 + c;
  }
  // Past 2^53 the sum above has lost precision; all that matters is that it is huge.
  return to - from > 15 && !Number.isSafeInteger(value) ? Number.POSITIVE_INFINITY : value;
}

/** Whether the digits in text[a, aEnd) are a smaller number than those in text[b, bEnd), exactly. */
function digitsLess(text: string, a: number, aEnd: number, b: number, bEnd: number): boolean {
  while (a < aEnd - 1 && text.charCodeAt(a) === 48) a++;
  while (b < bEnd - 1 && text.charCodeAt(b) === 48) b++;
  if (aEnd - a !== bEnd - b) return aEnd - a < bEnd - b;
  for (; a < aEnd; a++, b++) {
    const diff = text.charCodeAt(a) - text.charCodeAt(b);
    if (diff !== 0) return diff < 0;
  }
  return false;
}

function isOws(code: number): boolean {
  return code === 32 || code === 9;
}

/**
 * Parses `bytes=<range-set>` into range-specs. Returns undefined when the header is not a
 * syntactically valid bytes range (other unit, garbage, last < first): such a header is ignored.
 * A hand-written scanner: this runs on every seek, and splitting and regexes allocate.
 */
export function parseRangeHeader(header: string): Spec[] | undefined {
  const eq = header.indexOf("=");
  // The unit is case-insensitive (RFC 9110 §14.1); whitespace around "=" is not allowed.
  if (eq !== 5 || header.slice(0, 5).toLowerCase() !== "bytes") return undefined;
  const specs: Spec[] = [];
  const length = header.length;
  let pos = eq + 1;
  // range-set is a #list: empty elements and optional whitespace are permitted.
  while (pos <= length) {
    let end = header.indexOf(",", pos);
    if (end < 0) end = length;
    let from = pos;
    let to = end;
    while (from < to && isOws(header.charCodeAt(from))) from++;
    while (to > from && isOws(header.charCodeAt(to - 1))) to--;
    pos = end + 1;
    if (from === to) continue;
    const dash = header.indexOf("-", from);
    if (dash < 0 || dash >= to) return undefined;
    if (dash === from) {
      const suffix = digits(header, dash + 1, to);
      if (suffix < 0) return undefined;
      specs.push({ suffix });
      continue;
    }
    const first = digits(header, from, dash);
    if (first < 0) return undefined;
    if (dash + 1 === to) {
      specs.push({ first, last: Number.POSITIVE_INFINITY });
      continue;
    }
    const last = digits(header, dash + 1, to);
    if (last < 0 || last < first) return undefined;
    // Both past 2^53 (Infinity): last < first is still invalid, so compare the digits themselves.
    if (last === first && last === Number.POSITIVE_INFINITY && digitsLess(header, dash + 1, to, from, dash)) return undefined;
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
