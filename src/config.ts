/**
 * Configuration from the environment. Every variable is optional; defaults run Spool on one
 * machine with an embedded SQLite database under DATA_DIR.
 */
import { resolve } from "node:path";
import { availableParallelism } from "node:os";

export interface Config {
  port: number;
  host: string;
  dataDir: string;
  staticDir: string;
  /** `file:<path>` / a bare path for SQLite (default `<DATA_DIR>/spool.db`). */
  databaseUrl: string;
  maxUploadBytes: number;
  seedDemo: boolean;
  /** How long file stats and library rows are trusted before being checked again. */
  cacheTtlMs: number;
  /** Processes serving the same port (SO_REUSEPORT). */
  workers: number;
  production: boolean;
}

function integer(name: string, fallback: number, min = 0): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got "${raw}"`);
  return value;
}

function flag(name: string, fallback: boolean): boolean {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  return !["0", "false", "no", "off"].includes(raw.toLowerCase());
}

export function loadConfig(): Config {
  const dataDir = resolve(process.env.DATA_DIR || "./data");
  return {
    port: integer("PORT", 3000),
    host: process.env.HOST || "0.0.0.0",
    dataDir,
    staticDir: resolve(process.env.STATIC_DIR || "./static"),
    databaseUrl: process.env.DATABASE_URL || `file:${resolve(dataDir, "spool.db")}`,
    maxUploadBytes: integer("MAX_UPLOAD_BYTES", 8 * 1024 ** 3, 1),
    seedDemo: flag("SEED_DEMO", true),
    cacheTtlMs: integer("CACHE_TTL_MS", 1000),
    // One process per core by default; PORT=0 (any free port) cannot be shared, so it means one.
    workers: process.env.PORT === "0" ? 1 : integer("WORKERS", availableParallelism(), 1),
    production: process.env.NODE_ENV === "production",
  };
}
