/** Starts a real Spool on an ephemeral loopback port with its own temporary DATA_DIR. */
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config.ts";
import { configureLogging, type LogLevel } from "../../src/lib/log.ts";
import { startSpool, type RunningSpool } from "../../src/server.ts";
import { startPostgres, type TestPostgres } from "./postgres.ts";

/**
 * `SPOOL_TEST_DATABASE=postgres` runs every test server on PostgreSQL (scripts/test-all.sh runs
 * the integration suite once per dialect): a database of its own per DATA_DIR, so a server
 * restarted on the same DATA_DIR finds its library again.
 */
export const TEST_DIALECT = process.env.SPOOL_TEST_DATABASE === "postgres" ? "postgres" : "sqlite";
let postgres: Promise<TestPostgres> | undefined;
const databases = new Map<string, Promise<string>>();

async function databaseFor(dataDir: string): Promise<string> {
  if (TEST_DIALECT === "sqlite") return `file:${join(dataDir, "spool.db")}`;
  let url = databases.get(dataDir);
  if (!url) {
    postgres ??= startPostgres();
    url = postgres.then((pg) => pg.createDatabase());
    databases.set(dataDir, url);
  }
  return url;
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
    maxUploadBytes: 64 * 1024 * 1024,
    seedDemo: true,
    cacheTtlMs: 1000,
    // The RAM tier is on, as in production; SPOOL_TEST_MEMORY_CACHE_BYTES=0 runs a suite with it
    // off (the tier must never change a byte or a header: test/integration/memory-tier.test.ts).
    memoryCacheBytes: Number(process.env.SPOOL_TEST_MEMORY_CACHE_BYTES ?? 64 * 1024 * 1024),
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
export async function withCapturedLogs<T>(body: (lines: () => Record<string, unknown>[]) => Promise<T>): Promise<T> {
  const captured: Record<string, unknown>[] = [];
  configureLogging("info", "json", { write: (line: string) => void captured.push(JSON.parse(line) as Record<string, unknown>) });
  try {
    return await body(() => captured);
  } finally {
    configureLogging((process.env.LOG_LEVEL as LogLevel | undefined) ?? "warn", "json");
  }
}
