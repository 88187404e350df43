/** Starts a real Spool on an ephemeral loopback port with its own temporary DATA_DIR. */
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config.ts";
import { configureLogging, type LogLevel } from "../../src/lib/log.ts";
import { startSpool, type RunningSpool } from "../../src/server.ts";
import { afterAll } from "bun:test";
import type { StorageConfig } from "../../src/storage/index.ts";
import { atEnd } from "./at-end.ts";
import { startPostgres, type TestPostgres } from "./postgres.ts";
import { startS3rver, type S3rver } from "./s3.ts";

/**
 * `SPOOL_TEST_DATABASE=postgres` runs every test server on PostgreSQL (scripts/test-all.sh runs
 * the integration suite once per dialect): a database of its own per DATA_DIR, so a server
 * restarted on the same DATA_DIR finds its library again.
 */
export const TEST_DIALECT = process.env.SPOOL_TEST_DATABASE === "postgres" ? "postgres" : "sqlite";
let postgres: Promise<TestPostgres> | undefined;
const databases = new Map<string, Promise<string>>();

/** The database URL a test server on `dataDir` gets: SQLite beside it, or a new PostgreSQL database per directory. */
export async function databaseFor(dataDir: string): Promise<string> {
  if (TEST_DIALECT === "sqlite") return `file:${join(dataDir, "spool.db")}`;
  let url = databases.get(dataDir);
  if (!url) {
    // One throwaway cluster for the run's servers, stopped after the last test file. A server
    // SPOOL_TEST_POSTGRES_URL names is its starter's to stop (scripts/test-all.sh), databases and all.
    postgres ??= startPostgres().then((pg) => {
      if (!process.env.SPOOL_TEST_POSTGRES_URL) atEnd(() => pg.stop());
      return pg;
    });
    url = postgres.then((pg) => pg.createDatabase());
    databases.set(dataDir, url);
  }
  return url;
}

/**
 * Where test servers keep media: `local` (DATA_DIR), or `s3` with SPOOL_TEST_STORAGE=s3 or
 * inside `withTestStorage("s3", ...)` (a variant file that runs another file's cases against a
 * bucket). Each server then gets a bucket of its own on one s3rver per test process.
 */
let testStorage: "local" | "s3" = process.env.SPOOL_TEST_STORAGE === "s3" ? "s3" : "local";
let sharedS3: Promise<S3rver> | undefined;

/** Runs the test file's servers on `kind` storage from now until its afterAll. */
export function useTestStorage(kind: "local" | "s3"): void {
  const before = testStorage;
  testStorage = kind;
  afterAll(() => {
    testStorage = before;
  });
}

/** The s3rver of this test process (started on first use, stopped after the last test file). */
export function testS3(): Promise<S3rver> {
  if (!sharedS3) {
    sharedS3 = startS3rver();
    void sharedS3.then((s3) => atEnd(() => s3.stop()));
  }
  return sharedS3;
}

/** A new, empty bucket on the test s3rver; returns its storage config for a server. */
export async function testBucketStorage(dataDir: string, delivery: "proxy" | "redirect" = "proxy"): Promise<StorageConfig> {
  const s3 = await testS3();
  const bucket = `t${crypto.randomUUID().replaceAll("-", "").slice(0, 20)}`;
  const made = await fetch(`${s3.endpoint}/${bucket}`, { method: "PUT" });
  if (!made.ok) throw new Error(`s3rver refused to create bucket ${bucket}: ${made.status} ${await made.text()}`);
  return { kind: "s3", s3: { ...s3.options, bucket, requestTimeoutMs: 3000 }, delivery, cacheDir: join(dataDir, "cache"), cacheMaxBytes: 256 * 1024 * 1024 };
}

/** The API key and signing secret every test server uses (tests that need others pass their own). */
export const TEST_API_KEY = "spool_test_key_0123456789abcdefghijklmnopqrstuv";
export const TEST_SIGNING_SECRET = "test-signing-secret-0123456789abcdefghijklmnop";
/** `Authorization` for the management API of a test server. */
export const AUTH = { authorization: `Bearer ${TEST_API_KEY}` } as const;

export interface TestSpool extends RunningSpool {
  dataDir: string;
  staticDir: string;
  config: Config;
}

export async function startTestSpool(overrides: Partial<Config> = {}): Promise<TestSpool> {
  const root = await mkdtemp(join(tmpdir(), "spool-test-"));
  const dataDir = overrides.dataDir ?? join(root, "data");
  const staticDir = overrides.staticDir ?? join(root, "static");
  await mkdir(staticDir, { recursive: true });
  const config: Config = {
    port: 0,
    host: "127.0.0.1",
    dataDir,
    staticDir,
    databaseUrl: await databaseFor(dataDir),
    ...(testStorage === "s3" && !overrides.storage ? { storage: await testBucketStorage(dataDir) } : {}),
    maxUploadBytes: 64 * 1024 * 1024,
    seedDemo: true,
    cacheTtlMs: 1000,
    // The RAM tier is on, as in production; SPOOL_TEST_MEMORY_CACHE_BYTES=0 runs a suite with it
    // off (the tier must never change a byte or a header: test/integration/memory-tier.test.ts).
    memoryCacheBytes: Number(process.env.SPOOL_TEST_MEMORY_CACHE_BYTES ?? 64 * 1024 * 1024),
    // Clips are kept as files once asked for, as in production (test/integration/clip-store.test.ts
    // compares them with streamed ones); SPOOL_TEST_CLIP_CACHE_BYTES=0 streams every clip.
    clipCacheBytes: Number(process.env.SPOOL_TEST_CLIP_CACHE_BYTES ?? 256 * 1024 * 1024),
    workers: 1,
    production: false,
    apiKey: TEST_API_KEY,
    signingSecret: TEST_SIGNING_SECRET,
    // Tests make many changes from one address; test/integration/operations.test.ts sets a limit.
    mutationRateLimit: 0,
    ...overrides,
  };
  const spool = await startSpool(config);
  return {
    ...spool,
    dataDir,
    staticDir,
    config,
    async stop() {
      await spool.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/**
 * Runs `body` with Spool's log lines captured (JSON objects), then restores the tests' logging.
 */
/**
 * Two machines sharing a database (SPOOL_TEST_DATABASE's) and a bucket: a server that takes
 * uploads and runs no worker (TRANSCODE_IN_SERVER=0), and a worker node with its own DATA_DIR
 * and block cache that runs ingest jobs, one attempt each (an outage must not spend attempts:
 * a failed one would fail the video). Both under `root`.
 */
export async function serverAndWorker(root: string, overrides: Partial<Config> = {}): Promise<{ server: TestSpool; worker: TestSpool }> {
  const storage = await testBucketStorage(join(root, "server"));
  const databaseUrl = await databaseFor(join(root, "shared"));
  const server = await startTestSpool({ dataDir: join(root, "server"), databaseUrl, storage, seedDemo: false, ...overrides, transcode: { inServer: false } });
  const worker = await startTestSpool({ dataDir: join(root, "worker"), databaseUrl, storage: { ...storage, cacheDir: join(root, "worker", "cache") }, seedDemo: false, ...overrides, jobKinds: ["ingest"], transcode: { maxAttempts: 1, retryBaseMs: 200 } });
  return { server, worker };
}

export async function withCapturedLogs<T>(body: (lines: () => Record<string, unknown>[]) => Promise<T>): Promise<T> {
  const captured: Record<string, unknown>[] = [];
  configureLogging("info", "json", { write: (line: string) => void captured.push(JSON.parse(line) as Record<string, unknown>) });
  try {
    return await body(() => captured);
  } finally {
    configureLogging((process.env.LOG_LEVEL as LogLevel | undefined) ?? "warn", "json");
  }
}
