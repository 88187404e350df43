/** Starts a real Spool on an ephemeral loopback port with its own temporary DATA_DIR. */
import { mkdtemp, rm, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Config } from "../../src/config.ts";
import { startSpool, type RunningSpool } from "../../src/server.ts";

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
