/** Opens the database named by DATABASE_URL and applies the committed migrations. */
import { Database } from "bun:sqlite";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { drizzle, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { migrate } from "drizzle-orm/bun-sqlite/migrator";
import * as schema from "./schema.ts";

export type Db = BunSQLiteDatabase<typeof schema> & { $client: Database };

export interface DbHandle {
  db: Db;
  close(): void;
}

const MIGRATIONS = resolve(import.meta.dir, "../../drizzle");

function sqlitePath(url: string): string {
  if (url.startsWith("postgres://") || url.startsWith("postgresql://")) {
    throw new Error("PostgreSQL support is not built yet: unset DATABASE_URL to use the embedded SQLite database");
  }
  return url.startsWith("file:") ? url.slice("file:".length) : url;
}

export function openDatabase(url: string): DbHandle {
  const path = sqlitePath(url);
  if (path !== ":memory:") mkdirSync(dirname(path), { recursive: true });
  const sqlite = new Database(path, { create: true, strict: true });
  // WAL lets the streaming server read while an ingest or worker process writes.
  sqlite.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;");
  const db = drizzle({ client: sqlite, schema });
  migrate(db, { migrationsFolder: MIGRATIONS });
  return { db, close: () => sqlite.close() };
}

/**
 * A token that changes whenever the database's content may have: SQLite's data_version moves
 * with every commit by another connection (other processes included) and total_changes() with
 * every row this connection writes. Equal tokens mean an unchanged database, so anything derived
 * from it can be reused: an exact check, not a time-to-live. About 4 µs.
 */
export function changeToken(db: Db): () => string {
  // Two statements: the pragma alone is cheaper than its table-valued form in one select.
  const external = db.$client.prepare<[number], []>("PRAGMA data_version");
  const local = db.$client.prepare<[number], []>("SELECT total_changes()");
  return () => `${external.values()[0]![0]}.${local.values()[0]![0]}`;
}
