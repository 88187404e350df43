import { describe, expect, test } from "bun:test";
import { MAX_COOKIE_VALUES, bearerToken, clientAddress, cookieValues, isHttps, isSameOrigin, ownOrigin, digestOf, matchesDigest } from "../../src/access/credentials.ts";
import { WindowLimiter } from "../../src/access/window-limiter.ts";
import { absoluteUrl, loggedPath, queryParam, requestPath, withToken } from "../../src/http/path.ts";
import { withoutSecrets } from "../../src/lib/log.ts";

describe("bearerToken", () => {
  const cases: [string | null, string | null][] = [
    [null, null],
    ["", null],
    ["Bearer abc", "abc"],
    ["bearer abc", "abc"],
    ["BEARER   spool_x-y.z~+/=", "spool_x-y.z~+/="],
    ["Bearer abc ", "abc"],
    ["Basic YWJjOmRlZg==", null],
    ["Bearer", null],
    ["Bearer ", null],
    ["Bearer a b", null],
    ["Bearerabc", null],
  ];
  test.each(cases)("%p → %p", (header, expected) => expect(bearerToken(header)).toBe(expected));
});

describe("matchesDigest", () => {
  test.each([
    ["same", "same", true],
    ["same", "Same", false],
    ["short", "shorter", false],
    ["", "", true],
    ["", "x", false],
  ] as const)("%p vs %p → %p", (a, b, expected) => expect(matchesDigest(a, digestOf(b))).toBe(expected));
});

describe("cookieValues", () => {
  const cases: [string | null, string[]][] = [
    [null, []],
    ["spool_session=abc", ["abc"]],
    ["a=1; spool_session=abc; b=2", ["abc"]],
    ["a=1;spool_session=abc", ["abc"]],
    ['spool_session="abc"', ["abc"]],
    ["xspool_session=abc", []],
    ["spool_session", []],
    ["spool_session=", [""]],
    // A cookie planted for a longer path comes first; both are looked at, each once.
    ["spool_session=tossed; a=1; spool_session=abc", ["tossed", "abc"]],
    ["spool_session=abc; spool_session=abc", ["abc"]],
  ];
  test.each(cases)("%p → %p", (header, expected) => expect(cookieValues(header, "spool_session")).toEqual(expected));

  test(`at most ${MAX_COOKIE_VALUES} values, however many are sent`, () => {
    const header = Array.from({ length: 500 }, (_, i) => `spool_session=v${i}`).join("; ");
    expect(cookieValues(header, "spool_session")).toEqual(Array.from({ length: MAX_COOKIE_VALUES }, (_, i) => `v${i}`));
  });
});

describe("ownOrigin and isSameOrigin (CSRF)", () => {
  const h = (o: Record<string, string>) => new Headers(o);
  test.each([
    ["http://127.0.0.1:3000/api/videos", { host: "127.0.0.1:3000" }, false, "http://127.0.0.1:3000"],
    ["http://internal:3000/api/videos", { host: "internal:3000", "x-forwarded-proto": "https", "x-forwarded-host": "videos.example.com" }, true, "https://videos.example.com"],
    // Without a trusted proxy, any client could name the origin it is checked against.
    ["http://internal:3000/api/videos", { host: "internal:3000", "x-forwarded-proto": "https", "x-forwarded-host": "evil.example" }, false, "https://internal:3000"],
    ["http://spool.example/api/videos", { host: "spool.example", "x-forwarded-proto": "https" }, false, "https://spool.example"],
    ["http://Spool.Example/x", { host: "Spool.Example" }, false, "http://spool.example"],
    // What Bun 1.4.5 makes of a request without a usable Host: the path alone, or a URL no parser takes.
    ["/api/session", {}, false, "http://"],
    ["/api/session", { host: "x#" }, false, "http://x#"],
    ["http://x:abc/api/session", { host: "x:abc" }, false, "http://x:abc"],
  ] as const)("%s %j trustProxy=%p", (url, headers, trustProxy, expected) => expect(ownOrigin(url, h(headers), trustProxy)).toBe(expected));

  const own = "http://spool.example";
  test.each([
    ["matching Origin", { origin: "http://spool.example" }, true],
    ["another site's Origin", { origin: "https://evil.example" }, false],
    ["another port", { origin: "http://spool.example:8080" }, false],
    ["the opaque null Origin", { origin: "null" }, false],
    ["no Origin, Sec-Fetch-Site same-origin", { "sec-fetch-site": "same-origin" }, true],
    ["no Origin, Sec-Fetch-Site cross-site", { "sec-fetch-site": "cross-site" }, false],
    ["no Origin, Sec-Fetch-Site same-site is not enough", { "sec-fetch-site": "same-site" }, false],
    ["no Origin, our Referer", { referer: "http://spool.example/watch/x" }, true],
    ["no Origin, foreign Referer", { referer: "https://evil.example/" }, false],
    ["no Origin, malformed Referer", { referer: "::" }, false],
    ["nothing at all", {}, false],
  ] as const)("%s → %p", (_name, headers, expected) => expect(isSameOrigin(own, h(headers))).toBe(expected));
});

describe("isHttps and clientAddress", () => {
  test.each([
    ["http://a/", {}, false],
    ["https://a/", {}, true],
    ["http://a/", { "x-forwarded-proto": "https" }, true],
    ["http://a/", { "x-forwarded-proto": "https, http" }, true],
    ["https://a/", { "x-forwarded-proto": "http" }, false],
    ["http://a/", { "x-forwarded-proto": "gopher" }, false],
  ] as const)("%s %p → %p", (url, headers, expected) => expect(isHttps(url, new Headers(headers))).toBe(expected));

  test.each([
    ["10.0.0.9", {}, false, "10.0.0.9"],
    ["10.0.0.9", { "x-forwarded-for": "1.2.3.4" }, false, "10.0.0.9"],
    ["10.0.0.9", { "x-forwarded-for": "6.6.6.6, 1.2.3.4" }, true, "1.2.3.4"],
    ["10.0.0.9", { "x-forwarded-for": "" }, true, "10.0.0.9"],
    [undefined, {}, false, "unknown"],
  ] as const)("peer %p, %p, trust %p → %p", (peer, headers, trust, expected) => expect(clientAddress(peer, new Headers(headers), trust)).toBe(expected));
});

describe("queryParam and withToken", () => {
  test.each([
    ["http://a/x", "token", null],
    ["http://a/x?token=abc", "token", "abc"],
    ["http://a/x?download=1&token=abc", "token", "abc"],
    ["http://a/x?xtoken=abc", "token", null],
    ["http://a/x?token", "token", ""],
    ["http://a/x?token=a.b.c#frag", "token", "a.b.c"],
    ["http://a/x?token=first&token=second", "token", "first"],
  ] as const)("%s %s → %p", (url, name, expected) => expect(queryParam(url, name)).toBe(expected));

  test.each([
    ["seg_00001.m4s", "seg_00001.m4s?token=T"],
    ["720p/index.m3u8", "720p/index.m3u8?token=T"],
    ["a.jpg#xywh=0,0,160,90", "a.jpg?token=T#xywh=0,0,160,90"],
    ["x.m3u8?v=2", "x.m3u8?v=2&token=T"],
  ] as const)("withToken(%p)", (uri, expected) => expect(withToken(uri, "T")).toBe(expected));
});

describe("WindowLimiter", () => {
  test("blocks after max events within the window, for the rest of it, per client", () => {
    let now = 1_000_000;
    const limiter = new WindowLimiter({ max: 3, windowMs: 10_000, maxClients: 100 }, () => now);
    for (let i = 0; i < 2; i++) limiter.record("a");
    expect(limiter.blockedFor("a")).toBe(0);
    limiter.record("a");
    expect(limiter.blockedFor("a")).toBe(10);
    expect(limiter.blockedFor("b")).toBe(0);
    now += 9_001;
    expect(limiter.blockedFor("a")).toBe(1);
    now += 999;
    expect(limiter.blockedFor("a")).toBe(0);
    limiter.record("a");
    expect(limiter.blockedFor("a")).toBe(0);
  });

  test("holds at most maxClients entries, dropping expired ones first, then the oldest", () => {
    let now = 0;
    const limiter = new WindowLimiter({ max: 1, windowMs: 100, maxClients: 3 }, () => now);
    limiter.record("old");
    now = 200;
    for (const c of ["a", "b", "c"]) limiter.record(c);
    expect(["a", "b", "c"].map((c) => limiter.blockedFor(c))).toEqual([1, 1, 1]);
    limiter.record("d");
    // "a" was the oldest live window: it went to make room.
    expect(["a", "b", "c", "d"].map((c) => limiter.blockedFor(c))).toEqual([0, 1, 1, 1]);
  });
});

describe("queryParam against URLSearchParams", () => {
  const urls = [
    "http://a/x?token=abc",
    "http://a/x?a=1&token=abc&b=2",
    "http://a/x?mytoken=1&token=2",
    "http://a/x?token=1&token=2",
    "http://a/x?tokens=1",
    "http://a/x?a=token=3",
    "http://a/x?token",
    "http://a/x?token&b",
    "http://a/x?token=",
    "http://a/x?token=a#token=b",
    "http://a/x?a#token=b",
    "http://a/x?download=1&token=eyJ.eyJ.sig",
    "http://a/x",
    "http://a/x?",
    "http://a/x?&&token=z&",
  ];
  test.each(urls)("%s", (url) => {
    const u = new URL(url);
    // URLSearchParams decodes; every value here is plain, so the raw value must equal it.
    expect(queryParam(url, "token")).toBe(u.searchParams.get("token"));
  });
});

describe("requestPath", () => {
  test.each([
    ["http://127.0.0.1:3000/static/a.txt?x=1", "/static/a.txt"],
    ["http://web/static/a.txt", "/static/a.txt"],
    ["http://x/", "/"],
    ["http://x", "/"],
    ["https://a.example:8443/api/videos//demo", "/api/videos//demo"],
    // Bun 1.4.5: a request without a Host (HTTP/1.0) has the path alone as its URL.
    ["/static/a.txt", "/static/a.txt"],
    ["/static//b?q=//", "/static//b"],
  ] as const)("%s → %s", (url, expected) => expect(requestPath(url)).toBe(expected));
});

describe("absoluteUrl: a URL object can always be made of a request's URL", () => {
  test.each([
    ["http://x/api/uploads/a?b=1", "http://x/api/uploads/a?b=1"],
    ["/api/uploads/a?b=1", "http://localhost/api/uploads/a?b=1"],
    ["http://x:abc/api/uploads/a", "http://localhost/api/uploads/a"],
    ["http://x:abc", "http://localhost/"],
  ] as const)("%s → %s", (url, expected) => {
    expect(absoluteUrl(url)).toBe(expected);
    expect(URL.canParse(absoluteUrl(url))).toBe(true);
  });
});

describe("withoutSecrets: an error's text never carries an upload URL's secret or a playback token", () => {
  const secret = "Zm9vYmFyYmF6cXV4cXV1eHh5ejEyMzQ1";
  test.each([
    [`Failed to construct 'Request': Invalid URL "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}"`, `Failed to construct 'Request': Invalid URL "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"`],
    [`GET http://x/API/Uploads/direct/${secret}?a failed`, "GET http://x/API/Uploads/direct/<secret> failed"],
    ["no URL here", "no URL here"],
    ["/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA", "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA"],
    // A playback token quoted in an error's URL.
    [`fetch http://x/api/stream/abc?token=${secret}&start=1 failed`, "fetch http://x/api/stream/abc?token=<token>&start=1 failed"],
    [`"/api/hls/abc/master.m3u8?a=1&TOKEN=${secret}"`, `"/api/hls/abc/master.m3u8?a=1&TOKEN=<token>"`],
    ["?notatoken=1", "?notatoken=1"],
  ] as const)("%s", (text, expected) => {
    expect(withoutSecrets(text)).toBe(expected);
    expect(withoutSecrets(text)).not.toContain(secret);
  });
});

describe("loggedPath: upload URLs are capabilities, their secrets never reach a log", () => {
  const secret = "Zm9vYmFyYmF6cXV4cXV1eHh5ejEyMzQ1";
  test.each([
    // tus: the video id stays, the secret goes.
    [`http://x/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}?x=1`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA%2E${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}/more`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    // A direct upload URL is all secret.
    [`http://x/api/uploads/direct/${secret}`, "/api/uploads/direct/<secret>"],
    [`/api/uploads/direct/${secret}`, "/api/uploads/direct/<secret>"],
    // Nothing secret: as is.
    ["http://x/api/uploads", "/api/uploads"],
    ["http://x/api/uploads/", "/api/uploads/"],
    ["http://x/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA", "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA"],
    ["http://x/api/videos/demo.json", "/api/videos/demo.json"],
    ["http://x/api/stream/demo.mp4?token=abc", "/api/stream/demo.mp4"],
    ["http://x/static//b%20c.txt", "/static//b%20c.txt"],
  ] as const)("%s → %s", (url, expected) => {
    expect(loggedPath(url)).toBe(expected);
    expect(loggedPath(url)).not.toContain(secret);
  });

  // The audit: a client base URL with a trailing slash sent HEAD //api/uploads/<id>.<secret>,
  // logged whole. The secret is the client's whether or not a router takes the spelling.
  test.each([
    [`http://x//api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`//api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x///api//uploads///q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/%61pi/%75ploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/api%2Fuploads%2Fq7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/api%252Fuploads%252Fq7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/API/Uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/API/Uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/spool/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.${secret}`, "/spool/api/uploads/q7cN0l1dQ5m0tS9xYk3eZA.<secret>"],
    [`http://x/api/uploads//direct/${secret}`, "/api/uploads/direct/<secret>"],
    [`http://x//api/uploads/direct%2F${secret}`, "/api/uploads/direct/<secret>"],
    [`http://x/api/uploads/%64irect/${secret}`, "/api/uploads/direct/<secret>"],
  ] as const)("another spelling of an upload URL: %s → %s", (url, expected) => {
    expect(loggedPath(url)).toBe(expected);
    expect(loggedPath(url)).not.toContain(secret);
  });
});
