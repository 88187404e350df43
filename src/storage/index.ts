/**
 * The storage layer's configuration and construction: STORAGE picks the ObjectStore (local disk
 * under DATA_DIR, or an S3-compatible bucket); with S3 a BlockCache under CACHE_DIR serves hot
 * bytes from local disk. See object-store.ts for the key layout, block-cache.ts for the cache.
 */
import { join, resolve } from "node:path";
import type { EnvValues } from "../env.ts";
import { ConfigError } from "../lib/config-error.ts";
import { BlockCache } from "./block-cache.ts";
import { LocalStore } from "./local-store.ts";
import type { ObjectStore } from "./object-store.ts";
import { S3Store, type S3StoreOptions } from "./s3-store.ts";

export { BlockCache, type CachedObject, type Piece } from "./block-cache.ts";
export { ObjectNotFound, StorageUnavailable, videoKeys, type ObjectStore } from "./object-store.ts";

export const STORAGE_KINDS = ["local", "s3"] as const;
export const S3_DELIVERIES = ["proxy", "redirect"] as const;

export interface StorageConfig {
  /** STORAGE: where media objects live. */
  kind: (typeof STORAGE_KINDS)[number];
  /** S3_*: the bucket, when kind is "s3". */
  s3?: S3StoreOptions;
  /** S3_DELIVERY: Spool reads ranges from the bucket (`proxy`) or sends a 302 to a presigned URL (`redirect`). */
  delivery: (typeof S3_DELIVERIES)[number];
  /** CACHE_DIR (default DATA_DIR/cache) and CACHE_MAX_BYTES: the read-through block cache. */
  cacheDir: string;
  cacheMaxBytes: number;
}

/** Seconds a presigned URL of S3_DELIVERY=redirect stays valid: long enough to start, short enough not to be shared. */
export const REDIRECT_EXPIRES_IN = 300;

/** The defaults: today's behaviour, everything on local disk under DATA_DIR. */
export function defaultStorageConfig(dataDir: string): StorageConfig {
  return { kind: "local", delivery: "proxy", cacheDir: join(dataDir, "cache"), cacheMaxBytes: 10 * 1024 ** 3 };
}

export function createObjectStore(dataDir: string, config: StorageConfig = defaultStorageConfig(dataDir)): ObjectStore {
  if (config.kind === "local") return new LocalStore(dataDir);
  if (!config.s3?.bucket) throw new Error("STORAGE=s3 needs S3_BUCKET");
  return new S3Store(config.s3);
}

/** The read-through cache for a store in a bucket; null for local disk (its files are served directly). Call `init()` before use. */
export function createBlockCache(store: ObjectStore, config: StorageConfig): BlockCache | null {
  if (store.localPath("videos/x/source") !== null) return null;
  return new BlockCache({ dir: config.cacheDir, maxBytes: config.cacheMaxBytes, store });
}

/** StorageConfig from the checked environment (src/env.ts declares the variables). */
export function storageFromEnv(e: EnvValues, dataDir: string): StorageConfig {
  if (e.STORAGE === "s3" && !e.S3_BUCKET) throw new ConfigError("S3_BUCKET must be set when STORAGE=s3");
  const s3 = {
    bucket: e.S3_BUCKET ?? "",
    ...(e.S3_ENDPOINT ? { endpoint: e.S3_ENDPOINT } : {}),
    ...(e.S3_REGION ? { region: e.S3_REGION } : {}),
    ...(e.S3_ACCESS_KEY_ID ? { accessKeyId: e.S3_ACCESS_KEY_ID } : {}),
    ...(e.S3_SECRET_ACCESS_KEY ? { secretAccessKey: e.S3_SECRET_ACCESS_KEY } : {}),
    ...(e.S3_SESSION_TOKEN ? { sessionToken: e.S3_SESSION_TOKEN } : {}),
  };
  return {
    kind: e.STORAGE as StorageConfig["kind"],
    ...(e.STORAGE === "s3" ? { s3 } : {}),
    delivery: e.S3_DELIVERY as StorageConfig["delivery"],
    cacheDir: resolve(e.CACHE_DIR ?? join(dataDir, "cache")),
    cacheMaxBytes: e.CACHE_MAX_BYTES!,
  };
}
