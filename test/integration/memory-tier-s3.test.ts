/**
 * The RAM tier in front of the bucket (STORAGE=s3, S3_DELIVERY=proxy): RAM, then the disk block
 * cache, then the bucket, on a real s3rver. Two Spools on one database and one bucket, each with
 * its own disk cache, one with MEMORY_CACHE_BYTES on (warmed until it answers from memory) and
 * one with it off, answer identically (status, headers, bytes); a warm small range is answered
 * from memory without a disk-cache lookup or a bucket GET (the /metrics counters), and still
 * when the bucket is down; a fill never costs a bucket GET of its own; a replaced or deleted
 * video is never answered from its old blocks; a small tier stays within its bound.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { startWorker, stopWorker } from "../../src/app.ts";
import { hot } from "../../src/metrics/metrics.ts";
import { comparableHeaders, parseMultipart } from "../helpers/http.ts";
import type { S3rver } from "../helpers/s3.ts";
import { AUTH, startTestSpool, testBucketStorage, testS3, type TestSpool } from "../helpers/spool.ts";

const MiB = 1024 * 1024;
const DISK_BLOCK = 2 * MiB;
const TIER_BLOCK = 256 * 1024;
const demo = readFileSync(resolve(import.meta.dir, "../../fixtures/demo.mp4"));

/** Not an MP4 (no clips of it): three disk blocks, the last one short, eighteen RAM blocks. */
function pattern(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}
const BIG = pattern(4 * MiB + 500_000 + 17, 3);

let s3: S3rver;
let on: TestSpool;
let off: TestSpool;
let bigId: string;
const extra: TestSpool[] = [];

/** A ready video of `bytes` (any bytes: the stream route serves what the row names). */
async function register(spool: TestSpool, bytes: Uint8Array, title = "bytes"): Promise<string> {
  const library = spool.ctx.library;
  const row = await library.begin({ originalFilename: `${title}.mp4`, title });
  await replace(spool, row.id, bytes);
  return row.id;
}

/** Puts `bytes` under the video (processing, then ready with their hash): a new ETag, the same key. */
async function replace(spool: TestSpool, id: string, bytes: Uint8Array): Promise<void> {
  const library = spool.ctx.library;
  const media = { contentType: "video/mp4", container: "mp4", duration: 10, width: 640, height: 360, videoCodec: "h264", audioCodec: null, bitrate: 1 };
  const local = library.storage.sourcePath(id, "mp4");
  await Bun.write(local, bytes);
  await library.markProcessing(id, media);
  const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
  const row = await library.markReady(id, { storagePath: library.storage.relative(local), size: bytes.length, sha256 });
  expect(row?.status).toBe("ready");
}

const get = (s: TestSpool, path: string, headers: Record<string, string> = {}, method = "GET") =>
  fetch(`${s.url}${path}`, { headers, method }).then(async (r) => ({ r, body: Buffer.from(await r.arrayBuffer()) }));

/**
 * Same status, same headers (multipart boundaries aside), same body or same parts.
 *
 * `streamed`: an answer Spool gives as a stream body on either server (multipart, clips, a range
 * over several disk blocks, a 200 that ignores a Range). Bun 1.4.5 frames such a body with a
 * Content-Length when the stream has ended by the time the headers go out, else chunked: a
 * matter of timing (a cold disk cache, load), tier or not, so only there the framing may differ
 * (a Content-Length must still be the body's length). Everything the tier answers itself is a
 * Blob or a block-file slice on the other server: always a Content-Length, compared strictly.
 */
function expectSame(a: { r: Response; body: Buffer }, b: { r: Response; body: Buffer }, streamed = false) {
  expect(a.r.status).toBe(b.r.status);
  const drop = ["date", "x-request-id", ...(streamed ? ["content-length", "transfer-encoding"] : [])];
  if (streamed) {
    for (const x of [a, b]) if (x.r.headers.has("content-length")) expect(Number(x.r.headers.get("content-length"))).toBe(x.body.length);
  }
  const boundary = /^multipart\/byteranges; boundary=(\S+)$/.exec(a.r.headers.get("content-type") ?? "");
  if (boundary) {
    const other = /^multipart\/byteranges; boundary=(\S+)$/.exec(b.r.headers.get("content-type") ?? "")!;
    expect(comparableHeaders(a.r, [...drop, "content-type"])).toEqual(comparableHeaders(b.r, [...drop, "content-type"]));
    expect(parseMultipart(a.body, boundary[1]!)).toEqual(parseMultipart(b.body, other[1]!));
  } else {
    expect(comparableHeaders(a.r, drop)).toEqual(comparableHeaders(b.r, drop));
    expect(a.body.equals(b.body)).toBe(true);
  }
}

/**
 * Asks a small range at every RAM block of a video until the tier holds them all (a block asked
 * for twice is filled, at most 4 fills at once, so a pass may leave some for the next).
 */
async function warm(s: TestSpool, id: string, size: number): Promise<void> {
  const tier = s.ctx.catalog.memory!;
  let held = -1;
  for (let pass = 0; pass < 10 && (pass < 3 || tier.bytes !== held); pass++) {
    held = tier.bytes;
    for (let at = 0; at < size; at += TIER_BLOCK) await get(s, `/api/stream/${id}`, { range: `bytes=${at}-${Math.min(size - 1, at + 9)}` });
    await tier.settled();
  }
}

const diskLookups = () => hot.diskHits + hot.diskMisses;

beforeAll(async () => {
  s3 = await testS3();
  const dataDir = join(await mkdtemp(join(tmpdir(), "spool-tier-s3-")), "data");
  on = await startTestSpool({ dataDir, storage: await testBucketStorage(dataDir), memoryCacheBytes: 64 * MiB });
  // No worker from here on: it would take the rows `register` leaves `processing` for a moment.
  await stopWorker(on.ctx);
  const offDir = join(await mkdtemp(join(tmpdir(), "spool-tier-s3-off-")), "data");
  off = await startTestSpool({
    dataDir: offDir,
    databaseUrl: on.config.databaseUrl,
    storage: { ...on.config.storage!, cacheDir: join(offDir, "cache") },
    seedDemo: false,
    transcode: { inServer: false },
    memoryCacheBytes: 0,
  });
  bigId = await register(on, BIG, "big");
  await warm(on, bigId, BIG.length);
  await warm(on, "demo", demo.length);
}, 60_000);

afterAll(async () => {
  for (const s of extra) await s.stop().catch(() => {});
  await off?.stop();
  if (on) await startWorker(on.ctx).catch(() => {});
  await on?.stop();
});

describe("answers with the tier on and off are identical", () => {
  test("the tier is warm: it holds every block of both videos", () => {
    expect(on.ctx.catalog.memory!.bytes).toBeGreaterThanOrEqual(BIG.length + demo.length);
  });

  test("property: random small and large single ranges (every form), across RAM and disk block boundaries", async () => {
    const size = BIG.length;
    const near = fc.constantFrom(TIER_BLOCK, 7 * TIER_BLOCK, DISK_BLOCK, 2 * DISK_BLOCK, size - 1).chain((b) => fc.integer({ min: Math.max(0, b - 70_000), max: Math.min(size - 1, b + 1000) }));
    const start = fc.oneof(fc.nat(size - 1), near);
    const form = fc.oneof(
      fc.tuple(start, fc.integer({ min: 1, max: 300_000 })).map(([s, n]) => ({ header: `bytes=${s}-${s + n - 1}`, start: s, end: Math.min(size - 1, s + n - 1) })),
      fc.tuple(start, fc.integer({ min: 1, max: 70_000 })).map(([s, n]) => ({ header: `bytes=${s}-${s + n - 1}`, start: s, end: Math.min(size - 1, s + n - 1) })),
      fc.integer({ min: 1, max: 300_000 }).map((n) => ({ header: `bytes=-${n}`, start: size - n, end: size - 1 })),
      start.map((s) => ({ header: `bytes= ${s}-`, start: s, end: size - 1 })),
    );
    const hits = hot.memoryHits;
    for (const c of fc.sample(form, { numRuns: 150, seed: 15 })) {
      const [a, b] = await Promise.all([get(on, `/api/stream/${bigId}`, { range: c.header }), get(off, `/api/stream/${bigId}`, { range: c.header })]);
      expectSame(a, b, Math.floor(c.start / DISK_BLOCK) !== Math.floor(c.end / DISK_BLOCK));
      expect(a.r.status).toBe(206);
      expect(a.r.headers.get("content-range")).toBe(`bytes ${c.start}-${c.end}/${size}`);
      expect(a.body.equals(Buffer.from(BIG.subarray(c.start, c.end + 1)))).toBe(true);
    }
    // Some of them came from memory (the rest: too large, or across a disk block).
    expect(hot.memoryHits).toBeGreaterThan(hits + 20);
  }, 60_000);

  test("the demo: the stream conformance requests, multipart, If-Range, HEAD, 304, 412, 416, download, whole file", async () => {
    const etag = (await fetch(`${off.url}/api/stream/demo`, { method: "HEAD" })).headers.get("etag")!;
    // [path, headers, method, streamed (see expectSame)]
    const requests: [string, Record<string, string>, string?, boolean?][] = [
      ["/api/stream/demo", {}],
      ["/api/stream/demo", { range: "bytes=0-1" }],
      ["/api/stream/demo", { range: "bytes=0-" }],
      ["/api/stream/demo", { range: "bytes=100-199" }],
      ["/api/stream/demo", { range: "Bytes=100-199" }],
      ["/api/stream/demo", { range: "bytes=-500" }],
      ["/api/stream/demo", { range: `bytes=${demo.length - 10}-${demo.length * 10}` }],
      ["/api/stream/demo", { range: "bytes=0-0,1-1" }],
      ["/api/stream/demo", { range: "bytes=0-99,1000-1099,200000-200100" }, "GET", true],
      ["/api/stream/demo", { range: "bytes=0-1" }, "HEAD"],
      ["/api/stream/demo", {}, "HEAD"],
      ["/api/stream/demo", { range: "bytes=5-70000", "if-range": etag }],
      ["/api/stream/demo", { range: "bytes=5-70000", "if-range": '"other"' }, "GET", true],
      ["/api/stream/demo", { "if-none-match": etag }],
      ["/api/stream/demo", { "if-match": '"other"' }],
      ["/api/stream/demo", { range: `bytes=${demo.length}-` }],
      ["/api/stream/demo", { range: "items=0-5" }, "GET", true],
      ["/api/stream/demo?download=1", { range: "bytes=100-200" }],
      ["/api/stream/demo?download=1", {}],
    ];
    for (const [path, headers, method, streamed] of requests) {
      const [a, b] = await Promise.all([get(on, path, headers, method), get(off, path, headers, method)]);
      expectSame(a, b, streamed);
      if (a.r.status === 206 && !a.r.headers.get("content-type")!.startsWith("multipart/") && method !== "HEAD") {
        const [, s, e] = /^bytes (\d+)-(\d+)\//.exec(a.r.headers.get("content-range")!)!;
        expect(a.body.equals(demo.subarray(Number(s), Number(e) + 1))).toBe(true);
      }
    }
  });

  test("property: multipart/byteranges over the big video (parts in and across blocks) are identical and exact", async () => {
    const size = BIG.length;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.oneof(fc.nat(size - 1), fc.integer({ min: DISK_BLOCK - 80_000, max: DISK_BLOCK + 10 })), fc.integer({ min: 1, max: 90_000 })), { minLength: 2, maxLength: 4 }), async (spans) => {
        const header = `bytes=${spans.map(([s, n]) => `${s}-${s + n - 1}`).join(",")}`;
        const [a, b] = await Promise.all([get(on, `/api/stream/${bigId}`, { range: header }), get(off, `/api/stream/${bigId}`, { range: header })]);
        expectSame(a, b, true);
        const type = a.r.headers.get("content-type")!;
        if (type.startsWith("multipart/")) {
          for (const part of parseMultipart(a.body, type.split("boundary=")[1]!)) {
            const [, s, e] = /^bytes (\d+)-(\d+)\//.exec(part.headers["content-range"]!)!;
            expect(part.body.equals(Buffer.from(BIG.subarray(Number(s), Number(e) + 1)))).toBe(true);
          }
        }
      }),
      { seed: 15, numRuns: 40 },
    );
  }, 60_000);

  test("clips of the demo: ranges inside the media, across header and media, multipart, whole", async () => {
    const clip = "/api/stream/demo?start=1&end=3";
    const n = Number((await fetch(`${off.url}${clip}`, { method: "HEAD" })).headers.get("content-length"));
    for (let pass = 0; pass < 2; pass++) {
      for (const range of [`bytes=${n - 5000}-${n - 1}`, "bytes=0-99", `bytes=100-${n - 1}`, "bytes=10-20,3000-4000", `bytes=${n - 70_000}-${n - 60_000}`]) {
        const [a, b] = await Promise.all([get(on, clip, { range }), get(off, clip, { range })]);
        expectSame(a, b, true);
      }
      await on.ctx.catalog.memory!.settled();
    }
    const [a, b] = await Promise.all([get(on, clip), get(off, clip)]);
    expectSame(a, b, true);
  });
});

describe("layering: RAM, then disk, then the bucket", () => {
  test("a warm small range is answered from memory: memory_tier hits grow, disk lookups and bucket GETs do not", async () => {
    const metrics = async () => (await fetch(`${on.url}/metrics`, { headers: AUTH })).text();
    const value = (text: string, pattern: RegExp) => Number(pattern.exec(text)?.[1]);
    const memoryHit = /^spool_cache_lookups_total\{cache="memory_tier",result="hit"\} (\d+)$/m;
    const diskHit = /^spool_cache_lookups_total\{cache="disk_blocks",result="hit"\} (\d+)$/m;
    const diskMiss = /^spool_cache_lookups_total\{cache="disk_blocks",result="miss"\} (\d+)$/m;
    const bucket = /^spool_bucket_block_reads_total (\d+)$/m;
    const before = await metrics();
    const ranges = ["bytes=0-1", "bytes=0-65535", `bytes=${3 * TIER_BLOCK + 5}-${3 * TIER_BLOCK + 70_000}`, `bytes=${DISK_BLOCK + 1000}-${DISK_BLOCK + 2000}`];
    for (let i = 0; i < 5; i++) {
      for (const range of ranges) {
        const { r, body } = await get(on, `/api/stream/${bigId}`, { range });
        expect(r.status).toBe(206);
        const [, s, e] = /^bytes (\d+)-(\d+)\//.exec(r.headers.get("content-range")!)!;
        expect(body.equals(Buffer.from(BIG.subarray(Number(s), Number(e) + 1)))).toBe(true);
      }
    }
    const after = await metrics();
    expect(value(after, memoryHit) - value(before, memoryHit)).toBe(20);
    expect(value(after, diskHit)).toBe(value(before, diskHit));
    expect(value(after, diskMiss)).toBe(value(before, diskMiss));
    expect(value(after, bucket)).toBe(value(before, bucket));
  });

  test("a cold video: one bucket GET per disk block a request needs; the tier's fills add none", async () => {
    const bytes = pattern(5 * MiB, 9);
    const id = await register(on, bytes, "cold");
    const reads = hot.bucketReads;
    const tier = on.ctx.catalog.memory!;
    // The first request loads the head too: the same disk block, fetched once.
    expect((await get(on, `/api/stream/${id}`, { range: "bytes=0-1" })).r.status).toBe(206);
    await tier.settled();
    expect(hot.bucketReads - reads).toBe(1);
    // Asked twice: the tier fills the block from the disk block the requests fetched.
    for (let i = 0; i < 3; i++) {
      expect((await get(on, `/api/stream/${id}`, { range: `bytes=${DISK_BLOCK + 5}-${DISK_BLOCK + 100}` })).r.status).toBe(206);
      await tier.settled();
    }
    expect(hot.bucketReads - reads).toBe(2);
    const lookups = diskLookups();
    const hits = hot.memoryHits;
    const { body } = await get(on, `/api/stream/${id}`, { range: `bytes=${DISK_BLOCK + 5}-${DISK_BLOCK + 100}` });
    expect(body.equals(Buffer.from(bytes.subarray(DISK_BLOCK + 5, DISK_BLOCK + 101)))).toBe(true);
    expect(hot.memoryHits).toBe(hits + 1);
    expect(diskLookups()).toBe(lookups);
    // RAM block 15 ends where disk block 2 starts, which no request needed: the block is filled
    // without its overlap rather than with a GET of disk block 2, and answers from memory.
    const last = 15 * TIER_BLOCK + 1000;
    for (let i = 0; i < 3; i++) {
      await get(on, `/api/stream/${id}`, { range: `bytes=${last}-${last + 60_000}` });
      await tier.settled();
    }
    expect(hot.bucketReads - reads).toBe(2);
    const held = hot.memoryHits;
    const again = await get(on, `/api/stream/${id}`, { range: `bytes=${last}-${last + 60_000}` });
    expect(again.body.equals(Buffer.from(bytes.subarray(last, last + 60_001)))).toBe(true);
    expect(hot.memoryHits).toBe(held + 1);
    // Multipart reaches into that missing overlap: the rest comes from the disk cache, exact.
    const multi = await get(on, `/api/stream/${id}`, { range: `bytes=${last}-${last + 10},${2 * DISK_BLOCK - 100}-${2 * DISK_BLOCK + 100}` });
    const parts = parseMultipart(multi.body, multi.r.headers.get("content-type")!.split("boundary=")[1]!);
    expect(parts[1]!.body.equals(Buffer.from(bytes.subarray(2 * DISK_BLOCK - 100, 2 * DISK_BLOCK + 101)))).toBe(true);
  });

  test("the bucket down: bytes held in RAM are still answered (single ranges, multipart), others are 503", async () => {
    // A video no request has asked for yet: nothing of it is held anywhere.
    const coldId = await register(on, pattern(100_000, 41), "never asked");
    // The disk cache loses its files too: what is answered now can only come from memory.
    const cacheDir = on.config.storage!.cacheDir;
    for (const sub of await readdir(cacheDir)) if (sub !== "tmp") await rm(join(cacheDir, sub), { recursive: true, force: true });
    await s3.stop();
    try {
      for (const [start, end] of [[0, 1], [100, 65_635], [DISK_BLOCK + 1000, DISK_BLOCK + 60_000], [BIG.length - 100, BIG.length - 1]] as const) {
        const { r, body } = await get(on, `/api/stream/${bigId}`, { range: `bytes=${start}-${end}` });
        expect(r.status).toBe(206);
        expect(body.equals(Buffer.from(BIG.subarray(start, end + 1)))).toBe(true);
      }
      const multi = await get(on, `/api/stream/${bigId}`, { range: "bytes=10-20,300000-300100" });
      expect(multi.r.status).toBe(206);
      const parts = parseMultipart(multi.body, multi.r.headers.get("content-type")!.split("boundary=")[1]!);
      expect(parts.map((p) => p.body.toString("hex"))).toEqual([Buffer.from(BIG.subarray(10, 21)).toString("hex"), Buffer.from(BIG.subarray(300000, 300101)).toString("hex")]);
      // Held nowhere: the bucket is down.
      const cold = await fetch(`${on.url}/api/stream/${coldId}`, { headers: { range: "bytes=0-1" } });
      expect(cold.status).toBe(503);
      expect(((await cold.json()) as { error: { code: string } }).error.code).toBe("storage_unavailable");
    } finally {
      await s3.start();
    }
    const back = await get(on, `/api/stream/${coldId}`, { range: "bytes=0-1" });
    expect(back.r.status).toBe(206);
    expect(back.body.equals(Buffer.from(pattern(100_000, 41).subarray(0, 2)))).toBe(true);
  }, 30_000);
});

describe("never stale", () => {
  test("a video replaced under its key (new ETag) is answered with its new bytes, never from the old blocks", async () => {
    const v1 = pattern(600_000, 21);
    const v2 = pattern(600_000, 22); // same size, same key: only the content hash tells them apart
    const id = await register(on, v1, "replaced");
    await warm(on, id, v1.length);
    const oldTag = (await get(on, `/api/stream/${id}`, { range: "bytes=0-1" })).r.headers.get("etag");
    const hits = hot.memoryHits;
    expect((await get(on, `/api/stream/${id}`, { range: "bytes=1000-2000" })).body.equals(Buffer.from(v1.subarray(1000, 2001)))).toBe(true);
    expect(hot.memoryHits).toBe(hits + 1);
    await replace(on, id, v2);
    for (let pass = 0; pass < 3; pass++) {
      for (const [s, e] of [[0, 1], [1000, 2000], [300_000, 360_000], [599_000, 599_999]] as const) {
        const { r, body } = await get(on, `/api/stream/${id}`, { range: `bytes=${s}-${e}` });
        expect(r.status).toBe(206);
        expect(r.headers.get("etag")).not.toBe(oldTag);
        expect(body.equals(Buffer.from(v2.subarray(s, e + 1)))).toBe(true);
      }
      await on.ctx.catalog.memory!.settled();
    }
    // The old tag no longer matches: If-Range gets the whole new file.
    const whole = await get(on, `/api/stream/${id}`, { range: "bytes=0-1", "if-range": oldTag! });
    expect(whole.r.status).toBe(200);
    expect(whole.body.equals(Buffer.from(v2))).toBe(true);
  });

  test("a deleted video is a 404, however warm its blocks are", async () => {
    const bytes = pattern(300_000, 31);
    const id = await register(on, bytes, "deleted");
    await warm(on, id, bytes.length);
    expect((await get(on, `/api/stream/${id}`, { range: "bytes=0-1" })).r.status).toBe(206);
    expect((await fetch(`${on.url}/api/videos/${id}`, { method: "DELETE", headers: AUTH })).status).toBe(204);
    for (const range of ["bytes=0-1", "bytes=1000-2000"]) expect((await get(on, `/api/stream/${id}`, { range })).r.status).toBe(404);
  });
});

test("a small tier filled past its bound stays within it, evicts, and answers exactly", async () => {
  const dataDir = join(await mkdtemp(join(tmpdir(), "spool-tier-s3-small-")), "data");
  const small = await startTestSpool({
    dataDir,
    databaseUrl: on.config.databaseUrl,
    storage: { ...on.config.storage!, cacheDir: join(dataDir, "cache") },
    seedDemo: false,
    transcode: { inServer: false },
    memoryCacheBytes: 1 * MiB,
  });
  extra.push(small);
  const tier = small.ctx.catalog.memory!;
  const evictions = hot.memoryEvictions;
  const ask = async (block: number) => {
    const at = block * TIER_BLOCK + 1234;
    const hits = hot.memoryHits;
    const { r, body } = await get(small, `/api/stream/${bigId}`, { range: `bytes=${at}-${at + 50_000}` });
    expect(r.status).toBe(206);
    expect(body.equals(Buffer.from(BIG.subarray(at, at + 50_001)))).toBe(true);
    expect(tier.bytes).toBeLessThanOrEqual(1 * MiB);
    return hot.memoryHits > hits;
  };
  // Every block asked for twice: more than the 1 MiB holds (three blocks of 256 + 64 KiB).
  for (let pass = 0; pass < 2; pass++) {
    for (let block = 0; block < 18; block++) await ask(block);
    await tier.settled();
  }
  expect(tier.bytes).toBeLessThanOrEqual(1 * MiB);
  expect(tier.bytes).toBeGreaterThan(512 * 1024);
  // One block asked for far more often than the residents: it evicts one of them.
  for (let i = 0; i < 8; i++) {
    await ask(16);
    await tier.settled();
  }
  expect(hot.memoryEvictions).toBeGreaterThan(evictions);
  expect(tier.bytes).toBeLessThanOrEqual(1 * MiB);
  expect(await ask(16)).toBe(true);
}, 60_000);
