/**
 * Opens the database named by DATABASE_URL and applies that dialect's committed migrations:
 * `postgres://` / `postgresql://` → PostgreSQL through Bun's built-in client (Bun.SQL, which also
 * gives LISTEN/NOTIFY); anything else (`file:<path>`, a bare path, the default) → SQLite,
 * embedded, through bun:sqlite.
 *
 * Services get a `SpoolDb` and write one version of each query for both dialects (awaited
 * builders only). What must differ lives in small per-dialect functions side by side: the list
 * cache's freshness check (./revision.ts) and the queue's claim (src/queue/claim.ts).
 *
 * Each dialect's Drizzle modules are loaded only by a process that opens that dialect (SQLite's
 * statically, PostgreSQL's on `openPostgres`): 34 modules a SQLite process does not hold for
 * nothing (issue 15, the serving process's memory).
 */
import { Database } from "bun:sqlite";
import { SQL } from "bun";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { MIGRATIONS_DIR } from "../paths.ts";
import { drizzle as drizzleSqlite, type BunSQLiteDatabase } from "drizzle-orm/bun-sqlite";
import { migrate as migrateSqlite } from "drizzle-orm/bun-sqlite/migrator";
import type { BunSQLDatabase } from "drizzle-orm/bun-sql";
import type * as pgTables from "./schema/pg.ts";
import * as sqliteTables from "./schema/sqlite.ts";
import type { Tables } from "./schema.ts";
import { postgresRevision, sqliteRevision, type Revision } from "./revision.ts";
import { boundedClient, DEFAULT_QUERY_TIMEOUT_MS } from "./deadline.ts";
import { driverError } from "./unavailable.ts";
import { POSTGRES_URL, redactUrl, sqlitePath } from "./url.ts";
import { StartupError } from "../lib/startup.ts";

export type Dialect = "sqlite" | "postgres";

/**
 * The query builder services use, typed by the SQLite twin. On PostgreSQL it is a Bun.SQL
 * Drizzle database: services only use builders both implement, awaited (never SQLite's
 * synchronous `.run()/.all()/.get()`), on the open database's own `tables`.
 */
export type Db = BunSQLiteDatabase;

/** A video id, or "*" (everything may have changed: the listener reconnected). */
export type ChangeListener = (videoId: string) => void;

export interface SpoolDb {
  readonly dialect: Dialect;
  readonly db: Db;
  readonly tables: Tables;
  /** Changes whenever a cached list page may be stale (see ./revision.ts). */
  readonly revision: Revision;
  /**
   * Tells every other process on this database that a video changed (PostgreSQL: NOTIFY).
   * On SQLite, a no-op: one machine's processes hear it over IPC (src/cluster.ts), others by TTL.
   */
  announce(videoId: string): Promise<void>;
  /** Hears other processes' announcements (PostgreSQL: LISTEN, reconnecting by itself). */
  listen(listener: ChangeListener): Promise<void>;
  /**
   * Passing news for the other processes on this database, never stored (PostgreSQL: NOTIFY on
   * `spool_<topic>`; what is sent while a listener reconnects is lost). A no-op on SQLite. For
   * state that matters, write a row and `announce` it.
   */
  publish(topic: string, message: string): Promise<void>;
  /** Hears other processes' news on `topic` (not this process's own). */
  subscribe(topic: string, listener: (message: string) => void): Promise<void>;
  /** One round-trip, for /ready. */
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The raw clients, for the per-dialect functions only. */
  readonly sqlite?: Database;
  readonly pg?: SQL;
}

/** NOTIFY channel for video changes; the payload is `<origin> <videoId>`. */
const CHANNEL = "spool_videos";
/** Any fixed 64-bit number: serializes migrations of servers starting at the same time. */
const MIGRATION_LOCK = 7_152_050_221;

export function dialectOf(url: string): Dialect {
  return POSTGRES_URL.test(url) ? "postgres" : "sqlite";
}

export interface OpenOptions {
  /** PostgreSQL: the longest a service's query may take before it fails as unavailable (./deadline.ts). */
  queryTimeoutMs?: number;
  /** PostgreSQL: connections this process keeps (DATABASE_POOL_SIZE); LISTEN takes one more. */
  poolSize?: number;
}

export async function openDatabase(url: string, options: OpenOptions = {}): Promise<SpoolDb> {
  return dialectOf(url) === "postgres" ? openPostgres(url, options.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS, options.poolSize ?? DEFAULT_POOL_SIZE) : openSqlite(url);
}

/** DATABASE_POOL_SIZE's default: connections per process. */
export const DEFAULT_POOL_SIZE = 10;

/** How long a query waits for another process's write lock (SQLite's busy_timeout). */
const SQLITE_BUSY_MS = 5000;
/**
 * How long /ready's write check waits for it: bun:sqlite is synchronous, so the wait blocks
 * this process's event loop (every request it serves). Another process holding the lock longer
 * (a WORKERS sibling's write, a worker's claim, a CLI ingest) is no sign of a database that
 * cannot be written: that check then passes on the read alone.
 */
const SQLITE_PING_BUSY_MS = 100;

/**
 * Proves the SQLite database can be written, changing nothing: the write lock (BEGIN IMMEDIATE),
 * a write of the header's user_version to its own value, rolled back. A database file this user
 * may only read opens without complaint, answers SELECT and even BEGIN IMMEDIATE (in WAL mode),
 * and fails every write ("attempt to write a readonly database"): /ready said 200 while every
 * upload and edit was a 500. Throws what SQLite says; false when the lock was not free within
 * `busyMs` (undecided).
 */
function sqliteWritable(sqlite: Database, busyMs: number): boolean {
  // This connection's own transaction in progress: nothing to prove, and BEGIN would fail.
  if (sqlite.inTransaction) return true;
  if (busyMs !== SQLITE_BUSY_MS) sqlite.exec(`PRAGMA busy_timeout = ${busyMs}`);
  try {
    sqlite.exec("BEGIN IMMEDIATE");
    try {
      const { user_version } = sqlite.query("PRAGMA user_version").get() as { user_version: number };
      sqlite.exec(`PRAGMA user_version = ${Number(user_version)}`);
    } finally {
      sqlite.exec("ROLLBACK");
    }
    return true;
  } catch (error) {
    if ((error as { code?: unknown }).code === "SQLITE_BUSY") return false;
    throw error;
  } finally {
    if (busyMs !== SQLITE_BUSY_MS) sqlite.exec(`PRAGMA busy_timeout = ${SQLITE_BUSY_MS}`);
  }
}

function openSqlite(url: string): SpoolDb {
  const path = sqlitePath(url);
  let sqlite: Database | undefined;
  let db: BunSQLiteDatabase;
  try {
    if (path !== null) mkdirSync(dirname(path), { recursive: true });
    sqlite = new Database(path ?? ":memory:", { create: true, strict: true });
    // WAL lets the streaming server read while an ingest or worker process writes. FULL, not
    // NORMAL: with NORMAL a commit reaches the disk only at the next checkpoint, so a power loss
    // can take back minutes of commits (an accepted upload's row among them: its bytes, synced
    // before the 201, would then be an orphan the sweep deletes). FULL costs one fsync of the WAL
    // per commit (0.16 ms here); writes are few (uploads, edits, job state), reads none.
    sqlite.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = ${SQLITE_BUSY_MS}; PRAGMA foreign_keys = ON;`);
    db = drizzleSqlite({ client: sqlite });
    migrateSqlite(db, { migrationsFolder: join(MIGRATIONS_DIR, "sqlite") });
    refuseNewerSchema(sqlite.query<{ at: number | null }, []>("SELECT max(created_at) AS at FROM __drizzle_migrations").get()?.at ?? null, "sqlite", `the SQLite database ${path ?? ":memory:"}`);
    // Refused at start rather than found by the first upload (and by a worker every second).
    sqliteWritable(sqlite, SQLITE_BUSY_MS);
  } catch (error) {
    sqlite?.close();
    // One line naming the setting and the file, exit code 2, instead of SQLite's stack.
    // Drizzle's migrator wraps SQLite's error (DrizzleQueryError) with it as the cause.
    const sqliteError = (error as { cause?: unknown }).cause ?? error;
    const { code, message } = (typeof (sqliteError as { code?: unknown }).code === "string" ? sqliteError : error) as { code?: unknown; message?: unknown };
    if (typeof code !== "string" || !code.startsWith("SQLITE_") && !/^E[A-Z]+$/.test(code)) throw error;
    const uid = process.getuid?.();
    throw new StartupError(
      `DATABASE_URL: the SQLite database ${path} cannot be ${code === "SQLITE_CANTOPEN" || code.startsWith("E") ? "opened" : "written"} (${String(message)}, ${code}): give ${uid === undefined ? "the user Spool runs as" : `uid ${uid}`} read and write access to it and to its directory, or set DATABASE_URL (unset: DATA_DIR/spool.db)`,
      2,
    );
  }
  return {
    dialect: "sqlite",
    db,
    tables: sqliteTables,
    revision: sqliteRevision(sqlite),
    sqlite,
    announce: async () => {},
    listen: async () => {},
    publish: async () => {},
    subscribe: async () => {},
    ping: async () => {
      sqlite.query("SELECT 1").get();
      sqliteWritable(sqlite, SQLITE_PING_BUSY_MS);
    },
    close: async () => sqlite.close(),
  };
}

async function openPostgres(url: string, queryTimeoutMs: number, poolSize: number): Promise<SpoolDb> {
  const [{ drizzle: drizzlePg }, { migrate: migratePg }, pgTables] = await Promise.all([
    import("drizzle-orm/bun-sql"),
    import("drizzle-orm/bun-sql/migrator"),
    import("./schema/pg.ts"),
  ]);
  // Bun.SQL's own default is 10 (1.4.5); LISTEN takes one connection more.
  const client = new SQL(url, { max: poolSize });
  // Services' queries have a deadline; migrations (which may rewrite a large table) do not.
  const pg = drizzlePg({ client: boundedClient(client, queryTimeoutMs) });
  // Two servers starting at once must not both create the tables: one migrates, the other waits.
  const lock = await client.reserve().catch(async (error: unknown) => {
    await client.close({ timeout: 0 }).catch(() => {});
    throw unreachable(url, error);
  });
  let failure: { error: unknown } | undefined;
  try {
    await lock`SELECT pg_advisory_lock(${MIGRATION_LOCK})`;
    // On the locking connection itself: one more from the pool may be refused (max_connections
    // reached), and a start waiting for it while holding the lock held up every other server's.
    await migratePg(drizzlePg({ client: lock }), { migrationsFolder: join(MIGRATIONS_DIR, "pg") });
    const [applied] = (await lock`SELECT max(created_at) AS at FROM drizzle.__drizzle_migrations`) as { at: string | number | null }[];
    refuseNewerSchema(applied?.at == null ? null : Number(applied.at), "pg", `the PostgreSQL database at ${redactUrl(url)}`);
  } catch (error) {
    failure = { error };
  } finally {
    await lock`SELECT pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => {});
    lock.release();
  }
  if (failure) {
    if (failure.error instanceof StartupError) {
      await client.close({ timeout: 0 }).catch(() => {});
      throw failure.error;
    }
    // One line at start-up (too many clients, no right to create tables...), not a stack trace.
    await client.close({ timeout: 0 }).catch(() => {});
    throw unreachable(url, failure.error, "cannot prepare the tables in PostgreSQL at");
  }
  const origin = crypto.randomUUID();
  const revision = postgresRevision();
  const listeners: ChangeListener[] = [];
  let subscription: SQL.ListenSubscription | undefined;
  const topics: SQL.ListenSubscription[] = [];
  return {
    dialect: "postgres",
    db: pg as unknown as Db,
    tables: pgTables as unknown as Tables,
    revision,
    pg: client,
    async announce(videoId) {
      revision.bump();
      await client.notify(CHANNEL, `${origin} ${videoId}`);
    },
    async listen(listener) {
      listeners.push(listener);
      if (subscription) return;
      let subscribed = false;
      subscription = await client.listen(
        CHANNEL,
        (payload) => {
          const space = payload.indexOf(" ");
          // Our own announcements were acted on when they were made.
          if (payload.slice(0, space) === origin) return;
          revision.bump();
          for (const l of listeners) l(payload.slice(space + 1));
        },
        () => {
          // Notifications sent while the connection was down are lost: forget everything.
          if (subscribed) {
            revision.bump();
            for (const l of listeners) l("*");
          }
          subscribed = true;
        },
      );
    },
    async publish(topic, message) {
      await client.notify(`spool_${topic}`, `${origin} ${message}`);
    },
    async subscribe(topic, listener) {
      topics.push(
        await client.listen(`spool_${topic}`, (payload) => {
          const space = payload.indexOf(" ");
          if (payload.slice(0, space) !== origin) listener(payload.slice(space + 1));
        }),
      );
    },
    ping: async () => void (await client`SELECT 1`),
    async close() {
      await subscription?.unlisten().catch(() => {});
      for (const topic of topics) await topic.unlisten().catch(() => {});
      await client.close({ timeout: 1 });
    },
  };
}

/**
 * The first connection failed (refused, unknown host, wrong password, no such database): one
 * line naming DATABASE_URL and where it points, instead of Bun's bare "PostgresError: Failed to
 * connect", which says neither. The password is left out, from the reason too.
 */
/**
 * Drizzle's migrator applies the migrations newer than the database's last one and says nothing
 * of a database whose last one is newer than any it knows: a newer Spool's, started on by an
 * older one (a rollback). Its tables may have changed under the queries of this one (a column it
 * does not fill, a state it does not know), so it is refused at start with what to do instead.
 */
function refuseNewerSchema(applied: number | null, dialect: "sqlite" | "pg", what: string): void {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, dialect, "meta", "_journal.json"), "utf8")) as { entries: { when: number }[] };
  const known = Math.max(...journal.entries.map((entry) => entry.when));
  if (applied === null || !(applied > known)) return;
  const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
  throw new StartupError(
    `DATABASE_URL: ${what} was migrated by a newer Spool (its schema is of ${day(applied)}, this Spool's of ${day(known)}): run that Spool or a newer one on it, or restore the database from before the upgrade`,
    2,
  );
}

function unreachable(url: string, error: unknown, what = "cannot connect to PostgreSQL at"): StartupError {
  const parsed = URL.parse(url);
  const socket = parsed?.searchParams.get("host");
  const where = parsed?.hostname ? `${parsed.hostname}:${parsed.port || 5432}` : socket ? `${socket} (socket)` : redactUrl(url);
  error = driverError(error);
  const { message, code } = error as { message?: unknown; code?: unknown };
  let reason = [message, code].filter((part) => typeof part === "string" && part !== "").join(", ") || String(error);
  // Bun's messages do not quote the URL today; should one, the password still stays out.
  if (parsed?.password) {
    let decoded = parsed.password;
    try {
      decoded = decodeURIComponent(parsed.password);
    } catch {
      // a stray %: only the form as written can appear
    }
    for (const form of [parsed.password, decoded]) reason = reason.replaceAll(form, "***");
  }
  return new StartupError(`DATABASE_URL: ${what} ${where} (${reason})`);
}

/** The PostgreSQL Drizzle database and tables behind a SpoolDb (for per-dialect functions). */
export function postgresOf(handle: SpoolDb): { db: BunSQLDatabase; tables: typeof pgTables } {
  return { db: handle.db as unknown as BunSQLDatabase, tables: handle.tables as unknown as typeof pgTables };
}
