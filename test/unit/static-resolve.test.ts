/** The static resolver's cache bounds, the stat ETag and the file cache's reuse: local disk, no server. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtemp, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileCache } from "../../src/files/cache.ts";
import { statEtag } from "../../src/files/entity.ts";
import { MAX_RAW_PATH, StaticRoot } from "../../src/modules/static/resolve.ts";

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "spool-static-"));
  await writeFile(join(root, "a.txt"), "a");
});
afterAll(() => rm(root, { recursive: true, force: true }));

describe("StaticRoot's cache of resolutions stays bounded under a flood of misses", () => {
  test("a raw path past MAX_RAW_PATH is refused before it is decoded or cached", async () => {
    const resolver = new StaticRoot(root, 60_000);
    expect(await resolver.resolve("a".repeat(MAX_RAW_PATH + 1))).toBeUndefined();
    expect(await resolver.resolve(`${"a".repeat(15_000)}1`)).toBeUndefined();
    expect(resolver.cacheSize).toEqual({ entries: 0, bytes: 0 });
    // Up to the bound a miss is cached like any other.
    expect(await resolver.resolve("b".repeat(MAX_RAW_PATH))).toBeUndefined();
    expect(resolver.cacheSize.entries).toBe(1);
  });

  test("distinct long misses are held up to maxBytes, not maxEntries of them", async () => {
    const maxBytes = 64 * 1024;
    const resolver = new StaticRoot(root, 60_000, { maxBytes });
    for (let n = 0; n < 1000; n++) await resolver.resolve(`${"a".repeat(4000)}${n}`);
    expect(resolver.cacheSize.bytes).toBeLessThanOrEqual(maxBytes);
    expect(resolver.cacheSize.entries).toBeLessThanOrEqual(Math.ceil(maxBytes / 4000));
    // Still a cache: the file resolves, and the newest miss is held.
    expect((await resolver.resolve("a.txt"))?.name).toBe("a.txt");
  });

  test("expired entries are swept, not kept until the entry bound", async () => {
    const resolver = new StaticRoot(root, 20);
    for (let n = 0; n < 100; n++) await resolver.resolve(`missing-${n}`);
    expect(resolver.cacheSize.entries).toBe(100);
    await Bun.sleep(40);
    await resolver.resolve("a.txt");
    expect(resolver.cacheSize).toEqual({ entries: 1, bytes: resolver.cacheSize.bytes });
    expect(resolver.cacheSize.bytes).toBeLessThan(200);
  });
});

describe("statEtag", () => {
  const base = { ino: 1234, ctimeMs: 1_700_000_000_123.4567 };
  const tag = statEtag(10, 1_700_000_000_123.4567, base);

  test("strong, in the hex-hex form, and the same for the same stat (so across restarts)", () => {
    expect(tag).toMatch(/^"[0-9a-f]+-[0-9a-f]{16}"$/);
    expect(statEtag(10, 1_700_000_000_123.4567, { ...base })).toBe(tag);
  });

  test.each([
    ["a rewrite in the same second (sub-second mtime)", () => statEtag(10, 1_700_000_000_523.4567, base)],
    ["a rewrite a microsecond later", () => statEtag(10, 1_700_000_000_123.4577, base)],
    ["a rewrite under a pinned mtime (ctime moves)", () => statEtag(10, 1_700_000_000_123.4567, { ...base, ctimeMs: base.ctimeMs + 5 })],
    ["a replacement by rename (another inode)", () => statEtag(10, 1_700_000_000_123.4567, { ...base, ino: 1235 })],
    ["another size", () => statEtag(11, 1_700_000_000_123.4567, base)],
  ] as [string, () => string][])("changes with %s", (_name, other) => expect(other()).not.toBe(tag));
});

describe("FileCache keeps an entity only while the file is the same", () => {
  test("a same-size rewrite in the same second gets a new entity, tag and RAM key", async () => {
    const path = join(root, "same-second.txt");
    const cache = new FileCache(10);
    await writeFile(path, "version-1\n");
    const pinned = new Date("2024-05-01T12:00:00Z");
    await utimes(path, pinned, pinned);
    const old = (await cache.lookup(path))!;
    await writeFile(path, "version-2\n");
    await utimes(path, pinned, pinned);
    await Bun.sleep(20);
    const now = (await cache.lookup(path))!;
    expect(now).not.toBe(old);
    expect(now.etag).not.toBe(old.etag);
    expect(now.memoryKey).not.toBe(old.memoryKey);
  });

  test("with a tag given in options, a changed mtime still gives a new entity (the RAM tier checks it)", async () => {
    const path = join(root, "tagged.txt");
    const cache = new FileCache(10);
    await writeFile(path, "one");
    const old = (await cache.lookup(path, { etag: '"content-hash"' }))!;
    await Bun.sleep(20);
    await writeFile(path, "one");
    const now = (await cache.lookup(path, { etag: '"content-hash"' }))!;
    expect(now.mtimeMs).toBe((await stat(path)).mtimeMs);
    expect(now.mtimeMs).not.toBe(old.mtimeMs);
  });

  test("an unchanged file keeps its entity object", async () => {
    const cache = new FileCache(10);
    const old = await cache.lookup(join(root, "a.txt"));
    await Bun.sleep(20);
    expect(await cache.lookup(join(root, "a.txt"))).toBe(old!);
  });
});
