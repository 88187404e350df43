/**
 * Preloaded by `bun test` (bunfig.toml): servers started inside the test process log warnings
 * and errors only, so a failing test's output is not buried under a line per request. Set
 * LOG_LEVEL to see everything (e.g. LOG_LEVEL=debug bun test test/integration/stream.test.ts).
 */
import { afterAll } from "bun:test";
import { configureLogging, type LogLevel } from "../src/lib/log.ts";
import { runAtEnd } from "./helpers/at-end.ts";

configureLogging((process.env.LOG_LEVEL as LogLevel | undefined) ?? "warn", "json");

// What helpers started for the whole run (a throwaway PostgreSQL) is stopped after the last file.
afterAll(runAtEnd, { timeout: 60_000 });
