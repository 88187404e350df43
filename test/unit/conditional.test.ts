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
  ];
  test.each(cases)("%s", (_name, headers, expected) => {
    expect(ifRangeAllows(h(headers), validators)).toBe(expected);
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
  test("formats IMF-fixdate", () => expect(formatHttpDate(784111777)).toBe("Sun, 06 Nov 1994 08:49:37 GMT"));
  test("lists skip malformed members", () => {
    expect(parseEntityTagList('"a", junk, W/"b"')).toEqual([
      { weak: false, opaque: "a" },
      { weak: true, opaque: "b" },
    ]);
  });
});
