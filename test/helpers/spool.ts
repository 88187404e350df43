/** Starts a real Spool on an ephemeral loopback port with its own temporary DATA_DIR. */
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config.ts";
import { configureLogging, type LogLevel } from "../../src/lib/log.ts";
import { startSpool, type RunningSpool } from "../../src/server.ts";

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
    databaseUrl: `file:${join(dataDir, "spool.db")}`,
    maxUploadBytes: 64 * 1024 * 1024,
    seedDemo: true,
    cacheTtlMs: 1000,
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
