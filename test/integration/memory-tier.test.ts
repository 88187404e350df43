/**
 * The RAM tier must never change a byte or a header: two real Spools over real HTTP, one with
 * MEMORY_CACHE_BYTES on (and warmed until it answers from memory) and one with it off, answer
 * random single ranges, multipart requests, clips and whole-file GETs identically, and exactly
 * the file's bytes. For local videos and /static files the tier answers the ranges from offset
 * 0 (the rest go out on kept descriptors, test/unit/open-files.test.ts); clips and multipart
 * parts use every block it holds.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { eq } from "drizzle-orm";
import fc from "fast-check";
import { hot } from "../../src/metrics/metrics.ts";
import { comparableHeaders, parseMultipart } from "../helpers/http.ts";
import { PROPERTY_SEED } from "../helpers/property.ts";
import { AUTH, startTestSpool, type TestSpool } from "../helpers/spool.ts";

const bytes = readFileSync(resolve(import.meta.dir, "../../fixtures/demo.mp4"));
const SIZE = bytes.length;

let on: TestSpool;
let off: TestSpool;

beforeAll(async () => {
  [on, off] = await Promise.all([startTestSpool({ memoryCacheBytes: 64 * 1024 * 1024 }), startTestSpool({ memoryCacheBytes: 0 })]);
  // Each server seeded its own demo; Last-Modified is the row's creation time, which may fall in
  // different seconds on the two: give both the same, so every header can be compared.
  const { videos } = off.ctx.db.tables;
  const [seeded] = await on.ctx.db.db.select({ createdAt: videos.createdAt }).from(on.ctx.db.tables.videos).where(eq(on.ctx.db.tables.videos.id, "demo"));
  await off.ctx.db.db.update(videos).set({ createdAt: seeded!.createdAt }).where(eq(videos.id, "demo"));
  off.ctx.library.events.emit("invalidated", "demo");
  // Warm: every 64 KiB block asked for twice, so the whole (280 KB) demo is held.
  for (let pass = 0; pass < 3; pass++) {
    for (let at = 0; at < SIZE; at += 65536) await fetch(`${on.url}/api/stream/demo`, { headers: { range: `bytes=${at}-${at + 9}` } }).then((r) => r.arrayBuffer());
    await on.ctx.catalog.memory!.settled();
  }
});
afterAll(() => Promise.all([on?.stop(), off?.stop()]));

async function both(path: string, headers: Record<string, string>, method = "GET") {
  const ask = (s: TestSpool) => fetch(`${s.url}${path}`, { headers, method }).then(async (r) => ({ r, body: Buffer.from(await r.arrayBuffer()) }));
  return Promise.all([ask(on), ask(off)]);
}

/**
 * Same status, same headers (multipart boundaries aside), same body or same parts.
 *
 * `streamed`: an answer that is a stream body on both servers (a clip range over its header and
 * media). Bun 1.4.5 frames such a body with a Content-Length when the stream has ended by the
 * time the headers go out, else chunked: timing (both servers share this process), not the
 * tier, so there only the framing may differ; a Content-Length must be the body's length.
 */
function expectSame(a: { r: Response; body: Buffer }, b: { r: Response; body: Buffer }, streamed = false) {
  expect(a.r.status).toBe(b.r.status);
  if (streamed) {
    for (const x of [a, b]) if (x.r.headers.has("content-length")) expect(Number(x.r.headers.get("content-length"))).toBe(x.body.length);
    const drop = ["date", "x-request-id", "content-length", "transfer-encoding"];
    expect(comparableHeaders(a.r, drop)).toEqual(comparableHeaders(b.r, drop));
    expect(a.body.equals(b.body)).toBe(true);
    return;
  }
  const type = a.r.headers.get("content-type") ?? "";
  const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(type);
  if (boundary) {
    const other = /^multipart\/byteranges; boundary=(\S+)$/.exec(b.r.headers.get("content-type") ?? "")!;
    expect(comparableHeaders(a.r, ["date", "x-request-id", "content-type"])).toEqual(comparableHeaders(b.r, ["date", "x-request-id", "content-type"]));
    expect(parseMultipart(a.body, boundary[1]!)).toEqual(parseMultipart(b.body, other[1]!));
  } else {
    expect(comparableHeaders(a.r)).toEqual(comparableHeaders(b.r));
    expect(a.body.equals(b.body)).toBe(true);
  }
}

test("the tier is warm: a probe is answered from memory", async () => {
  const hits = hot.memoryHits;
  const [a, b] = await both("/api/stream/demo", { range: "bytes=0-1" });
  expectSame(a, b);
  expect(a.body.equals(bytes.subarray(0, 2))).toBe(true);
  expect(hot.memoryHits).toBeGreaterThan(hits);
  // Every block, each with up to 64 KiB of the next one (overlap).
  expect(on.ctx.catalog.memory!.bytes).toBeGreaterThanOrEqual(SIZE);
});

test("the probe's answer, kept whole after the first from memory, is the same answer every time; If-Range, HEAD and 304 still decide", async () => {
  const etag = (await fetch(`${off.url}/api/stream/demo`, { method: "HEAD" })).headers.get("etag")!;
  await both("/api/stream/demo", { range: "bytes=0-1" }); // (made from the tier's answer, asynchronously)
  const deadline = Date.now() + 2000;
  while (!on.ctx.catalog.peek("demo")?.inline.probe && Date.now() < deadline) await Bun.sleep(10);
  expect(on.ctx.catalog.peek("demo")?.inline.probe).toBeTruthy();
  for (let i = 0; i < 3; i++) {
    const hits = hot.memoryHits;
    const [a, b] = await both("/api/stream/demo", { range: "bytes=0-1" });
    expectSame(a, b);
    expect(a.r.status).toBe(206);
    expect(a.r.headers.get("content-range")).toBe(`bytes 0-1/${SIZE}`);
    expect(a.body.equals(bytes.subarray(0, 2))).toBe(true);
    expect(hot.memoryHits).toBe(hits + 1); // still a hit on the tier's first block
  }
  const cases: [Record<string, string>, string, number][] = [
    [{ range: "bytes=0-1", "if-range": '"other"' }, "GET", 200],
    [{ range: "bytes=0-1", "if-range": etag }, "GET", 206],
    [{ range: "bytes=0-1", "if-none-match": etag }, "GET", 304],
    [{ range: "bytes=0-1", "if-match": '"other"' }, "GET", 412],
    [{ range: "bytes=0-1" }, "HEAD", 206],
    [{ range: "bytes=0-2" }, "GET", 206],
  ];
  for (const [headers, method, status] of cases) {
    const [a, b] = await both("/api/stream/demo", headers, method);
    expectSame(a, b);
    expect(a.r.status).toBe(status);
  }
});

test("property: random single ranges (every form) are identical with the tier on and off, and exact", async () => {
  const form = fc.oneof(
    fc.tuple(fc.nat(SIZE - 1), fc.integer({ min: 1, max: 300_000 })).map(([s, n]) => ({ header: `bytes=${s}-${s + n - 1}`, start: s, end: Math.min(SIZE - 1, s + n - 1) })),
    fc.integer({ min: 1, max: SIZE + 10 }).map((n) => ({ header: `bytes=-${n}`, start: Math.max(0, SIZE - n), end: SIZE - 1 })),
    fc.nat(SIZE - 1).map((s) => ({ header: `bytes= ${s}-`, start: s, end: SIZE - 1 })),
    // From offset 0: what the tier answers on the stream route (a player's first request).
    fc.integer({ min: 1, max: 300_000 }).map((n) => ({ header: `bytes=0-${n - 1}`, start: 0, end: Math.min(SIZE - 1, n - 1) })),
  );
  const cases = fc.sample(form, { numRuns: 120, seed: 15 });
  for (const c of cases) {
    const [a, b] = await both("/api/stream/demo", { range: c.header });
    expectSame(a, b);
    expect(a.r.status).toBe(206);
    expect(a.body.equals(bytes.subarray(c.start, c.end + 1))).toBe(true);
    expect(a.r.headers.get("content-range")).toBe(`bytes ${c.start}-${c.end}/${SIZE}`);
  }
});

test("multipart/byteranges, If-Range, HEAD, download and whole-file answers are identical", async () => {
  const etag = (await fetch(`${off.url}/api/stream/demo`, { method: "HEAD" })).headers.get("etag")!;
  const requests: [string, Record<string, string>, string?][] = [
    ["/api/stream/demo", { range: "bytes=0-99,1000-1099,200000-200100" }],
    ["/api/stream/demo", { range: "bytes=0-1" }, "HEAD"],
    ["/api/stream/demo", { range: "bytes=5-70000", "if-range": etag }],
    ["/api/stream/demo", { range: "bytes=5-70000", "if-range": '"other"' }],
    ["/api/stream/demo?download=1", { range: "bytes=100-200" }],
    ["/api/stream/demo", {}],
    ["/api/stream/demo", { "if-none-match": etag }],
  ];
  for (const [path, headers, method] of requests) {
    const [a, b] = await both(path, headers, method);
    expectSame(a, b);
  }
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.nat(SIZE - 1), fc.integer({ min: 1, max: 70_000 })), { minLength: 2, maxLength: 5 }), async (spans) => {
      const header = `bytes=${spans.map(([s, n]) => `${s}-${s + n - 1}`).join(",")}`;
      const [a, b] = await both("/api/stream/demo", { range: header });
      expectSame(a, b);
    }),
    { seed: PROPERTY_SEED, numRuns: 30 },
  );
});

test("clips: ranges inside the media part and the whole clip are identical", async () => {
  const clip = "/api/stream/demo?start=1&end=3";
  const length = (await fetch(`${off.url}${clip}`, { method: "HEAD" })).headers.get("content-length")!;
  const n = Number(length);
  for (let pass = 0; pass < 2; pass++) {
    for (const range of [`bytes=${n - 5000}-${n - 1}`, "bytes=0-99", `bytes=100-${n - 1}`, "bytes=10-20,3000-4000"]) {
      const [a, b] = await both(clip, { range });
      // Over the clip's header and media: a stream on both servers (see expectSame).
      expectSame(a, b, range === `bytes=100-${n - 1}`);
    }
    await on.ctx.catalog.memory!.settled();
  }
  const [a, b] = await both(clip, {});
  expectSame(a, b, true);
});

test("/static files: small whole files and ranges are identical with the tier on and off, and exact", async () => {
  const small = Buffer.from(Array.from({ length: 100_000 }, (_, i) => (i * 7919) % 251));
  await Promise.all([Bun.write(`${on.staticDir}/small.bin`, small), Bun.write(`${off.staticDir}/small.bin`, small)]);
  // The tiers' tags differ (mtime), so compare each with the file, and the headers but the tag.
  const drop = ["date", "x-request-id", "etag", "last-modified"];
  for (let pass = 0; pass < 3; pass++) {
    for (const range of [undefined, "bytes=0-1", "bytes=5000-70000", "bytes=-10", "bytes=1-2,99990-99999"]) {
      const headers: Record<string, string> = range ? { range } : {};
      const [a, b] = await both("/static/small.bin", headers);
      expect(a.r.status).toBe(b.r.status);
      if (range?.includes(",")) continue; // multipart: boundaries differ; parts are covered above
      expect(comparableHeaders(a.r, drop)).toEqual(comparableHeaders(b.r, drop));
      expect(a.body.equals(b.body)).toBe(true);
      if (!range) expect(a.body.equals(small)).toBe(true);
    }
    await on.ctx.catalog.memory!.settled();
  }
});

test("/static: a file replaced on disk gets its new bytes on a probe, not the kept answer of the old one", async () => {
  const path = `${on.staticDir}/replaced.bin`;
  await Bun.write(path, "ab-old");
  const probe = () => fetch(`${on.url}/static/replaced.bin`, { headers: { range: "bytes=0-1" } }).then(async (r) => [r.status, await r.text(), r.headers.get("content-range")]);
  for (let i = 0; i < 4; i++) {
    expect(await probe()).toEqual([206, "ab", "bytes 0-1/6"]);
    await on.ctx.catalog.memory!.settled();
    await Bun.sleep(20);
  }
  await Bun.sleep(1100); // a new mtime second, and past the static cache window (cacheTtlMs 1000)
  await Bun.write(path, "xy-new!");
  await Bun.sleep(1100);
  expect(await probe()).toEqual([206, "xy", "bytes 0-1/7"]);
});

test("/metrics: the tier's hits, misses, bytes held, evictions and collections", async () => {
  await fetch(`${on.url}/api/stream/demo`, { headers: { range: "bytes=0-1" } }).then((r) => r.arrayBuffer());
  const text = await (await fetch(`${on.url}/metrics`, { headers: AUTH })).text();
  expect(text).toMatch(/^spool_cache_lookups_total\{cache="memory_tier",result="hit"\} [1-9]\d*$/m);
  expect(text).toMatch(/^spool_cache_lookups_total\{cache="memory_tier",result="miss"\} \d+$/m);
  expect(text).toMatch(/^spool_memory_tier_bytes [1-9]\d*$/m);
  expect(text).toMatch(/^spool_memory_tier_evictions_total \d+$/m);
  expect(text).toMatch(/^spool_memory_tier_collections_total \d+$/m);
});
