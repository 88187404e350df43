/**
 * Clips kept as files (CLIP_CACHE_BYTES, src/files/clip-store.ts), against real servers over real
 * HTTP on media ffmpeg makes here: a kept clip answers exactly as the streamed clip did (same
 * status, headers and bytes for whole clips, ranges, HEAD, validators, multipart, downloads) but
 * with a Content-Length on the whole clip; the directory stays within its bound; files left by a
 * crash are never served and are swept; a deleted video's clips go; `CLIP_CACHE_BYTES=0` streams
 * as before; STORAGE=s3 keeps clips from the block cache's stream.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, stat, truncate, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { ClipCache, ClipStore, makeEntity, serveClipEntity, type ClipEntity } from "../../src/files/index.ts";
import { startSpool, type RunningSpool } from "../../src/server.ts";
import { parseMultipart } from "../helpers/http.ts";
import { makeVideo } from "../helpers/media.ts";
import { AUTH, startTestSpool, testBucketStorage, type TestSpool } from "../helpers/spool.ts";

const MiB = 1024 * 1024;
const QUERY = "?start=3.3&end=6.1";
let source: string;
/** Keeps clips; `off` serves the same DATA_DIR and rows with CLIP_CACHE_BYTES=0 (today's streams). */
let on: TestSpool;
let off: RunningSpool;
let id: string;

async function ingest(spool: { ctx: unknown }, path: string, title = "Kept clip"): Promise<string> {
  const ctx = spool.ctx as { ingest: { ingestPath(path: string, meta: { title: string; originalFilename: string }): Promise<{ id: string }> } };
  return (await ctx.ingest.ingestPath(path, { title, originalFilename: "kept.mp4" })).id;
}

const storeOf = (spool: { ctx: unknown }) => (spool.ctx as { catalog: { clips?: ClipStore } }).catalog.clips;

/** Every kept clip file under a DATA_DIR, with its size. */
async function keptFiles(dataDir: string): Promise<{ path: string; size: number }[]> {
  const dir = join(dataDir, "cache", "clips");
  const files = [];
  for (const sub of await readdir(dir).catch(() => [] as string[])) {
    if (sub === "tmp") continue;
    for (const name of await readdir(join(dir, sub))) {
      // A file being removed between the listing and the stat is gone, not an error.
      const info = await stat(join(dir, sub, name)).catch(() => undefined);
      if (info) files.push({ path: join(dir, sub, name), size: info.size });
    }
  }
  return files;
}

beforeAll(async () => {
  source = await makeVideo({ seconds: 8, fps: 25, keyframeInterval: 50 });
  on = await startTestSpool({ jobKinds: ["ingest"], clipCacheBytes: 256 * MiB });
  id = await ingest(on, source);
  off = await startSpool({ ...on.config, port: 0, clipCacheBytes: 0, seedDemo: false }, { primary: false });
}, 120_000);
afterAll(async () => {
  await off?.stop();
  await on?.stop();
});

const url = (spool: { url: string }, query = QUERY, video = id) => `${spool.url}/api/stream/${video}${query}`;

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
  length: string | null;
}

/** An answer with what may differ between two servers and two sendings taken out (date, request id, framing, boundary). */
async function answer(target: string, init: RequestInit = {}): Promise<Answer> {
  const r = await fetch(target, init);
  const headers: Record<string, string> = {};
  for (const [name, value] of r.headers) if (!["date", "x-request-id", "content-length", "transfer-encoding"].includes(name)) headers[name] = value;
  let body = new Uint8Array(await r.arrayBuffer());
  const boundary = /boundary=(\S+)/.exec(headers["content-type"] ?? "")?.[1];
  if (boundary) headers["content-type"] = "multipart/byteranges";
  if (boundary && body.length > 0) {
    // Multipart: the same parts in the same order, whatever the boundary.
    const parts = parseMultipart(Buffer.from(body), boundary);
    body = new Uint8Array(Buffer.concat(parts.map((p) => Buffer.concat([Buffer.from(JSON.stringify(p.headers)), p.body]))));
  }
  return { status: r.status, headers, body, length: r.headers.get("content-length") };
}

describe("a kept clip answers as the streamed one did", () => {
  let first: Answer;
  let clipTag: string;
  let fileTag: string;
  let lastModified: string;

  beforeAll(async () => {
    first = await answer(url(on));
    clipTag = first.headers.etag!;
    lastModified = first.headers["last-modified"]!;
    fileTag = (await fetch(url(on, ""), { method: "HEAD" })).headers.get("etag")!;
    await storeOf(on)!.settled();
  });

  test("the first answer streams (chunked) and starts the build; later ones are the kept file, with a Content-Length", async () => {
    expect(first.status).toBe(200);
    expect(first.length).toBeNull();
    const kept = await keptFiles(on.dataDir);
    expect(kept).toHaveLength(1);
    expect(kept[0]!.size).toBe(first.body.length);
    for (let i = 0; i < 3; i++) {
      const again = await answer(url(on));
      expect(again.length).toBe(String(first.body.length));
      expect(again.headers).toEqual(first.headers);
      expect(again.body).toEqual(first.body);
    }
    // And the same bytes as a server that never keeps clips.
    const streamed = await answer(url(off));
    expect(streamed.length).toBeNull();
    expect(streamed.body).toEqual(first.body);
    expect(storeOf(on)!.stats().builds).toBe(1);
  });

  const n = () => first.body.length;
  const cases: [string, () => RequestInit, string?][] = [
    ["GET", () => ({})],
    ["HEAD", () => ({ method: "HEAD" })],
    ["bytes=0-1", () => ({ headers: { range: "bytes=0-1" } })],
    ["bytes=0-", () => ({ headers: { range: "bytes=0-" } })],
    ["bytes=100-199 (header)", () => ({ headers: { range: "bytes=100-199" } })],
    ["bytes=1000-80000 (header and media)", () => ({ headers: { range: "bytes=1000-80000" } })],
    ["a range in the media", () => ({ headers: { range: `bytes=${n() - 30000}-${n() - 1000}` } })],
    ["bytes=-500", () => ({ headers: { range: "bytes=-500" } })],
    ["Range with whitespace (not Bun's own range code)", () => ({ headers: { range: "bytes= 10-20" } })],
    ["an invalid Range (ignored)", () => ({ headers: { range: "bytes=9-3" } })],
    ["416", () => ({ headers: { range: `bytes=${n()}-` } })],
    ["HEAD with a range", () => ({ method: "HEAD", headers: { range: "bytes=10-19" } })],
    ["multipart", () => ({ headers: { range: "bytes=0-99,5000-5999,-100" } })],
    ["HEAD multipart", () => ({ method: "HEAD", headers: { range: "bytes=0-99,5000-5999" } })],
    ["If-None-Match: the clip's tag (304)", () => ({ headers: { "if-none-match": clipTag } })],
    ["If-None-Match: the file's tag (the clip, 200)", () => ({ headers: { "if-none-match": fileTag } })],
    ["If-Modified-Since (304)", () => ({ headers: { "if-modified-since": lastModified } })],
    ["If-Match: the file's tag (412)", () => ({ headers: { "if-match": fileTag } })],
    ["If-Match: the clip's tag", () => ({ method: "HEAD", headers: { "if-match": clipTag } })],
    ["If-Range: the clip's tag (206)", () => ({ headers: { range: "bytes=0-9", "if-range": clipTag } })],
    ["If-Range: the file's tag (the whole clip)", () => ({ headers: { range: "bytes=0-9", "if-range": fileTag } })],
    ["?download=1", () => ({}), `${QUERY}&download=1`],
    ["?download=1 with a range", () => ({ headers: { range: "bytes=50-60" } }), `${QUERY}&download=1`],
    ["HEAD ?download=1", () => ({ method: "HEAD" }), `${QUERY}&download=1`],
  ];
  for (const [name, init, query] of cases) {
    test(name, async () => {
      const kept = await answer(url(on, query), init());
      const streamed = await answer(url(off, query), init());
      expect(kept.status).toBe(streamed.status);
      expect(kept.headers).toEqual(streamed.headers);
      expect(kept.body).toEqual(streamed.body);
      if (init().method === "HEAD") expect(kept.length).toBe(streamed.length);
      // A Content-Length where the stream had none (a range over the header and the media, the
      // whole clip); where both have one, the same. Multipart stays a stream in both, and so
      // does a whole answer to a request whose Range is ignored (bad, or a failing If-Range:
      // Bun would apply it to a file body; see serve.ts).
      else if (kept.status === 200 || kept.status === 206) {
        const ignoredRange = kept.status === 200 && new Headers(init().headers).has("range");
        if (kept.headers["content-type"] !== "multipart/byteranges" && !ignoredRange) expect(kept.length).toBe(String(kept.body.length));
        if (streamed.length !== null) expect(kept.length).toBe(streamed.length);
      }
    });
  }

  test("the download variant is the same kept file (no second build)", async () => {
    await storeOf(on)!.settled();
    expect(await keptFiles(on.dataDir)).toHaveLength(1);
    const r = await fetch(url(on, `${QUERY}&download=1`));
    expect(r.headers.get("content-length")).toBe(String(n()));
    expect(r.headers.get("content-disposition")).toBe('attachment; filename="Kept clip 3.3-6.1s.mp4"');
  });
});

describe("what makes a clip kept", () => {
  test("HEADs, 304s and ranges of new intervals write nothing; a clip is kept once what it streamed adds up to its size", async () => {
    const store = storeOf(on)!;
    const builds = store.stats().builds;
    const before = (await keptFiles(on.dataDir)).map((f) => f.path).sort();
    // New intervals, asked for without taking their bytes: no file, however many.
    for (let i = 0; i < 8; i++) {
      const q = `?start=0.${i + 1}&end=2.${i + 1}`;
      expect((await fetch(url(on, q), { method: "HEAD" })).status).toBe(200);
      const tag = (await fetch(url(on, q), { method: "HEAD" })).headers.get("etag")!;
      expect((await fetch(url(on, q), { headers: { "if-none-match": tag } })).status).toBe(304);
      // Two bytes of the header: a small piece, not the clip.
      await (await fetch(url(on, q), { headers: { range: "bytes=0-1" } })).arrayBuffer();
    }
    await store.settled();
    expect(store.stats().builds).toBe(builds);
    expect((await keptFiles(on.dataDir)).map((f) => f.path).sort()).toEqual(before);

    // Half of one clip (its header and media: streamed through JavaScript): still not kept. A
    // range of the media alone is sent from the source file and does not count. The first half
    // again: as many bytes streamed as the clip holds, so it is kept, then sent with a length.
    const q = "?start=4.2&end=7.2";
    const size = Number((await fetch(url(on, q), { method: "HEAD" })).headers.get("content-length"));
    const half = Math.ceil(size / 2);
    const firstHalf = () => fetch(url(on, q), { headers: { range: `bytes=0-${half - 1}` } });
    const one = await firstHalf();
    expect(one.status).toBe(206);
    await one.arrayBuffer();
    await (await fetch(url(on, q), { headers: { range: `bytes=${half}-` } })).arrayBuffer();
    await store.settled();
    expect(store.stats().builds).toBe(builds);
    const rest = await firstHalf();
    expect(rest.status).toBe(206);
    await rest.arrayBuffer();
    await store.settled();
    expect(store.stats().builds).toBe(builds + 1);
    const whole = await fetch(url(on, q));
    expect(whole.headers.get("content-length")).toBe(String(size));
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(new Uint8Array(await (await fetch(url(off, q))).arrayBuffer()));
  });
});

describe("the bound", () => {
  test("filled past CLIP_CACHE_BYTES, the directory stays within it; clips over 1/8 of it stay streams", async () => {
    // Clips of 1 s at every half second: sizes known from the server that keeps nothing.
    const queries = Array.from({ length: 12 }, (_, i) => `?start=${i / 2}&end=${i / 2 + 1}`);
    const sizes = await Promise.all(queries.map(async (q) => Number((await fetch(url(off, q), { method: "HEAD" })).headers.get("content-length"))));
    const bound = 8 * Math.max(...sizes); // room for about 8 of them, each at most 1/8 of it
    const dataDir = await mkdtemp(join(tmpdir(), "spool-clip-bound-"));
    const small = await startTestSpool({ dataDir, jobKinds: ["ingest"], clipCacheBytes: bound, seedDemo: false });
    try {
      const video = await ingest(small, source);
      const total = async () => (await keptFiles(dataDir)).reduce((sum, f) => sum + f.size, 0);
      for (const q of queries.slice(0, 6)) {
        await (await fetch(url(small, q, video))).arrayBuffer();
        await storeOf(small)!.settled();
      }
      expect(await keptFiles(dataDir)).toHaveLength(6);
      // Files used in the last 3 touch intervals (6 s) are never evicted: past that, the oldest go.
      await Bun.sleep(6_500);
      await (await fetch(url(small, queries[0], video))).arrayBuffer(); // the oldest, used again
      for (const q of queries.slice(6)) {
        await (await fetch(url(small, q, video))).arrayBuffer();
        await storeOf(small)!.settled();
        expect(await total()).toBeLessThanOrEqual(bound);
      }
      const names = (await keptFiles(dataDir)).length;
      expect(names).toBeGreaterThan(0);
      expect(storeOf(small)!.stats().evictions).toBeGreaterThan(0);
      // The same figures on /metrics.
      const metrics = await (await fetch(`${small.url}/metrics`, { headers: AUTH })).text();
      const metric = (name: string) => Number(new RegExp(`^${name}\\{cache="clips"\\} (\\d+)$`, "m").exec(metrics)?.[1]);
      const stats = storeOf(small)!.stats();
      expect(metric("spool_disk_cache_evictions_total")).toBe(stats.evictions);
      expect(metric("spool_disk_cache_files")).toBe(stats.files);
      expect(metric("spool_disk_cache_bytes")).toBe(stats.bytes);
      expect(stats.bytes).toBe(await total());
      // Every answer still exact, kept or not.
      for (const q of queries) expect((await answer(url(small, q, video))).body).toEqual((await answer(url(off, q))).body);
      await storeOf(small)!.settled();
      // The whole video as a clip from 0.04 s is larger than 1/8 of the bound: never kept.
      const before = await keptFiles(dataDir);
      const long = await fetch(url(small, "?start=0.04", video));
      expect(long.headers.get("content-length")).toBeNull();
      await long.arrayBuffer();
      await storeOf(small)!.settled();
      expect((await keptFiles(dataDir)).map((f) => f.path).sort()).toEqual(before.map((f) => f.path).sort());
    } finally {
      await small.stop();
    }
  }, 60_000);
});

describe("crashes and removals", () => {
  test("a half file under a clip's name and a dead builder's temporary file are never served, and are swept", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-clip-crash-"));
    let spool = await startTestSpool({ dataDir, jobKinds: ["ingest"], clipCacheBytes: 64 * MiB, seedDemo: false });
    let video: string;
    let bytes: Uint8Array<ArrayBuffer>;
    let kept: string;
    try {
      video = await ingest(spool, source);
      bytes = new Uint8Array(await (await fetch(url(spool, QUERY, video))).arrayBuffer());
      await storeOf(spool)!.settled();
      kept = (await keptFiles(dataDir))[0]!.path;
    } finally {
      await spool.stop();
    }
    // What a crash could leave (a half file under the final name cannot come from a build, which
    // renames only complete files; it stands for a damaged disk): both must never be served.
    await truncate(kept, Math.floor(bytes.length / 2));
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    const temp = join(dataDir, "cache", "clips", "tmp", `${hostname()}:${dead.pid}:${crypto.randomUUID()}`);
    await writeFile(temp, bytes.subarray(0, 1000));
    spool = await startTestSpool({ dataDir, jobKinds: ["ingest"], clipCacheBytes: 64 * MiB, seedDemo: false });
    try {
      expect(await readdir(join(dataDir, "cache", "clips", "tmp"))).toEqual([]);
      const firstAgain = await fetch(url(spool, QUERY, video));
      expect(new Uint8Array(await firstAgain.arrayBuffer())).toEqual(bytes);
      const ranged = await fetch(url(spool, QUERY, video), { headers: { range: `bytes=${bytes.length - 100}-` } });
      expect(new Uint8Array(await ranged.arrayBuffer())).toEqual(bytes.subarray(bytes.length - 100));
      await storeOf(spool)!.settled();
      expect((await stat(kept)).size).toBe(bytes.length);
      const kept2 = await fetch(url(spool, QUERY, video));
      expect(kept2.headers.get("content-length")).toBe(String(bytes.length));
      expect(new Uint8Array(await kept2.arrayBuffer())).toEqual(bytes);
    } finally {
      await spool.stop();
    }
  }, 60_000);

  test("a kept clip removed behind the server's back (another process evicted it) is streamed, then kept again", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-clip-gone-"));
    const spool = await startTestSpool({ dataDir, jobKinds: ["ingest"], clipCacheBytes: 64 * MiB, seedDemo: false });
    try {
      const video = await ingest(spool, source);
      const bytes = new Uint8Array(await (await fetch(url(spool, QUERY, video))).arrayBuffer());
      await storeOf(spool)!.settled();
      const [kept] = await keptFiles(dataDir);
      await Bun.file(kept!.path).delete();
      // Within a touch interval the server trusts what it knows; past it, it checks first.
      await Bun.sleep(2_100);
      const r = await fetch(url(spool, QUERY, video));
      expect(r.status).toBe(200);
      expect(new Uint8Array(await r.arrayBuffer())).toEqual(bytes);
      await storeOf(spool)!.settled();
      expect(await keptFiles(dataDir)).toHaveLength(1);
    } finally {
      await spool.stop();
    }
  }, 60_000);

  test("a kept clip removed just before it is sent (within a touch interval): 503 with Retry-After, never a 404; the next request streams it", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-clip-vanish-"));
    // No RAM tier: the send must open the file.
    const spool = await startTestSpool({ dataDir, jobKinds: ["ingest"], clipCacheBytes: 64 * MiB, memoryCacheBytes: 0, seedDemo: false });
    try {
      const video = await ingest(spool, source);
      const bytes = new Uint8Array(await (await fetch(url(spool, QUERY, video))).arrayBuffer());
      await storeOf(spool)!.settled();
      const [kept] = await keptFiles(dataDir);
      await Bun.file(kept!.path).delete();
      const vanished = await fetch(url(spool, QUERY, video));
      expect(vanished.status).toBe(503);
      expect(vanished.headers.get("retry-after")).toBe("1");
      await vanished.arrayBuffer();
      const again = await fetch(url(spool, QUERY, video));
      expect(again.status).toBe(200);
      expect(new Uint8Array(await again.arrayBuffer())).toEqual(bytes);
    } finally {
      await spool.stop();
    }
  }, 60_000);

  test("a deleted video: its clip URLs answer 404 and its kept clips are removed", async () => {
    const other = await ingest(on, source, "Doomed");
    await (await fetch(url(on, QUERY, other))).arrayBuffer();
    await (await fetch(url(on, "?start=1&end=2", other))).arrayBuffer();
    await storeOf(on)!.settled();
    const before = (await keptFiles(on.dataDir)).length;
    const removed = await fetch(`${on.url}/api/videos/${other}`, { method: "DELETE", headers: AUTH });
    expect(removed.status).toBeLessThan(300);
    expect((await fetch(url(on, QUERY, other))).status).toBe(404);
    const deadline = Date.now() + 5_000;
    while ((await keptFiles(on.dataDir)).length !== before - 2 && Date.now() < deadline) await Bun.sleep(50);
    expect((await keptFiles(on.dataDir)).length).toBe(before - 2);
    // The other video's clip (same bytes, another source) is still kept and served.
    expect((await fetch(url(on))).headers.get("content-length")).not.toBeNull();
  }, 30_000);
});

describe("several processes on one DATA_DIR", () => {
  test("a clip kept by one server is adopted by another (no second build), and served with its Content-Length", async () => {
    const other = await startSpool({ ...on.config, port: 0, seedDemo: false }, { primary: false });
    try {
      const query = "?start=2.2&end=3.9";
      const first = await answer(url(on, query));
      await storeOf(on)!.settled();
      const files = (await keptFiles(on.dataDir)).length;
      const streamed = await answer(url(other, query)); // other's first: not verified yet, so streamed
      expect(streamed.body).toEqual(first.body);
      await storeOf(other)!.settled();
      expect(storeOf(other)!.stats().builds).toBe(0);
      expect((await keptFiles(on.dataDir)).length).toBe(files);
      const adopted = await answer(url(other, query));
      expect(adopted.length).toBe(String(first.body.length));
      expect(adopted.body).toEqual(first.body);
    } finally {
      await other.stop();
    }
  }, 30_000);
});

describe("CLIP_CACHE_BYTES=0", () => {
  test("clips stream as before and nothing is written", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-clip-off-"));
    const spool = await startTestSpool({ dataDir, jobKinds: ["ingest"], clipCacheBytes: 0, seedDemo: false });
    try {
      expect(storeOf(spool)).toBeUndefined();
      const video = await ingest(spool, source);
      for (let i = 0; i < 3; i++) {
        const r = await fetch(url(spool, QUERY, video));
        expect(r.headers.get("content-length")).toBeNull();
        await r.arrayBuffer();
      }
      expect(await keptFiles(dataDir)).toEqual([]);
    } finally {
      await spool.stop();
    }
  }, 30_000);
});

describe("STORAGE=s3", () => {
  test("a clip of a video in the bucket is kept from the block cache and then sent with a Content-Length", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), "spool-clip-s3-"));
    const spool = await startTestSpool({ dataDir, storage: await testBucketStorage(dataDir), jobKinds: ["ingest"], clipCacheBytes: 64 * MiB, seedDemo: false });
    try {
      const video = await ingest(spool, source);
      const first = await answer(url(spool, QUERY, video));
      expect(first.status).toBe(200);
      expect(first.length).toBeNull();
      await storeOf(spool)!.settled();
      expect(await keptFiles(dataDir)).toHaveLength(1);
      const kept = await answer(url(spool, QUERY, video));
      expect(kept.length).toBe(String(first.body.length));
      expect(kept.headers).toEqual(first.headers);
      expect(kept.body).toEqual(first.body);
      // The same stored bytes locally give the same clip.
      expect(kept.body).toEqual((await answer(url(off))).body);
      const range = await answer(url(spool, QUERY, video), { headers: { range: "bytes=500-70000" } });
      expect(range.body).toEqual(first.body.subarray(500, 70001));
    } finally {
      await spool.stop();
    }
  }, 60_000);
});

describe("ClipStore through the file engine's API", () => {
  test("a build declined while the build slots are busy is started by a later answer", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spool-clip-busy-"));
    const info = await stat(source);
    const base = makeEntity(source, info.size, info.mtimeMs);
    const store = new ClipStore({ dir, maxBytes: 256 * MiB, concurrency: 1, touchIntervalMs: 0, rescanIntervalMs: 0 });
    await store.init();
    const clips = new ClipCache({ store });
    const [first, second] = [await clips.get(base, { start: 0.5, end: 2.5 }), await clips.get(base, { start: 3.5, end: 5.5 })];
    // Both reach their size at once: one slot, so the second's build is declined.
    store.streamed(first, first.size);
    store.streamed(second, second.size);
    await store.settled();
    expect(store.stats().builds).toBe(1);
    expect(store.entityFor(second)).toBeUndefined();
    // Its next streamed answer asks again, and the slot is free now.
    await (await serveClipEntity(new Request("http://x/"), second)).arrayBuffer();
    await store.settled();
    expect(store.stats().builds).toBe(2);
    expect(store.entityFor(second)).toBeDefined();
  });

  test("a clip the directory cannot take (every kept one in recent use) is never written, not even as a temporary file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spool-clip-refused-"));
    const info = await stat(source);
    const base = makeEntity(source, info.size, info.mtimeMs);
    const probe = new ClipCache();
    const [a, b] = [{ start: 0.5, end: 2.5 }, { start: 3.5, end: 5.5 }];
    const [sizeA, sizeB] = [(await probe.get(base, a)).size, (await probe.get(base, b)).size];
    // Room for the first and half the second; a minute's touch interval: the first, just used,
    // may not be evicted for three.
    const store = new ClipStore({ dir, maxBytes: sizeA + Math.floor(sizeB / 2), maxClipBytes: sizeA + sizeB, touchIntervalMs: 60_000, rescanIntervalMs: 0 });
    await store.init();
    const clips = new ClipCache({ store });
    const first = await clips.get(base, a);
    store.streamed(first, first.size);
    await store.settled();
    expect(store.entityFor(first)).toBeDefined();
    /** What this process has written with write(2) and its kin, in bytes (/proc/self/io). */
    const written = async () => Number(/^wchar: (\d+)$/m.exec(await Bun.file("/proc/self/io").text())![1]);
    const second = await clips.get(base, b);
    const before = await written();
    store.streamed(second, second.size);
    await store.settled();
    // Refused before a byte was written (the build used to write all of it, then drop it).
    expect((await written()) - before).toBeLessThan(sizeB / 4);
    expect(store.entityFor(second)).toBeUndefined();
    expect(store.stats()).toMatchObject({ files: 1, builds: 1, evictions: 0 });
    expect(await readdir(join(dir, "tmp"))).toEqual([]);
  });

  test("least recently used clips are evicted first; the bound holds", async () => {
    const dir = await mkdtemp(join(tmpdir(), "spool-clip-lru-"));
    const info = await stat(source);
    const base = makeEntity(source, info.size, info.mtimeMs);
    const intervals = [0, 1, 2, 3, 4, 5].map((s) => ({ start: s + 0.5, end: s + 1.5 }));
    const probe = new ClipCache();
    const sizes = await Promise.all(intervals.map(async (i) => (await probe.get(base, i)).size));
    const big = { start: 0.5, end: 6.5 };
    const bigSize = (await probe.get(base, big)).size;
    // Room for the six small clips, not for the big one too.
    const bound = sizes.reduce((a, b) => a + b, 0) + Math.floor(bigSize / 2);
    const store = new ClipStore({ dir, maxBytes: bound, maxClipBytes: bound, touchIntervalMs: 0, rescanIntervalMs: 0 });
    await store.init();
    const clips = new ClipCache({ store });
    /** Answers a GET for the clip; `kept`: whether the kept file answered it. */
    const serve = async (clip: ClipEntity) => {
      const kept = store.entityFor(clip) !== undefined;
      const bytes = new Uint8Array(await (await serveClipEntity(new Request("http://x/"), clip)).arrayBuffer());
      await store.settled();
      return { bytes, kept };
    };
    const all: ClipEntity[] = [];
    for (const i of intervals) all.push(await clips.get(base, i));
    for (const clip of all) expect((await serve(clip)).kept).toBe(false);
    expect(store.stats().files).toBe(all.length);
    // Used in order, a few ms apart (the use clock is the files' mtime, in ms): 1 is now the oldest.
    for (const clip of all) {
      expect(store.entityFor(clip)).toBeDefined();
      await Bun.sleep(3);
    }
    expect((await serve(all[0]!)).kept).toBe(true);
    // A big clip that needs room: the least recently used go (the second first), the first stays.
    const bigClip = await clips.get(base, big);
    await serve(bigClip);
    expect(store.stats().bytes).toBeLessThanOrEqual(bound);
    expect(store.stats().evictions).toBeGreaterThan(0);
    expect(store.entityFor(bigClip)).toBeDefined();
    expect(store.entityFor(all[0]!)).toBeDefined();
    // Asking for an evicted clip streams it (kept again once it has streamed its size anew).
    expect(store.entityFor(all[1]!)).toBeUndefined();
    await store.settled();
    // Evicted or kept, every answer is the clip's bytes.
    const streamed = new ClipCache();
    for (const i of [...intervals, big]) {
      const expected = new Uint8Array(await (await serveClipEntity(new Request("http://x/"), await streamed.get(base, i))).arrayBuffer());
      expect((await serve(await clips.get(base, i))).bytes).toEqual(expected);
    }
  }, 30_000);
});
