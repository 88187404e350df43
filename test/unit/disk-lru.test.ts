/**
 * DiskLru's bound (src/lib/disk-lru.ts): room is reserved before a file is written and counted
 * until it is placed or released, so files plus temporary files never pass `maxBytes`; a file
 * used within `minAgeMs` is never evicted (a file just handed out by name stays), nor one adopted
 * while its eviction was being weighed.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DiskLru } from "../../src/lib/disk-lru.ts";

const root = await mkdtemp(join(tmpdir(), "spool-disk-lru-"));
afterAll(() => rm(root, { recursive: true, force: true }));
let dirs = 0;

async function lru(minAgeMs = 0): Promise<DiskLru> {
  const cache = new DiskLru({ dir: join(root, `d${++dirs}`), maxBytes: 100, name: /^f\d+$/, touchIntervalMs: 0, rescanIntervalMs: 60_000, minAgeMs });
  await cache.init();
  return cache;
}

/** Reserves, writes and places a file of `size` bytes named `f<n>`; false when there was no room. */
async function fill(cache: DiskLru, n: number, size: number): Promise<boolean> {
  if (!(await cache.reserve(size))) return false;
  const temp = cache.tempPath();
  await writeFile(temp, new Uint8Array(size));
  await cache.place(temp, cache.pathFor("ab", `f${n}`), size);
  return true;
}

test("reservations count before anything is written: concurrent ones never add up past the bound", async () => {
  const cache = await lru();
  const granted = await Promise.all([cache.reserve(40), cache.reserve(40), cache.reserve(40)]);
  expect(granted).toEqual([true, true, false]); // 120 > 100: the third is refused, nothing to evict
  cache.release(40);
  expect(await cache.reserve(40)).toBe(true);
  cache.release(40);
  cache.release(40);
  expect(await cache.reserve(100)).toBe(true);
  cache.release(100);
});

test("place turns a reservation into a file; later reservations evict least recently used files", async () => {
  const cache = await lru();
  expect(await fill(cache, 1, 40)).toBe(true);
  expect(await fill(cache, 2, 40)).toBe(true);
  expect(cache.bytes).toBe(80);
  await cache.use(cache.pathFor("ab", "f1")); // f1 is now the most recently used
  expect(await fill(cache, 3, 40)).toBe(true); // f2 goes
  expect(cache.evictions).toBe(1);
  expect((await readdir(join(cache.dir, "ab"))).sort()).toEqual(["f1", "f3"]);
  expect(await readdir(cache.tmpDir)).toEqual([]);
  expect(cache.bytes).toBe(80);
});

test("a file used within minAgeMs is not evicted, even when that means refusing a new one", async () => {
  const cache = await lru(60_000);
  expect(await fill(cache, 1, 60)).toBe(true);
  expect(await cache.use(cache.pathFor("ab", "f1"))).toBe(true);
  expect(await cache.reserve(60)).toBe(false);
  expect(cache.evictions).toBe(0);
  expect(await Bun.file(cache.pathFor("ab", "f1")).exists()).toBe(true);
  expect(await cache.reserve(40)).toBe(true); // what fits still fits
  cache.release(40);
});

test("a file placed while a scan reads the directory stays counted: what is on disk is what the count says", async () => {
  // Many files over many subdirectories, so that a scan takes many awaits; files placed during it
  // land in subdirectories it may already have read.
  const cache = new DiskLru({ dir: join(root, `d${++dirs}`), maxBytes: 1_000_000, name: /^f\d+$/, touchIntervalMs: 0, rescanIntervalMs: 60_000 });
  await cache.init();
  const subdirs = Array.from({ length: 16 }, (_, i) => i.toString(16).padStart(2, "0"));
  let n = 0;
  const place = async (subdir: string) => {
    expect(await cache.reserve(10)).toBe(true);
    const temp = cache.tempPath();
    await writeFile(temp, new Uint8Array(10));
    await cache.place(temp, cache.pathFor(subdir, `f${++n}`), 10);
  };
  for (const subdir of subdirs) for (let i = 0; i < 8; i++) await place(subdir);
  const onDisk = async () => {
    let bytes = 0;
    for (const subdir of subdirs) bytes += (await readdir(join(cache.dir, subdir)).catch(() => [] as string[])).length * 10;
    return bytes;
  };
  for (let round = 0; round < 20; round++) {
    const scanning = cache.scan();
    // Placed while the scan awaits its reads, one per subdirectory: some of them were read already.
    await Promise.all(subdirs.map((subdir) => place(subdir)));
    await scanning;
    expect({ round, counted: cache.bytes }).toEqual({ round, counted: await onDisk() });
  }
});

test("a file adopted while its eviction is being weighed stays, adopted and on disk", async () => {
  const cache = await lru(50);
  const f1 = cache.pathFor("ab", "f1");
  expect(await fill(cache, 1, 60)).toBe(true);
  await Bun.sleep(80); // past minAgeMs, by this process's clock and by the file's mtime
  let adopted = false;
  cache.busy = (path) => {
    // The owner's say is asked just before the file's mtime is: another request of this process
    // finds the file on disk then and adopts it (a fresh entry, used now).
    if (path === f1 && !adopted) {
      adopted = true;
      cache.adopt(f1, 60);
    }
    return false;
  };
  expect(await cache.reserve(60)).toBe(false); // no room: the only file is in use
  expect(adopted).toBe(true);
  expect({ evictions: cache.evictions, known: cache.has(f1), onDisk: await Bun.file(f1).exists() }).toEqual({ evictions: 0, known: true, onDisk: true });
});

test("a directory filled under a larger bound is brought within this one at start, least recently used out first", async () => {
  const dir = join(root, `d${++dirs}`);
  const big = new DiskLru({ dir, maxBytes: 1000, name: /^f\d+$/, touchIntervalMs: 0, rescanIntervalMs: 60_000 });
  await big.init();
  for (let n = 1; n <= 5; n++) expect(await fill(big, n, 40)).toBe(true);
  await Bun.sleep(20); // a use time after every file's
  await big.use(big.pathFor("ab", "f1"));
  const small = new DiskLru({ dir, maxBytes: 100, name: /^f\d+$/, touchIntervalMs: 0, rescanIntervalMs: 60_000 });
  await small.init();
  expect(small.bytes).toBeLessThanOrEqual(100);
  expect((await readdir(join(dir, "ab"))).length * 40).toBe(small.bytes);
  // f1 was used last: it stays.
  expect(await readdir(join(dir, "ab"))).toContain("f1");
});
