/**
 * BlockCache against a real s3rver: exact bytes for any range, complete aligned block files,
 * LRU eviction under CACHE_MAX_BYTES, one fetch for concurrent misses, two processes filling
 * one block, a filler killed mid-block (kill -9) leaving nothing visible, and a bucket outage.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BlockCache, type CachedObject, type Piece } from "../../src/storage/block-cache.ts";
import { blockCount, blockLength } from "../../src/storage/blocks.ts";
import { StorageUnavailable, type ObjectStore, type ReadOptions, type ReadRange } from "../../src/storage/object-store.ts";
import { S3Store, type S3StoreOptions } from "../../src/storage/s3-store.ts";
import { ObjectServer } from "../../src/storage/serve.ts";
import { ROOT } from "../helpers/process.ts";
import { filesBytes } from "../helpers/disk-usage.ts";
import { startS3rver, type S3rver } from "../helpers/s3.ts";

const BLOCK = 256 * 1024;
const SIZE = 12 * BLOCK - 1000; // 12 blocks, the last one short
const SOURCE = (() => {
  const bytes = new Uint8Array(SIZE);
  for (let i = 0; i < SIZE; i++) bytes[i] = (i * 13 + (i >>> 9) * 7) % 253;
  return bytes;
})();
const OBJECT: CachedObject = { key: "videos/c/source.mp4", identity: "sha256-test-identity", size: SIZE };

let s3: S3rver;
let work: string;
let store: S3Store;
let dirs = 0;
const newDir = () => join(work, `cache-${++dirs}`);

/** Counts the reads that reach the real store (it is a pass-through, not a mock). */
class CountingStore {
  reads = 0;
  constructor(readonly inner: ObjectStore) {}
  read(key: string, range: ReadRange, options?: ReadOptions) {
    this.reads++;
    return this.inner.read(key, range, options);
  }
}
const counting = (inner: ObjectStore) => {
  const counter = new CountingStore(inner);
  return { counter, store: new Proxy(inner, { get: (target, name) => (name === "read" ? counter.read.bind(counter) : Reflect.get(target, name)) }) };
};

async function bytesOf(pieces: Piece[]): Promise<Uint8Array> {
  const parts = await Promise.all(pieces.map((p) => Bun.file(p.path).slice(p.offset, p.offset + p.length).bytes()));
  return new Uint8Array(Buffer.concat(parts));
}

async function blockFiles(dir: string): Promise<{ path: string; size: number }[]> {
  const files = [];
  for (const sub of await readdir(dir).catch(() => [] as string[])) {
    if (sub === "tmp") continue;
    for (const name of await readdir(join(dir, sub))) files.push({ path: join(dir, sub, name), size: (await stat(join(dir, sub, name))).size });
  }
  return files;
}

/** Linear congruential numbers: the same "random" ranges on every run. */
function lcg(seed: number) {
  let x = seed;
  return (n: number) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x % n;
  };
}

/**
 * An HTTP proxy in front of s3rver that slows its answers: `delay` waits before the body;
 * `stall` sends half of it and then nothing (a filler stuck mid-block).
 */
/**
 * A proxy in front of s3rver. "together": every answer is held until two requests have come in
 * (a barrier, so two fillers surely fetch at once however far apart their processes start; 20 s
 * at most). "stall": half of each body, then nothing.
 */
function slowProxy(mode: "together" | "stall") {
  let arrived = 0;
  const both = Promise.withResolvers<void>();
  const fallback = setTimeout(both.resolve, 20_000).unref();
  return Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    idleTimeout: 0,
    async fetch(req) {
      const url = new URL(req.url);
      if (mode === "together" && ++arrived === 2) {
        clearTimeout(fallback);
        both.resolve();
      }
      const upstream = await fetch(`${s3.endpoint}${url.pathname}${url.search}`, { method: req.method, headers: req.headers });
      if (mode === "together") {
        await both.promise;
        return upstream;
      }
      const reader = upstream.body!.getReader();
      const half = Number(upstream.headers.get("content-length")) / 2;
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        async pull(out) {
          if (sent >= half) return new Promise<void>(() => {}); // never more
          const { done, value } = await reader.read();
          if (done) return out.close();
          const part = value.subarray(0, Math.max(1, Math.min(value.length, half - sent)));
          sent += part.length;
          out.enqueue(part);
        },
      });
      return new Response(body, { status: upstream.status, headers: upstream.headers });
    },
  });
}

function spawnFiller(s3Options: S3StoreOptions, dir: string, range: { start: number; end: number }) {
  const job = { s3: s3Options, dir, maxBytes: 64 * BLOCK, blockSize: BLOCK, object: OBJECT, range };
  return Bun.spawn([process.execPath, resolve(ROOT, "test/helpers/cache-filler.ts"), JSON.stringify(job)], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
}

beforeAll(async () => {
  s3 = await startS3rver();
  work = await mkdtemp(join(tmpdir(), "spool-block-cache-"));
  store = new S3Store({ ...s3.options, requestTimeoutMs: 3000 });
  await writeFile(join(work, "source.bin"), SOURCE);
  await store.putFile(OBJECT.key, join(work, "source.bin"));
}, 30_000);

afterAll(async () => {
  await s3?.dispose();
  await rm(work, { recursive: true, force: true });
});

describe("BlockCache", () => {
  test("random ranges give exactly the source's bytes; block files are aligned and complete", async () => {
    const cache = new BlockCache({ dir: newDir(), maxBytes: 64 * BLOCK, blockSize: BLOCK, store });
    await cache.init();
    const random = lcg(7);
    const ranges = [
      { start: 0, end: 0 },
      { start: 0, end: 1 },
      { start: BLOCK - 1, end: BLOCK },
      { start: SIZE - 1, end: SIZE - 1 },
      { start: 11 * BLOCK, end: SIZE - 1 }, // the short last block
      { start: 0, end: SIZE - 1 },
    ];
    for (let i = 0; i < 60; i++) {
      const start = random(SIZE);
      ranges.push({ start, end: Math.min(SIZE - 1, start + random(i % 3 === 0 ? 3 * BLOCK : 70_000)) });
    }
    for (const range of ranges) {
      const pieces = await cache.pieces(OBJECT, range);
      expect(await bytesOf(pieces)).toEqual(SOURCE.subarray(range.start, range.end + 1));
    }
    const files = await blockFiles(cache.dir);
    expect(files.length).toBe(blockCount(SIZE, BLOCK));
    for (let index = 0; index < blockCount(SIZE, BLOCK); index++) {
      const path = cache.blockPath(OBJECT, index);
      const bytes = await Bun.file(path).bytes();
      expect(bytes.length).toBe(blockLength(index, BLOCK, SIZE));
      expect(bytes).toEqual(SOURCE.subarray(index * BLOCK, index * BLOCK + bytes.length));
    }
    expect(await readdir(join(cache.dir, "tmp"))).toEqual([]);
    expect(cache.stats()).toMatchObject({ blocks: 12, bytes: SIZE, fills: 12 });
  }, 30_000);

  test("stream() gives a long range's bytes, filling as it goes; a single piece is a sendfile-able slice", async () => {
    const cache = new BlockCache({ dir: newDir(), maxBytes: 64 * BLOCK, blockSize: BLOCK, store });
    await cache.init();
    const range = { start: 1234, end: SIZE - 4321 };
    const bytes = new Uint8Array(await new Response(cache.stream(OBJECT, range)).arrayBuffer());
    expect(bytes).toEqual(SOURCE.subarray(range.start, range.end + 1));
    const [piece] = await cache.pieces(OBJECT, { start: 3 * BLOCK + 5, end: 3 * BLOCK + 65_540 });
    const response = new Response(Bun.file(piece!.path).slice(piece!.offset, piece!.offset + piece!.length));
    expect(new Uint8Array(await response.arrayBuffer())).toEqual(SOURCE.subarray(3 * BLOCK + 5, 3 * BLOCK + 65_541));
  });

  test("other identities are other blocks (a replaced video never gets stale bytes)", async () => {
    const cache = new BlockCache({ dir: newDir(), maxBytes: 64 * BLOCK, blockSize: BLOCK, store });
    expect(cache.blockPath(OBJECT, 0)).not.toBe(cache.blockPath({ ...OBJECT, identity: "sha256-other" }, 0));
    expect(cache.blockPath(OBJECT, 0)).not.toBe(cache.blockPath({ ...OBJECT, key: "videos/d/source.mp4" }, 0));
    expect(cache.blockPath(OBJECT, 0)).not.toBe(cache.blockPath(OBJECT, 1));
  });

  test("concurrent misses of one block fetch it once", async () => {
    const { counter, store: countingStore } = counting(store);
    const cache = new BlockCache({ dir: newDir(), maxBytes: 64 * BLOCK, blockSize: BLOCK, store: countingStore });
    await cache.init();
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => cache.pieces(OBJECT, { start: 5 * BLOCK + i, end: 5 * BLOCK + 1000 + i })));
    for (const [i, pieces] of results.entries()) expect(await bytesOf(pieces)).toEqual(SOURCE.subarray(5 * BLOCK + i, 5 * BLOCK + 1001 + i));
    expect(counter.reads).toBe(1);
    expect(cache.stats()).toMatchObject({ fills: 1, misses: 1 });
    // A second cache on the same directory (another process's view) adopts the block: no fetch.
    const other = counting(store);
    const second = new BlockCache({ dir: cache.dir, maxBytes: 64 * BLOCK, blockSize: BLOCK, store: other.store });
    await second.pieces(OBJECT, { start: 5 * BLOCK, end: 5 * BLOCK + 10 });
    expect(other.counter.reads).toBe(0);
  });

  test("LRU eviction keeps the directory within CACHE_MAX_BYTES and keeps the hot block", async () => {
    const maxBytes = 4 * BLOCK;
    const cache = new BlockCache({ dir: newDir(), maxBytes, blockSize: BLOCK, store, touchIntervalMs: 0 });
    await cache.init();
    for (let round = 0; round < 3; round++) {
      for (let index = 1; index < 12; index++) {
        await cache.pieces(OBJECT, { start: 0, end: 99 }); // block 0 is hot
        const start = index * BLOCK;
        const pieces = await cache.pieces(OBJECT, { start, end: Math.min(SIZE - 1, start + 5000) });
        expect(await bytesOf(pieces)).toEqual(SOURCE.subarray(start, Math.min(SIZE, start + 5001)));
        const files = await blockFiles(cache.dir);
        expect(files.reduce((sum, f) => sum + f.size, 0)).toBeLessThanOrEqual(maxBytes);
        expect(files.every((f) => f.size === BLOCK || f.size === blockLength(11, BLOCK, SIZE))).toBe(true);
      }
    }
    expect(await Bun.file(cache.blockPath(OBJECT, 0)).exists()).toBe(true);
    expect(cache.stats().evictions).toBeGreaterThan(20);
    expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
  }, 30_000);

  test("two processes filling the same block at once end with one complete block", async () => {
    const proxy = slowProxy("together");
    try {
      const dir = newDir();
      const via = { ...s3.options, endpoint: `http://127.0.0.1:${proxy.port}` };
      const range = { start: 2 * BLOCK + 10, end: 2 * BLOCK + 20 };
      const fillers = [spawnFiller(via, dir, range), spawnFiller(via, dir, range)];
      const outputs = await Promise.all(fillers.map(async (p) => [await p.exited, await new Response(p.stdout).text(), await new Response(p.stderr).text()] as const));
      for (const [code, out, err] of outputs) {
        expect({ code, err }).toEqual({ code: 0, err: "" });
        const lines = out.trim().split("\n");
        // Both really fetched the block at the same time (the proxy holds each answer until both asked).
        expect(JSON.parse(lines.at(-2)!)).toMatchObject({ misses: 1, fills: 1 });
        const pieces = JSON.parse(lines.at(-1)!) as Piece[];
        expect(await bytesOf(pieces)).toEqual(SOURCE.subarray(range.start, range.end + 1));
      }
      const files = await blockFiles(dir);
      expect(files.length).toBe(1);
      expect(await Bun.file(files[0]!.path).bytes()).toEqual(SOURCE.subarray(2 * BLOCK, 3 * BLOCK));
      expect(await readdir(join(dir, "tmp"))).toEqual([]);
    } finally {
      proxy.stop(true);
    }
  }, 30_000);

  test("a filler killed mid-block (kill -9) leaves no block visible; the next one fills it", async () => {
    const proxy = slowProxy("stall");
    try {
      const dir = newDir();
      const via = { ...s3.options, endpoint: `http://127.0.0.1:${proxy.port}`, requestTimeoutMs: 60_000 };
      const filler = spawnFiller(via, dir, { start: 7 * BLOCK, end: 7 * BLOCK + 99 });
      const deadline = Date.now() + 15_000;
      // Wait until the filler has written part of the block to its temporary file.
      for (;;) {
        const temps = await readdir(join(dir, "tmp")).catch(() => [] as string[]);
        const sizes = await Promise.all(temps.map((t) => stat(join(dir, "tmp", t)).then((s) => s.size)));
        if (sizes.some((s) => s > 0)) break;
        if (Date.now() > deadline) throw new Error(`the filler never started writing: ${await new Response(filler.stderr).text()}`);
        await Bun.sleep(20);
      }
      filler.kill("SIGKILL");
      await filler.exited;
      expect(await blockFiles(dir)).toEqual([]); // the half block is not under any block name
      const cache = new BlockCache({ dir, maxBytes: 64 * BLOCK, blockSize: BLOCK, store, staleTempMs: 0 });
      await cache.init(); // sweeps the dead filler's temporary file
      expect(await readdir(join(dir, "tmp"))).toEqual([]);
      const pieces = await cache.pieces(OBJECT, { start: 7 * BLOCK, end: 7 * BLOCK + 99 });
      expect(await bytesOf(pieces)).toEqual(SOURCE.subarray(7 * BLOCK, 7 * BLOCK + 100));
    } finally {
      proxy.stop(true);
    }
  }, 30_000);

  test("with the bucket down, cached blocks are still served and a miss is StorageUnavailable; then it recovers", async () => {
    const cache = new BlockCache({ dir: newDir(), maxBytes: 64 * BLOCK, blockSize: BLOCK, store });
    await cache.init();
    await cache.pieces(OBJECT, { start: 0, end: BLOCK - 1 });
    await s3.stop();
    try {
      expect(await bytesOf(await cache.pieces(OBJECT, { start: 10, end: 20 }))).toEqual(SOURCE.subarray(10, 21));
      expect(await cache.pieces(OBJECT, { start: 4 * BLOCK, end: 4 * BLOCK + 9 }).then(() => null, (e) => e)).toBeInstanceOf(StorageUnavailable);
      const streamed = await new Response(cache.stream(OBJECT, { start: 0, end: 2 * BLOCK })).arrayBuffer().then(() => null, (e) => e);
      expect(streamed).toBeInstanceOf(StorageUnavailable); // the first block came, then an error: never a short success
      expect(await blockFiles(cache.dir)).toHaveLength(1);
      expect(await readdir(join(cache.dir, "tmp"))).toEqual([]);
    } finally {
      await s3.start();
    }
    expect(await bytesOf(await cache.pieces(OBJECT, { start: 4 * BLOCK, end: 4 * BLOCK + 9 }))).toEqual(SOURCE.subarray(4 * BLOCK, 4 * BLOCK + 10));
  }, 30_000);
});

/** Sizes of every file under the cache directory: block files and temporary files of fills in flight. */
describe("the bound and blocks in use (under cache pressure)", () => {
  test("fills in flight count against CACHE_MAX_BYTES: blocks past it are served from memory, not kept; the directory never passes the bound", async () => {
    const maxBytes = 4 * BLOCK;
    const N = 10;
    // Every read's body is held open after its bytes until all N reads have come (a barrier), so
    // that every fill is in flight at once, its temporary file written: the worst moment.
    let arrived = 0;
    const all = Promise.withResolvers<void>();
    const barrierStore = new Proxy(store, {
      get: (target, name) =>
        name === "read"
          ? async (key: string, range: ReadRange, options?: ReadOptions) => {
              const body = await target.read(key, range, options);
              const bytes = new Uint8Array(await new Response(body.stream).arrayBuffer());
              if (++arrived === N) all.resolve();
              let sent = false;
              const stream = new ReadableStream<Uint8Array>({
                async pull(out) {
                  if (!sent) {
                    sent = true;
                    return out.enqueue(bytes);
                  }
                  await all.promise;
                  out.close();
                },
              });
              return { ...body, stream };
            }
          : Reflect.get(target, name),
    });
    const cache = new BlockCache({ dir: newDir(), maxBytes, blockSize: BLOCK, store: barrierStore, touchIntervalMs: 0 });
    await cache.init();
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await filesBytes(cache.dir));
        await Bun.sleep(2);
      }
    })();
    const asked = Array.from({ length: N }, (_, i) => cache.pieces(OBJECT, { start: i * BLOCK + 7, end: i * BLOCK + 5006 }));
    await all.promise;
    await Bun.sleep(150); // every fill has written its block's bytes by now
    peak = Math.max(peak, await filesBytes(cache.dir));
    const results = await Promise.all(asked);
    sampling = false;
    await sampler;
    expect(peak).toBeLessThanOrEqual(maxBytes); // before: 6 blocks at once here (temporary files were not counted)
    for (const [i, pieces] of results.entries()) {
      const want = SOURCE.subarray(i * BLOCK + 7, i * BLOCK + 5007);
      const [piece] = pieces;
      const got = piece!.bytes ? piece!.bytes.subarray(piece!.offset, piece!.offset + piece!.length) : await bytesOf(pieces);
      expect(got).toEqual(want);
    }
    expect(await filesBytes(cache.dir)).toBeLessThanOrEqual(maxBytes);
    expect(cache.stats()).toMatchObject({ fills: 4, unkept: N - 4 });
    expect(await readdir(join(cache.dir, "tmp"))).toEqual([]);
    // The bytes of a block not kept stream like any other.
    const streamed = new Uint8Array(await new Response(cache.stream(OBJECT, { start: 8 * BLOCK - 10, end: 9 * BLOCK + 10 })).arrayBuffer());
    expect(streamed).toEqual(SOURCE.subarray(8 * BLOCK - 10, 9 * BLOCK + 11));
  }, 30_000);

  test("a block handed to a response is still there when its body is read, however many fills come in between", async () => {
    // Defaults: blocks used in the last 6 s are not evicted (Bun opens a body after the handler returns).
    const maxBytes = 4 * BLOCK;
    const cache = new BlockCache({ dir: newDir(), maxBytes, blockSize: BLOCK, store });
    await cache.init();
    const server = new ObjectServer(store, cache, "proxy");
    const entity = server.entity(OBJECT.key, OBJECT.size, OBJECT.identity, Date.now());
    const ask = (start: number, end: number) => server.body(new Request("http://x/", { headers: { range: `bytes=${start}-${end}` } }), entity);
    // Four answers, one per block: each body is a slice of a block file, not read yet.
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push({ start: i * BLOCK + 100, end: i * BLOCK + 60_099, response: await ask(i * BLOCK + 100, i * BLOCK + 60_099) });
    // Other requests fill other blocks meanwhile (before: each evicted one of the four files).
    for (let i = 4; i < 10; i++) {
      const response = await ask(i * BLOCK, i * BLOCK + 999);
      expect(response.status).toBe(206);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(SOURCE.subarray(i * BLOCK, i * BLOCK + 1000));
    }
    for (const { start, end, response } of answers) {
      expect(response.status).toBe(206);
      expect(new Uint8Array(await response.arrayBuffer())).toEqual(SOURCE.subarray(start, end + 1));
    }
    expect(await filesBytes(cache.dir)).toBeLessThanOrEqual(maxBytes);
    expect(cache.stats().evictions).toBe(0);
  }, 30_000);
});

describe("ObjectServer over the cache", () => {
  test("a range over several blocks is streamed 256 KiB at a time (a slow reader holds no whole block), the exact bytes", async () => {
    const block = 1024 * 1024;
    const cache = new BlockCache({ dir: newDir(), maxBytes: 64 * block, blockSize: block, store });
    await cache.init();
    const server = new ObjectServer(store, cache, "proxy");
    const entity = server.entity(OBJECT.key, OBJECT.size, OBJECT.identity, Date.now());
    const start = 1000;
    const response = await server.body(new Request("http://x/", { headers: { range: `bytes=${start}-` } }), entity);
    expect(response.status).toBe(206);
    const chunks: Uint8Array[] = [];
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) chunks.push(chunk);
    expect(Math.max(...chunks.map((c) => c.byteLength))).toBeLessThanOrEqual(256 * 1024);
    expect(new Uint8Array(Buffer.concat(chunks))).toEqual(SOURCE.subarray(start));
  });
});
