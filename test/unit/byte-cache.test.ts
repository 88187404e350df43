import { describe, expect, test } from "bun:test";
import { ByteCache } from "../../src/files/byte-cache.ts";

describe("ByteCache", () => {
  test("evicts the least recently used to stay within its bound", () => {
    const cache = new ByteCache<string>(1000);
    cache.set("a", "A", 400);
    cache.set("b", "B", 400);
    expect(cache.get("a")).toBe("A"); // a is now younger than b
    cache.set("c", "C", 400);
    expect(cache.get("b")).toBeUndefined();
    expect(cache.get("a")).toBe("A");
    expect(cache.get("c")).toBe("C");
    expect(cache.bytes).toBeLessThanOrEqual(1000);
  });

  test("charges each entry its key and bookkeeping, so many tiny values cannot exceed the bound", () => {
    const cache = new ByteCache<number>(10_000);
    const longKey = (i: number) => `${"k".repeat(400)}${i}`;
    for (let i = 0; i < 1000; i++) cache.set(longKey(i), i, 1);
    // Each entry costs its value (1) + 2 bytes per key character + overhead: far more than 1.
    expect(cache.bytes).toBeLessThanOrEqual(10_000);
    expect(cache.size).toBeLessThan(15);
    expect(cache.get(longKey(999))).toBe(999);
  });

  test("a value larger than the bound is not stored and evicts nothing", () => {
    const cache = new ByteCache<string>(1000);
    cache.set("a", "A", 10);
    cache.set("huge", "H", 2000);
    expect(cache.get("huge")).toBeUndefined();
    expect(cache.get("a")).toBe("A");
    expect(cache.size).toBe(1);
  });

  test("replacing a key releases its old cost; forget drops a prefix", () => {
    const cache = new ByteCache<string>(10_000);
    cache.set("v1\0x", "old", 500);
    const once = cache.bytes;
    cache.set("v1\0x", "new", 500);
    expect(cache.bytes).toBe(once);
    cache.set("v1\0y", "y", 10);
    cache.set("v2\0x", "z", 10);
    cache.forget("v1\0");
    expect(cache.size).toBe(1);
    expect(cache.get("v2\0x")).toBe("z");
  });
});
