/**
 * The RAM tier on its own, against a real file: whatever it answers is exactly the file's bytes,
 * it stays within its bound however much is pushed through it, and a file changed under its
 * path is never answered from blocks of the old version.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { makeEntity, type FileEntity } from "../../src/files/entity.ts";
import { MemoryTier } from "../../src/files/memory-tier.ts";
import { hot } from "../../src/metrics/metrics.ts";
import { PROPERTY_SEED } from "../helpers/property.ts";

let dir: string;
let path: string;
let bytes: Uint8Array;
const SIZE = 1_000_003; // not a multiple of any block size

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed;
  for (let i = 0; i < n; i++) out[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  return out;
}

async function entityFor(p: string, tier: MemoryTier, etag?: string): Promise<FileEntity> {
  const info = await stat(p);
  return makeEntity(p, info.size, info.mtimeMs, { memory: tier, etag });
}

/** Reads until the tier answers (fills are in the background), at most `tries` times. */
const bytesOf = async (blob: Blob) => Buffer.from(await blob.arrayBuffer());

async function readHeld(tier: MemoryTier, entity: FileEntity, start: number, end: number, tries = 4, spanning = false): Promise<Buffer | undefined> {
  for (let i = 0; i < tries; i++) {
    const got = tier.read(entity, start, end, spanning);
    if (got) return bytesOf(got);
    await tier.settled();
  }
  return undefined;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "spool-tier-"));
  path = join(dir, "file.bin");
  bytes = randomBytes(SIZE, 7);
  await writeFile(path, bytes);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

test("every answer is exactly the file's bytes (random ranges, several block sizes)", async () => {
  for (const blockSize of [4096, 64 * 1024, 256 * 1024]) {
    const tier = new MemoryTier({ maxBytes: 512 * 1024, blockSize, headBytes: 128 * 1024, turnoverMs: 0 });
    const entity = await entityFor(path, tier);
    const ranges = fc.sample(
      fc.tuple(fc.integer({ min: 0, max: SIZE - 1 }), fc.integer({ min: 1, max: 300 * 1024 })).map(([start, length]) => ({ start, end: Math.min(SIZE - 1, start + length - 1) })),
      { numRuns: 300, seed: 15 },
    );
    let answered = 0;
    for (const r of ranges) {
      const got = await readHeld(tier, entity, r.start, r.end, 3, r.start % 2 === 0);
      if (got) {
        answered++;
        expect(got.length).toBe(r.end - r.start + 1);
        expect(Buffer.from(got).equals(Buffer.from(bytes.subarray(r.start, r.end + 1)))).toBe(true);
      }
      expect(tier.bytes).toBeLessThanOrEqual(tier.maxBytes);
    }
    // Asked three times each, most ranges that fit the bound end up answered from memory.
    expect(answered).toBeGreaterThan(0);
  }
});

test("property: read() is undefined or the exact bytes, and the bound holds", async () => {
  const tier = new MemoryTier({ maxBytes: 256 * 1024, blockSize: 16 * 1024, headBytes: 32 * 1024, turnoverMs: 0 });
  const entity = makeEntity(path, SIZE, 0, { memory: tier });
  await fc.assert(
    fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: SIZE - 1 }), fc.integer({ min: 1, max: 64 * 1024 })), { minLength: 1, maxLength: 40 }), async (asks) => {
      for (const [start, length] of asks) {
        const end = Math.min(SIZE - 1, start + length - 1);
        const got = tier.read(entity, start, end, length % 2 === 0);
        if (got) expect((await bytesOf(got)).equals(Buffer.from(bytes.subarray(start, end + 1)))).toBe(true);
        if (length % 3 === 0) await tier.settled();
        expect(tier.bytes).toBeLessThanOrEqual(tier.maxBytes);
      }
    }),
    { seed: PROPERTY_SEED, numRuns: 60 },
  );
});

test("filled past its bound it stays bounded, evicts, and one sequential pass does not flush the hot set", async () => {
  const tier = new MemoryTier({ maxBytes: 256 * 1024, blockSize: 16 * 1024, headBytes: 16 * 1024, turnoverMs: 0, overlapBytes: 0 });
  const entity = await entityFor(path, tier);
  const hotBlocks = [5, 9, 20, 33];
  for (let round = 0; round < 8; round++) {
    for (const b of hotBlocks) tier.read(entity, b * 16384 + 10, b * 16384 + 100);
    await tier.settled();
  }
  const evictionsBefore = hot.memoryEvictions;
  // A sequential download of the whole file in 16 KiB steps, each block asked for once.
  for (let at = 0; at < SIZE; at += 16384) tier.read(entity, at, Math.min(SIZE - 1, at + 16383));
  await tier.settled();
  // Blocks asked for twice fill the tier; then newcomers asked for more often than those (but
  // less than the hot ones) are admitted in their place: the bound bites, the hot set stays.
  for (let pass = 0; pass < 2; pass++) {
    for (let b = 20; b < 40; b++) tier.read(entity, b * 16384, b * 16384 + 100);
    await tier.settled();
  }
  for (let pass = 0; pass < 5; pass++) {
    for (let b = 40; b < 60; b++) tier.read(entity, b * 16384, b * 16384 + 100);
    await tier.settled();
  }
  expect(tier.bytes).toBeLessThanOrEqual(256 * 1024);
  expect(tier.bytes).toBeGreaterThan(128 * 1024);
  expect(hot.memoryEvictions).toBeGreaterThan(evictionsBefore);
  for (const b of hotBlocks) {
    const got = tier.read(entity, b * 16384 + 10, b * 16384 + 100);
    expect(got && (await bytesOf(got)).equals(Buffer.from(bytes.subarray(b * 16384 + 10, b * 16384 + 101)))).toBe(true);
  }
});

test("a file replaced under its path: the new tag never meets old blocks, and a fill that raced the change is dropped", async () => {
  const p = join(dir, "replaced.bin");
  const v1 = randomBytes(200_000, 1);
  const v2 = randomBytes(200_000, 2); // same size: only the tag (and mtime) tell them apart
  await writeFile(p, v1);
  const tier = new MemoryTier({ maxBytes: 1024 * 1024, blockSize: 64 * 1024, headBytes: 64 * 1024 });
  const old = await entityFor(p, tier, '"v1"');
  expect(Buffer.from((await readHeld(tier, old, 0, 99))!).equals(Buffer.from(v1.subarray(0, 100)))).toBe(true);

  // Replaced: the old entity (still trusted for a TTL) asks for a block not yet held; its fill
  // reads the new bytes, sees the mtime moved, and keeps nothing.
  await writeFile(p, v2);
  await utimes(p, new Date(), new Date(Date.now() + 5000));
  expect(tier.read(old, 150_000, 150_010)).toBeUndefined();
  tier.read(old, 150_000, 150_010);
  await tier.settled();
  expect(tier.read(old, 150_000, 150_010)).toBeUndefined();

  const fresh = await entityFor(p, tier, '"v2"');
  expect(fresh.memoryKey).not.toBe(old.memoryKey);
  const got = await readHeld(tier, fresh, 0, 99);
  expect(Buffer.from(got!).equals(Buffer.from(v2.subarray(0, 100)))).toBe(true);
});

test("turnover budget: a tier reads at most its size anew per turnoverMs", async () => {
  const tier = new MemoryTier({ maxBytes: 64 * 1024, blockSize: 16 * 1024, headBytes: 16 * 1024, turnoverMs: 60_000, overlapBytes: 0 });
  const entity = await entityFor(path, tier);
  for (let pass = 0; pass < 4; pass++) {
    for (let b = 0; b < 40; b++) tier.read(entity, b * 16384, b * 16384 + 10);
    await tier.settled();
  }
  // 64 KiB of budget: four blocks read in all, however often the 40 blocks were asked for.
  expect(tier.blocks).toBe(4);
  expect(tier.bytes).toBe(64 * 1024);
});

test("overlap: every answer up to overlapBytes is one slice of one block, exact", async () => {
  const tier = new MemoryTier({ maxBytes: 4 * 1024 * 1024, blockSize: 64 * 1024, overlapBytes: 16 * 1024, headBytes: 0, turnoverMs: 0 });
  const entity = await entityFor(path, tier);
  // Warm every block (at most 4 fills run at once), then ask ranges of up to 16 KiB + 1 byte
  // across every boundary.
  for (let pass = 0; pass < 12; pass++) {
    for (let at = 0; at < SIZE; at += 65536) tier.read(entity, at, at);
    await tier.settled();
  }
  for (let boundary = 65536; boundary < SIZE; boundary += 65536) {
    for (const [before, length] of [[1, 2], [100, 16 * 1024 + 1], [16 * 1024, 16 * 1024], [1, 16 * 1024 + 1]] as const) {
      const start = boundary - before;
      const end = Math.min(SIZE - 1, start + length - 1);
      const got = tier.read(entity, start, end);
      expect(got).toBeDefined();
      expect((await bytesOf(got!)).equals(Buffer.from(bytes.subarray(start, end + 1)))).toBe(true);
    }
  }
  // Longer than the overlap across a boundary: only the pull streams (spanning) get it.
  expect(tier.read(entity, 65536 - 10, 65536 + 20_000)).toBeUndefined();
  const spanned = tier.read(entity, 65536 - 10, 65536 + 100_000, true);
  expect((await bytesOf(spanned!)).equals(Buffer.from(bytes.subarray(65536 - 10, 65536 + 100_001)))).toBe(true);
  expect(tier.bytes).toBeLessThanOrEqual(tier.maxBytes);
});

test("a loaded source (TierSource.load, as for a bucket object): its bytes, held without an overlap the loader leaves out, exact", async () => {
  const tier = new MemoryTier({ maxBytes: 4 * 1024 * 1024, blockSize: 64 * 1024, overlapBytes: 16 * 1024, headBytes: 0, turnoverMs: 0 });
  const loads: [number, number, number][] = [];
  // No file behind it: every byte comes from the loader, which gives no overlap past 256 KiB
  // (as the bucket's loader leaves out a disk block nobody fetched).
  const source = {
    memoryKey: 'object\0"tag"',
    path: "videos/x/source.mp4",
    size: SIZE,
    file: new Blob([]),
    mtimeMs: 0,
    load: async (start: number, end: number, least: number) => {
      loads.push([start, end, least]);
      const upTo = start < 256 * 1024 && end > 256 * 1024 ? least : end;
      return bytes.slice(start, upTo);
    },
  };
  for (let pass = 0; pass < 6; pass++) {
    for (let at = 0; at < 512 * 1024; at += 65536) tier.read(source, at, at);
    await tier.settled();
  }
  expect(loads.length).toBe(8);
  for (const [start, end, least] of loads) expect([end - start, least - start]).toEqual([Math.min(80 * 1024, SIZE - start), 64 * 1024]);
  // Inside the overlap of a block that has one: one slice. Of block 3, which has none: not
  // from that block alone; across blocks (spanning) from both, exact.
  const within = tier.read(source, 65536 - 10, 65536 + 1000);
  expect((await bytesOf(within!)).equals(Buffer.from(bytes.subarray(65536 - 10, 65536 + 1001)))).toBe(true);
  const boundary = 256 * 1024;
  expect(tier.read(source, boundary - 10, boundary + 1000)).toBeUndefined();
  const spanned = tier.read(source, boundary - 10, boundary + 1000, true);
  expect((await bytesOf(spanned!)).equals(Buffer.from(bytes.subarray(boundary - 10, boundary + 1001)))).toBe(true);
  expect(tier.read(source, boundary - 100, boundary - 1)).toBeDefined();
  // A loader that gives less than the block itself: nothing is held.
  const short = new MemoryTier({ maxBytes: 1024 * 1024, blockSize: 64 * 1024, headBytes: 64 * 1024, turnoverMs: 0 });
  const broken = { ...source, memoryKey: 'broken\0"tag"', load: async (start: number) => bytes.slice(start, start + 1000) };
  for (let i = 0; i < 3; i++) {
    expect(short.read(broken, 0, 10)).toBeUndefined();
    await short.settled();
  }
  expect(short.bytes).toBe(0);
});

/** A source whose bytes come from memory at once (no file): evictions follow reads within microtasks. */
function instantSource(key: string, size: number) {
  return {
    memoryKey: `${key}\0"tag"`,
    path: key,
    size,
    file: new Blob([]),
    mtimeMs: 0,
    load: async (start: number, end: number) => new Uint8Array(end - start),
  };
}

test("evicted blocks: one collection once the tier has stopped evicting for a second, none without evictions", async () => {
  const calls: number[] = [];
  const tier = new MemoryTier({ maxBytes: 64 * 1024, blockSize: 16 * 1024, overlapBytes: 0, headBytes: 0, turnoverMs: 0, collect: () => calls.push(performance.now()) });
  const source = instantSource("churn", 4 * 1024 * 1024);
  // Four blocks at a time fit. TinyLFU evicts a block only for one asked for more often (by 2):
  // each generation of four is asked for 3 times more than the one before.
  const evictions = hot.memoryEvictions;
  let lastAsked = 0;
  for (let b = 0; b < 20; b++) {
    const before = hot.memoryEvictions;
    lastAsked = performance.now();
    for (let i = 0; i < 2 + 3 * Math.floor(b / 4); i++) tier.read(source, b * 16384, b * 16384);
    await tier.settled();
    expect(hot.memoryEvictions - before).toBe(b < 4 ? 0 : 1);
  }
  // The last eviction came after lastAsked (its block was asked for then).
  const lastEviction = lastAsked;
  expect(hot.memoryEvictions - evictions).toBe(16);
  expect(calls).toEqual([]);
  for (let waited = 0; calls.length === 0 && waited < 10_000; waited += 50) await Bun.sleep(50);
  // One for the whole burst, and not before a second of quiet (a timer never fires early).
  expect(calls.length).toBe(1);
  expect(calls[0]!).toBeGreaterThanOrEqual(lastEviction + 1000 - 1);
  // Hits evict nothing, so they bring no collection.
  for (let i = 0; i < 100; i++) expect(tier.read(source, 19 * 16384, 19 * 16384 + 10)).toBeDefined();
  await Bun.sleep(1500);
  expect(calls.length).toBe(1);
});

/**
 * Run in a process of its own: RSS and JSC's counts in the test runner's process depend on
 * every test file before this one.
 */
const IDLE_PROCESS = `
import { MemoryTier } from ${JSON.stringify(join(import.meta.dir, "../../src/files/memory-tier.ts"))};
import { hot } from ${JSON.stringify(join(import.meta.dir, "../../src/metrics/metrics.ts"))};
const MiB = 1024 * 1024;
const tier = new MemoryTier({ maxBytes: 64 * MiB, blockSize: 256 * 1024, overlapBytes: 0, headBytes: 0, turnoverMs: 0 });
const source = { memoryKey: "idle", path: "idle", size: 64 * MiB, file: new Blob([]), mtimeMs: 0, load: async (start, end) => new Uint8Array(end - start).fill(7) };
for (let b = 0; b < 256; b++) {
  for (let i = 0; i < 2; i++) tier.read(source, b * 262144, b * 262144);
  await tier.settled();
}
const held = tier.bytes;
const full = process.memoryUsage().rss;
tier.clear();
let after = full;
for (let waited = 0; waited < 10_000 && (hot.memoryCollections === 0 || full - after < 32 * MiB); waited += 50) {
  await Bun.sleep(50);
  after = process.memoryUsage().rss;
}
console.log(JSON.stringify({ held, full, after, collections: hot.memoryCollections }));
`;

test("evicted blocks: their memory is given back in an idle process (the default full collection)", async () => {
  const child = Bun.spawn([process.execPath, "-e", IDLE_PROCESS], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  expect(err).toBe("");
  expect(code).toBe(0);
  const { held, full, after, collections } = JSON.parse(out) as { held: number; full: number; after: number; collections: number };
  expect(held).toBe(64 * 1024 * 1024);
  // One collection for the whole clear(), and RSS gives back at least half of the 64 MiB held
  // (with nothing else running in that process, no allocation prompts JSC's own collection).
  expect(collections).toBe(1);
  expect(full - after).toBeGreaterThan(32 * 1024 * 1024);
});
