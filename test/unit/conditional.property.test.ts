/**
 * src/http/conditional.ts against a reference model of RFC 9110 §13 on thousands of random
 * combinations of If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since and If-Range:
 * strong and weak tags, lists, `*`, duplicates (combined by Headers as a list), garbage, valid
 * HTTP-dates of all three forms and near-misses, on GET, HEAD and other methods.
 *
 * The model restates the RFC: §13.2.2's steps one by one; entity-tag grammar (§8.8.3) per
 * list element; HTTP-date (§5.6.7) read by fixed character positions and checked by letting a
 * Date roll over (a 30 February does not come back as the 30th).
 */
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { evaluatePreconditions, formatHttpDate, ifRangeAllows, parseHttpDate, type PreconditionOutcome, type Validators } from "../../src/http/conditional.ts";
import { holds, ows } from "../helpers/property.ts";

// ---------------------------------------------------------------------------------------------
// The model

const DAY_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const LONG_DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const trimOws = (text: string) => text.replace(/^[ \t]+|[ \t]+$/g, "");
const isDigits = (text: string) => text.length > 0 && [...text].every((c) => c >= "0" && c <= "9");

/** Unix seconds of a calendar date and time, or undefined when no such moment exists. */
function moment(year: number, month: number, day: number, hour: number, minute: number, second: number): number | undefined {
  if (month < 0 || hour > 23 || minute > 59 || second > 60) return undefined; // 60: a leap second
  const date = new Date(0);
  date.setUTCFullYear(year, month, day);
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month || date.getUTCDate() !== day) return undefined;
  date.setUTCHours(hour, minute, second, 0);
  return date.getTime() / 1000;
}

/** §5.6.7: a two-digit year is the latest year with those digits not more than 50 years ahead. */
function rfc850Year(yy: number, month: number, day: number, hour: number, minute: number, second: number, nowMs: number): number | undefined {
  const limit = new Date(nowMs);
  limit.setUTCFullYear(limit.getUTCFullYear() + 50);
  for (let year = new Date(nowMs).getUTCFullYear() + 100; ; year--) {
    if (year % 100 !== yy) continue;
    const at = moment(year, month, day, hour, minute, second);
    if (at === undefined) {
      // 29 Feb of a year that is not a leap year: keep looking, within the window.
      if (year < new Date(nowMs).getUTCFullYear() - 100) return undefined;
      continue;
    }
    if (at * 1000 <= limit.getTime()) return at;
  }
}

function modelHttpDate(value: string, nowMs = Date.now()): number | undefined {
  const text = trimOws(value);
  const two = (at: number) => (isDigits(text.slice(at, at + 2)) ? Number(text.slice(at, at + 2)) : Number.NaN);
  const time = (at: number) => (text[at + 2] === ":" && text[at + 5] === ":" ? [two(at), two(at + 3), two(at + 6)] : [Number.NaN, Number.NaN, Number.NaN]);
  const ok = (...numbers: number[]) => numbers.every((n) => !Number.isNaN(n));
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", 29 characters exactly.
  if (text.length === 29 && DAY_NAMES.includes(text.slice(0, 3)) && text.slice(3, 5) === ", " && text[7] === " " && text[11] === " " && text[16] === " " && text.slice(25) === " GMT") {
    const [h, m, s] = time(17);
    const year = isDigits(text.slice(12, 16)) ? Number(text.slice(12, 16)) : Number.NaN;
    const month = MONTHS.indexOf(text.slice(8, 11));
    if (!ok(two(5), year, h!, m!, s!)) return undefined;
    return moment(year, month, two(5), h!, m!, s!);
  }
  // rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT".
  const comma = text.indexOf(", ");
  if (comma > 0 && LONG_DAY_NAMES.includes(text.slice(0, comma))) {
    const rest = text.slice(comma + 2);
    if (rest.length !== 22 || rest[2] !== "-" || rest[6] !== "-" || rest[9] !== " " || rest.slice(18) !== " GMT") return undefined;
    const at = comma + 2;
    const [h, m, s] = time(at + 10);
    const month = MONTHS.indexOf(rest.slice(3, 6));
    if (!ok(two(at), two(at + 7), h!, m!, s!) || month < 0) return undefined;
    return rfc850Year(two(at + 7), month, two(at), h!, m!, s!, nowMs);
  }
  // asctime-date: "Sun Nov  6 08:49:37 1994" (the day is two digits or a space and one).
  if (text.length === 24 && DAY_NAMES.includes(text.slice(0, 3)) && text[3] === " " && text[7] === " " && text[10] === " " && text[19] === " ") {
    const day = text[8] === " " && isDigits(text[9]!) ? Number(text[9]) : two(8);
    const [h, m, s] = time(11);
    const year = isDigits(text.slice(20)) ? Number(text.slice(20)) : Number.NaN;
    const month = MONTHS.indexOf(text.slice(4, 7));
    if (!ok(day, year, h!, m!, s!)) return undefined;
    return moment(year, month, day, h!, m!, s!);
  }
  return undefined;
}

interface Tag {
  weak: boolean;
  opaque: string;
}

/** entity-tag = [ W/ ] DQUOTE *etagc DQUOTE; etagc = %x21 / %x23-7E / obs-text. */
function modelTag(text: string): Tag | undefined {
  const match = /^(W\/)?"([\x21\x23-\x7e\x80-\xff]*)"$/.exec(text);
  return match ? { weak: match[1] !== undefined, opaque: match[2]! } : undefined;
}

/** `*`, or the list's well-formed elements (a malformed one is no tag: it matches nothing). */
function modelTagList(value: string): Tag[] | "*" {
  if (trimOws(value) === "*") return "*";
  return value
    .split(",")
    .map((element) => modelTag(trimOws(element)))
    .filter((tag): tag is Tag => tag !== undefined);
}

const strong = (a: Tag, b: Tag) => !a.weak && !b.weak && a.opaque === b.opaque;
const weak = (a: Tag, b: Tag) => a.opaque === b.opaque;

function modelPreconditions(method: string, headers: Headers, validators: Validators): PreconditionOutcome {
  const current = modelTag(validators.etag)!;
  const hasDate = !Number.isNaN(validators.lastModified); // no Last-Modified: date conditions are ignored
  const safe = method === "GET" || method === "HEAD"; // methods are case-sensitive
  const ifMatch = headers.get("if-match");
  const ifUnmodifiedSince = headers.get("if-unmodified-since");
  const ifNoneMatch = headers.get("if-none-match");
  const ifModifiedSince = headers.get("if-modified-since");
  // 1. If-Match: false (412) unless `*` or a strong match.
  if (ifMatch !== null) {
    const list = modelTagList(ifMatch);
    if (list !== "*" && !list.some((tag) => strong(tag, current))) return "failed";
  }
  // 2. Without If-Match, If-Unmodified-Since (a valid date only): modified since → 412.
  else if (ifUnmodifiedSince !== null && hasDate) {
    const date = modelHttpDate(ifUnmodifiedSince);
    if (date !== undefined && validators.lastModified > date) return "failed";
  }
  // 3. If-None-Match: `*` or a weak match is false: 304 for GET/HEAD, 412 for others.
  if (ifNoneMatch !== null) {
    const list = modelTagList(ifNoneMatch);
    if (list === "*" || list.some((tag) => weak(tag, current))) return safe ? "not-modified" : "failed";
  }
  // 4. Without If-None-Match, GET/HEAD only: If-Modified-Since (a valid date): not modified → 304.
  else if (safe && ifModifiedSince !== null && hasDate) {
    const date = modelHttpDate(ifModifiedSince);
    if (date !== undefined && validators.lastModified <= date) return "not-modified";
  }
  return "proceed";
}

/** §13.1.5: no If-Range, or the current strong tag, or exactly the Last-Modified date. */
function modelIfRange(headers: Headers, validators: Validators, nowMs: number): boolean {
  const value = headers.get("if-range");
  if (value === null) return true;
  const tag = modelTag(trimOws(value));
  if (tag) return strong(tag, modelTag(validators.etag)!);
  const date = modelHttpDate(value);
  // §13.1.5: a date validates only when it is strong, and §8.8.2.2 makes a Last-Modified strong
  // when it is at least one second before the response's Date.
  return date !== undefined && date === validators.lastModified && nowMs / 1000 - date >= 1;
}

// ---------------------------------------------------------------------------------------------
// Generators

/** Opaque tags as Spool makes them (hex, a dash), plus other tag characters but never a comma. */
const opaque = fc.oneof(
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef-"), minLength: 1, maxLength: 12 }),
  fc.string({ unit: fc.constantFrom(..."abcXYZ019!#$%&'()*+-./:;<=>?@[]^_`{|}~"), maxLength: 8 }),
);

/** Seconds from 1950 to 2100, where all three date forms (two-digit years too) make sense. */
const instants = fc.integer({ min: -631_152_000, max: 4_102_444_800 });

const validators = fc.record({
  etag: opaque.map((o) => `"${o}"`),
  lastModified: fc.oneof({ weight: 9, arbitrary: instants }, { weight: 1, arbitrary: fc.constant(Number.NaN) }),
});

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

/** Form 0, 1 or 2 of HTTP-date (IMF-fixdate, RFC 850, asctime) of an instant. */
function dateForm(seconds: number, form: number): string {
  const d = new Date(seconds * 1000);
  const hms = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  const day = d.getUTCDay();
  const month = MONTHS[d.getUTCMonth()]!;
  if (form === 0) return formatHttpDate(seconds);
  if (form === 1) return `${LONG_DAY_NAMES[day]}, ${pad(d.getUTCDate())}-${month}-${pad(d.getUTCFullYear() % 100)} ${hms} GMT`;
  return `${DAY_NAMES[day]} ${month} ${String(d.getUTCDate()).padStart(2, " ")} ${hms} ${d.getUTCFullYear()}`;
}

const forms = fc.constantFrom(0, 1, 2);

/**
 * Header values are generated as functions of the validators (dates near Last-Modified, the
 * current tag and near-misses of it), applied to them at the end: cheaper than building new
 * arbitraries per validator.
 */
type Of<T> = (at: T) => string;

function mangle(text: string, how: number): string {
  switch (how) {
    case 0: return text.toLowerCase();
    case 1: return text.replace("GMT", "UTC");
    case 2: return text.replace(" GMT", " +0200");
    case 3: return text.replace(" GMT", "");
    case 4: return text.replace(/^[A-Za-z]+/, "Foo");
    case 5: return text.replace(/ 0(\d) /, " $1 ");
    case 6: return text.replace(/\d\d:/, "24:");
    case 7: return `${text}, ${text}`; // two members: a list is not a date
    case 8: return text.replace(/:\d\d /, ":60 ");
    case 9: return text.replace(/ (\d\d) /, " 31 ").replace(/ (\d\d)-/, " 31-");
    case 10: return text.replace(/(\d{4})/, (y) => y.slice(2));
    default: return ` ${text}\t`;
  }
}

/** Dates near an instant (equal, a second either side, anywhere), in every form, and near-misses. */
const dateValue: fc.Arbitrary<Of<number>> = (() => {
  const target = fc.oneof(
    fc.constant((at: number) => at),
    fc.integer({ min: -2, max: 2 }).map((d) => (at: number) => at + d),
    instants.map((other) => (_at: number) => other),
  );
  const valid = fc.tuple(target, forms).map(([t, form]): Of<number> => (at) => dateForm(t(at), form));
  const mangled = fc.tuple(valid, fc.integer({ min: 0, max: 11 })).map(([v, how]): Of<number> => (at) => mangle(v(at), how));
  const odd = fc.constantFrom(
    "Sun, 30 Feb 1994 08:49:37 GMT",
    "Thu, 29 Feb 2024 00:00:00 GMT",
    "Sat, 29 Feb 2025 00:00:00 GMT",
    "Sun, 1",
    "Sun, Nov 1994",
    "Sunday 06 Nov 1994",
    "784111777",
    "Sun, 06 Nov 0000 08:49:37 GMT",
    "Thursday, 01-Jan-70 00:00:00 GMT",
    "Wednesday, 31-Dec-76 23:59:59 GMT",
    "Friday, 01-Jan-77 00:00:00 GMT",
    "Sun Nov 6 08:49:37 1994",
    "Sun Nov 06 08:49:37 1994",
    "Sun, 06 Nov 1994 23:59:60 GMT",
  );
  return fc.oneof(
    { weight: 6, arbitrary: valid },
    { weight: 3, arbitrary: mangled },
    { weight: 1, arbitrary: odd.map((text): Of<number> => () => text) },
    { weight: 1, arbitrary: fc.string({ maxLength: 30 }).map((text): Of<number> => () => text) },
  );
})();

/** If-Match / If-None-Match values: tags current and not, strong and weak, `*`, garbage. */
const tagListValue: fc.Arbitrary<Of<string>> = (() => {
  const nearMisses = (etag: string) => {
    const o = etag.slice(1, -1);
    return [`"${o}`, `${o}"`, o, `w/${etag}`, `W/ ${etag}`, `W${etag}`, `"${o}"x`, `\u00a0${etag}`, `${etag}\u00a0`, `\u000b${etag}`, `"${o} "`, `"${o}\u0001"`, "*", "W/", '""', '"', `"${o},x"`];
  };
  const element = fc.oneof(
    { weight: 4, arbitrary: fc.boolean().map((weak): Of<string> => (etag) => (weak ? `W/${etag}` : etag)) },
    { weight: 3, arbitrary: fc.tuple(opaque, fc.boolean()).map(([x, weak]): Of<string> => () => (weak ? `W/"${x}"` : `"${x}"`)) },
    { weight: 2, arbitrary: fc.nat(16).map((i): Of<string> => (etag) => nearMisses(etag)[i]!) },
    { weight: 1, arbitrary: fc.string({ maxLength: 12 }).map((text): Of<string> => () => text) },
  );
  const list = fc
    .array(fc.tuple(ows(), element, ows()), { minLength: 1, maxLength: 4 })
    .map((parts): Of<string> => (etag) => parts.map(([l, e, r]) => l + e(etag) + r).join(","));
  const star = fc.nat(3).map((i): Of<string> => (etag) => ["*", " * ", "*,*", `*, ${etag}`][i]!);
  return fc.oneof({ weight: 8, arbitrary: list }, { weight: 1, arbitrary: star });
})();

/** One header: absent, or one to three values (appended: Headers joins them with ", "). */
function header<T>(value: fc.Arbitrary<Of<T>>): fc.Arbitrary<Of<T>[]> {
  return fc.oneof({ weight: 2, arbitrary: fc.constant<Of<T>[]>([]) }, { weight: 3, arbitrary: fc.array(value, { minLength: 1, maxLength: 1 }) }, { weight: 1, arbitrary: fc.array(value, { minLength: 2, maxLength: 3 }) });
}

const methods = fc.constantFrom("GET", "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "get");

/** Dates are generated near Last-Modified, or near some date when there is none. */
const lastModifiedOr = (v: Validators) => (Number.isNaN(v.lastModified) ? 784111777 : v.lastModified);

interface Scenario {
  method: string;
  validators: Validators;
  headers: [string, string][];
}

const scenario: fc.Arbitrary<Scenario> = fc
  .tuple(
    validators,
    methods,
    header(tagListValue),
    header(tagListValue),
    header(dateValue),
    header(dateValue),
    header(
      fc.oneof(
        tagListValue.map((f): Of<Validators> => (v) => f(v.etag)),
        dateValue.map((f): Of<Validators> => (v) => f(lastModifiedOr(v))),
      ),
    ),
  )
  .map(([v, method, ifMatch, ifNoneMatch, ims, ius, ifRange]) => {
    const at = lastModifiedOr(v);
    const headers: [string, string][] = [
      ...ifMatch.map((f): [string, string] => ["if-match", f(v.etag)]),
      ...ifNoneMatch.map((f): [string, string] => ["if-none-match", f(v.etag)]),
      ...ims.map((f): [string, string] => ["if-modified-since", f(at)]),
      ...ius.map((f): [string, string] => ["if-unmodified-since", f(at)]),
      ...ifRange.map((f): [string, string] => ["if-range", f(v)]),
    ];
    return { method, validators: v, headers };
  });

function headersOf(s: Scenario): Headers {
  const headers = new Headers();
  for (const [name, value] of s.headers) headers.append(name, value);
  return headers;
}

// ---------------------------------------------------------------------------------------------
// Properties

describe("conditional requests agree with the RFC 9110 §13 model", () => {
  // One property checks both on the same requests: generating them is most of the cost.
  test("evaluatePreconditions (§13.2.2 precedence, strong/weak comparison, *, GET/HEAD vs others) and ifRangeAllows (current strong tag, or exact date at least a second old)", () => {
    holds(
      fc.property(scenario, (s) => {
        const headers = headersOf(s);
        expect(evaluatePreconditions(s.method, headers, s.validators)).toBe(modelPreconditions(s.method, headers, s.validators));
        const nowMs = Date.now();
        expect(ifRangeAllows(headers, s.validators, nowMs)).toBe(modelIfRange(headers, s.validators, nowMs));
      }),
      3000,
    );
  });

  test("parseHttpDate: the three forms exactly, anything else is not a date", () => {
    const now = fc.integer({ min: 0, max: 4_102_444_800_000 });
    holds(
      fc.property(fc.tuple(instants, dateValue).map(([at, f]) => f(at)), now, (text, nowMs) => {
        expect(parseHttpDate(text, nowMs)).toBe(modelHttpDate(text, nowMs));
      }),
      2000,
    );
  });

  test("every valid form of an instant reads back as that instant", () => {
    holds(
      fc.property(
        fc.tuple(instants, forms).map(([at, form]) => [at, dateForm(at, form)] as const),
        ([at, text]) => {
          // Two-digit years are read relative to now: take a now that makes this one unambiguous.
          expect(parseHttpDate(text, at * 1000)).toBe(at);
        },
      ),
      1000,
    );
  });
});
