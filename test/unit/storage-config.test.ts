import { describe, expect, test } from "bun:test";
import { join, resolve } from "node:path";
import { ConfigError, loadConfig } from "../../src/load-config.ts";
import { createBlockCache, createObjectStore } from "../../src/storage/index.ts";
import { LocalStore } from "../../src/storage/local-store.ts";
import { S3Store } from "../../src/storage/s3-store.ts";

describe("storage configuration", () => {
  test("defaults: local disk under DATA_DIR, a cache under DATA_DIR/cache", () => {
    const { storage, dataDir } = loadConfig({ DATA_DIR: "/srv/spool" });
    expect(storage).toEqual({ kind: "local", delivery: "proxy", cacheDir: join(dataDir, "cache"), cacheMaxBytes: 10 * 1024 ** 3 });
    const store = createObjectStore(dataDir, storage);
    expect(store).toBeInstanceOf(LocalStore);
    expect(store.localPath("videos/a/source.mp4")).toBe("/srv/spool/videos/a/source.mp4");
    expect(createBlockCache(store, storage!)).toBeNull();
  });

  test("STORAGE=s3 with Bun's standard variables", () => {
    const { storage, dataDir } = loadConfig({
      STORAGE: "s3",
      S3_ENDPOINT: "http://minio:9000",
      S3_BUCKET: "spool",
      S3_ACCESS_KEY_ID: "id",
      S3_SECRET_ACCESS_KEY: "secret",
      S3_DELIVERY: "redirect",
      CACHE_DIR: "./somewhere",
      CACHE_MAX_BYTES: String(64 * 1024 ** 2),
    });
    expect(storage).toEqual({
      kind: "s3",
      s3: { bucket: "spool", endpoint: "http://minio:9000", accessKeyId: "id", secretAccessKey: "secret" },
      delivery: "redirect",
      cacheDir: resolve("./somewhere"),
      cacheMaxBytes: 64 * 1024 ** 2,
    });
    const store = createObjectStore(dataDir, storage);
    expect(store).toBeInstanceOf(S3Store);
    expect(store.localPath("videos/a/source.mp4")).toBeNull();
    expect(createBlockCache(store, storage!)?.maxBytes).toBe(64 * 1024 ** 2);
  });

  test.each([
    [{ STORAGE: "s3" }, "S3_BUCKET must be set when STORAGE=s3"],
    [{ STORAGE: "gcs" }, 'STORAGE must be one of local, s3, got "gcs"'],
    [{ S3_DELIVERY: "cdn" }, 'S3_DELIVERY must be one of proxy, redirect, got "cdn"'],
    [{ CACHE_MAX_BYTES: "1000" }, 'CACHE_MAX_BYTES must be an integer >= 8388608, got "1000"'],
    [{ S3_SECRET_ACCESS_KEY: " hidden " }, "S3_SECRET_ACCESS_KEY must not begin or end with whitespace (a space, tab or newline), got 8 characters"],
  ])("%p → %s", (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});
