import { describe, expect, test } from "bun:test";
import {
  evaluatePreconditions,
  formatHttpDate,
  ifRangeAllows,
  parseEntityTagList,
  parseHttpDate,
  type PreconditionOutcome,
} from "../../src/http/conditional.ts";

const ETAG = '"abc123"';
const LM = 1_700_000_000; // seconds
const validators = { etag: ETAG, lastModified: LM };
const date = (s: number) => formatHttpDate(s);
const h = (record: Record<string, string>) => new Headers(record);

describe("evaluatePreconditions (RFC 9110 §13.2.2)", () => {
  const cases: [string, string, Record<string, string>, PreconditionOutcome][] = [
    ["no conditions", "GET", {}, "proceed"],
    // If-Match: strong comparison
    ["If-Match current tag", "GET", { "if-match": ETAG }, "proceed"],
    ["If-Match in a list", "GET", { "if-match": '"x", "abc123"' }, "proceed"],
    ["If-Match *", "GET", { "if-match": "*" }, "proceed"],
    ["If-Match other tag", "GET", { "if-match": '"other"' }, "failed"],
    ["If-Match weak tag never matches", "GET", { "if-match": 'W/"abc123"' }, "failed"],
    ["If-Match garbage", "GET", { "if-match": "abc123" }, "failed"],
    // If-Unmodified-Since
    ["If-Unmodified-Since equal", "GET", { "if-unmodified-since": date(LM) }, "proceed"],
    ["If-Unmodified-Since later", "GET", { "if-unmodified-since": date(LM + 10) }, "proceed"],
    ["If-Unmodified-Since earlier", "GET", { "if-unmodified-since": date(LM - 1) }, "failed"],
    ["If-Unmodified-Since invalid is ignored", "GET", { "if-unmodified-since": "yesterday" }, "proceed"],
    ["If-Unmodified-Since ignored when If-Match present", "GET", { "if-match": ETAG, "if-unmodified-since": date(LM - 1) }, "proceed"],
    // If-None-Match: weak comparison
    ["If-None-Match current tag", "GET", { "if-none-match": ETAG }, "not-modified"],
    ["If-None-Match weak form of current tag", "GET", { "if-none-match": 'W/"abc123"' }, "not-modified"],
    ["If-None-Match in a list", "GET", { "if-none-match": '"a", W/"b", "abc123"' }, "not-modified"],
    ["If-None-Match *", "GET", { "if-none-match": "*" }, "not-modified"],
    ["If-None-Match other tag", "GET", { "if-none-match": '"other"' }, "proceed"],
    ["If-None-Match on HEAD", "HEAD", { "if-none-match": ETAG }, "not-modified"],
    ["If-None-Match on a POST is 412", "POST", { "if-none-match": ETAG }, "failed"],
    // If-Modified-Since
    ["If-Modified-Since equal", "GET", { "if-modified-since": date(LM) }, "not-modified"],
    ["If-Modified-Since later", "GET", { "if-modified-since": date(LM + 60) }, "not-modified"],
    ["If-Modified-Since earlier", "GET", { "if-modified-since": date(LM - 1) }, "proceed"],
    ["If-Modified-Since invalid", "GET", { "if-modified-since": "not a date" }, "proceed"],
    ["If-Modified-Since ignored when If-None-Match present (no match)", "GET", { "if-none-match": '"other"', "if-modified-since": date(LM) }, "proceed"],
    ["If-Modified-Since ignored for POST", "POST", { "if-modified-since": date(LM) }, "proceed"],
    // Found by conditional.property.test.ts: only spaces and tabs are whitespace around list
    // elements (String.prototype.trim also took a vertical tab or a no-break space).
    ["If-Match with a vertical tab before the tag: malformed, no match", "GET", { "if-match": '\u000b"abc123"' }, "failed"],
    ["If-None-Match with a no-break space after the tag: malformed, no match", "GET", { "if-none-match": '"abc123"\u00a0' }, "proceed"],
    ["If-Modified-Since that Date.parse took for 2001: ignored", "GET", { "if-modified-since": "Sun, 1" }, "proceed"],
    ["If-Unmodified-Since that Date.parse took for 2001: ignored", "GET", { "if-unmodified-since": "Sun, 1" }, "proceed"],
    ["If-Unmodified-Since on 30 February: ignored", "GET", { "if-unmodified-since": "Sun, 30 Feb 1994 08:49:37 GMT" }, "proceed"],
    // Order: 412 wins over 304
    ["If-Match failure beats If-None-Match", "GET", { "if-match": '"other"', "if-none-match": ETAG }, "failed"],
    ["If-Unmodified-Since failure beats If-Modified-Since", "GET", { "if-unmodified-since": date(LM - 1), "if-modified-since": date(LM) }, "failed"],
    ["If-Match pass then If-None-Match match", "GET", { "if-match": ETAG, "if-none-match": ETAG }, "not-modified"],
  ];
  test.each(cases)("%s", (_name, method, headers, expected) => {
    expect(evaluatePreconditions(method, h(headers), validators)).toBe(expected);
  });
});

describe("ifRangeAllows (§13.1.5)", () => {
  const cases: [string, Record<string, string>, boolean][] = [
    ["absent", {}, true],
    ["current strong tag", { "if-range": ETAG }, true],
    ["weak tag never", { "if-range": 'W/"abc123"' }, false],
    ["other tag", { "if-range": '"zzz"' }, false],
    ["exact date", { "if-range": date(LM) }, true],
    ["later date is not exact", { "if-range": date(LM + 1) }, false],
    ["earlier date", { "if-range": date(LM - 1) }, false],
    ["garbage", { "if-range": "whatever" }, false],
    ["the date in lower case is not an HTTP-date", { "if-range": date(LM).toLowerCase() }, false],
    ["a no-break space before the tag", { "if-range": `\u00a0${ETAG}` }, false],
  ];
  test.each(cases)("%s", (_name, headers, expected) => {
    expect(ifRangeAllows(h(headers), validators)).toBe(expected);
  });
  // §8.8.2.2: a Last-Modified is strong only once at least a second has passed since it.
  test.each([
    ["in the file's own second: weak, so the whole file", LM * 1000 + 999, false],
    ["a second later: strong", (LM + 1) * 1000, true],
    ["a clock behind the file: weak", (LM - 5) * 1000, false],
  ] as const)("the exact date, %s", (_name, nowMs, expected) => {
    expect(ifRangeAllows(h({ "if-range": date(LM) }), validators, nowMs)).toBe(expected);
  });
});

describe("HTTP dates and entity-tag lists", () => {
  test.each([
    ["IMF-fixdate", "Sun, 06 Nov 1994 08:49:37 GMT", 784111777],
    ["RFC 850", "Sunday, 06-Nov-94 08:49:37 GMT", 784111777],
    ["asctime", "Sun Nov  6 08:49:37 1994", 784111777],
    ["a bare number is not a date", "784111777", undefined],
    ["garbage", "soon", undefined],
  ] as [string, string, number | undefined][])("%s", (_n, text, expected) => {
    expect(parseHttpDate(text)).toBe(expected);
  });
  // Found by conditional.property.test.ts: Date.parse read all of these as dates, so a request
  // carrying one got a 304 or 412 where RFC 9110 §13.1.3/§13.1.4 say the field MUST be ignored.
  test.each([
    ["a weekday and a number", "Sun, 1"],
    ["no day, no time", "Sun, Nov 1994"],
    ["no comma, no time", "Sunday 06 Nov 1994"],
    ["30 February", "Sun, 30 Feb 1994 08:49:37 GMT"],
    ["29 February of a common year", "Sat, 29 Feb 2025 00:00:00 GMT"],
    ["hour 24", "Sun, 06 Nov 1994 24:00:00 GMT"],
    ["second 61", "Sun, 06 Nov 1994 08:49:61 GMT"],
    ["lower case (HTTP-date is case-sensitive)", "sun, 06 nov 1994 08:49:37 gmt"],
    ["another zone", "Sun, 06 Nov 1994 08:49:37 +0200"],
    ["UTC is not GMT", "Sun, 06 Nov 1994 08:49:37 UTC"],
    ["no zone", "Sun, 06 Nov 1994 08:49:37"],
    ["one-digit day in IMF-fixdate", "Sun, 6 Nov 1994 08:49:37 GMT"],
    ["two-digit year in IMF-fixdate", "Sun, 06 Nov 94 08:49:37 GMT"],
    ["an unknown day-name", "Foo, 06 Nov 1994 08:49:37 GMT"],
    ["a full month name", "Sun, 06 November 1994 08:49:37 GMT"],
    ["asctime with one space before a one-digit day", "Sun Nov 6 08:49:37 1994"],
    ["two dates (a list)", "Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT"],
    ["a no-break space is not whitespace", "\u00a0Sun, 06 Nov 1994 08:49:37 GMT"],
  ])("not an HTTP-date: %s", (_n, text) => {
    expect(parseHttpDate(text)).toBeUndefined();
  });

  const NOW = Date.UTC(2026, 10, 30, 12, 0, 0); // 30 Nov 2026
  test.each([
    ["29 February of a leap year", "Thu, 29 Feb 2024 00:00:00 GMT", 1709164800],
    ["a leap second is the next second", "Sat, 31 Dec 2016 23:59:60 GMT", 1483228800],
    ["year 0000 is not 2000", "Sat, 01 Jan 0000 00:00:00 GMT", -62167219200],
    ["asctime with a two-digit day", "Sun Nov 06 08:49:37 1994", 784111777],
    ["spaces and tabs around it", " \tSun, 06 Nov 1994 08:49:37 GMT\t ", 784111777],
    // §5.6.7: a two-digit year more than 50 years ahead is the most recent such year in the past.
    ["RFC 850 year 70 in 2026 is 2070, not 1970", "Wednesday, 01-Jan-70 00:00:00 GMT", 3155760000],
    ["RFC 850 year 76, within 50 years", "Wednesday, 01-Jan-76 00:00:00 GMT", 3345062400],
    ["RFC 850 year 76, past 50 years by a month", "Friday, 31-Dec-76 23:59:59 GMT", 220924799],
    ["RFC 850 year 99 is 1999", "Friday, 31-Dec-99 23:59:59 GMT", 946684799],
    ["RFC 850 year 26 is this year", "Monday, 30-Nov-26 00:00:00 GMT", 1795996800],
  ] as [string, string, number][])("%s", (_n, text, expected) => {
    expect(parseHttpDate(text, NOW)).toBe(expected);
  });

  test("formats IMF-fixdate", () => expect(formatHttpDate(784111777)).toBe("Sun, 06 Nov 1994 08:49:37 GMT"));
  test("lists skip malformed members", () => {
    expect(parseEntityTagList('"a", junk, W/"b"')).toEqual([
      { weak: false, opaque: "a" },
      { weak: true, opaque: "b" },
    ]);
  });
});
