/**
 * Both dialects behave the same as the application sees them, on real databases with their
 * committed migrations applied: sizes past 2^31 (a 5 GB file) and up to 2^53, times with
 * milliseconds, text ids, the list's order and cursors, and the same indexes in the database
 * as in the schema (the migrations did not drift from it either); upgrades of databases older
 * Spools left; and, on PostgreSQL, times compared on the database's clock.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { SQL } from "bun";
import { eq } from "drizzle-orm";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openDatabase, type SpoolDb } from "../../src/db/client.ts";
import { Storage } from "../../src/library/storage.ts";
import { VideoLibrary } from "../../src/library/videos.ts";
import { MIGRATIONS_DIR } from "../../src/paths.ts";
import { startPostgres, type TestPostgres } from "../helpers/postgres.ts";

let pg: TestPostgres;
let dir: string;
const handles: Record<"sqlite" | "postgres", SpoolDb> = {} as never;

beforeAll(async () => {
  pg = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), "spool-dialects-"));
  handles.sqlite = await openDatabase(`file:${join(dir, "spool.db")}`);
  handles.postgres = await openDatabase(await pg.createDatabase());
}, 30_000);

afterAll(async () => {
  await handles.sqlite?.close();
  await handles.postgres?.close();
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
});

const FIVE_GB = 5 * 1000 ** 3;

/** The same library operations on one dialect; what the application sees back. */
async function exercise(handle: SpoolDb) {
  const library = new VideoLibrary(handle, new Storage(dir));
  const created = new Date(Date.UTC(2026, 10, 30, 12, 0, 0, 123));
  const rows = [];
  for (let i = 0; i < 5; i++) {
    const row = await library.begin({ id: `video-${i}-0123456789ab`, originalFilename: `v${i}.mp4`, title: `Vidéo ${i} 日本` });
    rows.push(row.id);
  }
  // Equal creation times: the list orders by (created_at, id) and pages by both.
  await handle.db.update(handle.tables.videos).set({ createdAt: created, updatedAt: created });
  const big = rows[0]!;
  await library.markProcessing(big, { contentType: "video/mp4", container: "mp4", duration: 7200.04, width: 3840, height: 2160, videoCodec: "hevc", audioCodec: "aac", bitrate: 5_555_555_555 }, { sha256: "ab".repeat(32), size: Number.MAX_SAFE_INTEGER });
  await library.markReady(big, { storagePath: `videos/${big}/source.mp4`, size: FIVE_GB, sha256: "cd".repeat(32) });
  const page1 = await library.list({ limit: 2 });
  const page2 = await library.list({ limit: 2, cursor: page1.nextCursor! });
  const page3 = await library.list({ limit: 2, cursor: page2.nextCursor! });
  const readyOnly = await library.list({ limit: 10, status: "ready" });
  const strip = <T extends { updatedAt: Date }>(r: T) => ({ ...r, updatedAt: "<now>" });
  return {
    got: strip((await library.get(big))!),
    pages: [page1, page2, page3].map((p) => p.items.map((r) => r.id)),
    last: page3.nextCursor,
    readyOnly: readyOnly.items.map((r) => r.id),
  };
}

test("a 5 GB size, a 2^53-1 source size, millisecond times and text ids come back the same from both", async () => {
  const sqlite = await exercise(handles.sqlite);
  const postgres = await exercise(handles.postgres);
  expect(sqlite.got.size).toBe(FIVE_GB);
  expect(sqlite.got.sourceSize).toBe(Number.MAX_SAFE_INTEGER);
  expect(sqlite.got.bitrate).toBe(5_555_555_555);
  expect(sqlite.got.createdAt).toEqual(new Date(Date.UTC(2026, 10, 30, 12, 0, 0, 123)));
  expect(sqlite.pages).toEqual([["video-4-0123456789ab", "video-3-0123456789ab"], ["video-2-0123456789ab", "video-1-0123456789ab"], ["video-0-0123456789ab"]]);
  expect(sqlite.last).toBeNull();
  expect(sqlite.readyOnly).toEqual(["video-0-0123456789ab"]);
  expect(postgres).toEqual(sqlite);
  expect(typeof postgres.got.size).toBe("number");
});

test("cursors at the ends of the times both databases store page the same; past them (or no Date at all), 400 on both", async () => {
  const cursor = (ms: number) => Buffer.from(`${ms}:zzzz`).toString("base64url");
  const outcome = async (handle: SpoolDb, ms: number) => {
    const library = new VideoLibrary(handle, new Storage(dir));
    return library.list({ limit: 10, cursor: cursor(ms) }).then(
      (page) => page.items.length,
      (error: { status?: number; message: string }) => `${error.status} ${error.message}`,
    );
  };
  const refused = "400 cursor is not one this API returned";
  const cases: [number, number | string][] = [
    [Date.parse("9999-12-31T23:59:59.999Z"), 5],
    [Date.parse("0001-01-01T00:00:00.000Z"), 0],
    [Date.parse("9999-12-31T23:59:59.999Z") + 1, refused],
    [Date.parse("0001-01-01T00:00:00.000Z") - 1, refused],
    // The largest Date (+275760-09-13), and a safe integer that is no Date (NaN on SQLite, a 500 on PostgreSQL).
    [8_640_000_000_000_000, refused],
    [Number.MAX_SAFE_INTEGER, refused],
  ];
  for (const [ms, expected] of cases) {
    expect({ ms, sqlite: await outcome(handles.sqlite, ms), postgres: await outcome(handles.postgres, ms) }).toEqual({ ms, sqlite: expected, postgres: expected });
  }
});

test("the migrations made the indexes the schema declares, in both databases", async () => {
  const sqliteIndexes = (handles.sqlite.sqlite!.query("SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_%'").all() as { name: string }[]).map((r) => r.name).sort();
  const pgIndexes = ((await handles.postgres.pg!`SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey'`) as { name: string }[]).map((r) => r.name).sort();
  expect(pgIndexes).toEqual(sqliteIndexes);
  expect(sqliteIndexes).toContain("jobs_active_idx");
  // The partial unique index works the same: a second active job of a kind is refused, a
  // finished one is not counted.
  for (const handle of [handles.sqlite, handles.postgres]) {
    const now = new Date();
    const job = { kind: "transcode" as const, videoId: "video-1-0123456789ab", attempts: 0, runAfter: now, createdAt: now, updatedAt: now };
    await handle.db.insert(handle.tables.jobs).values({ ...job, state: "done" });
    await handle.db.insert(handle.tables.jobs).values({ ...job, state: "queued" });
    const second = await handle.db.insert(handle.tables.jobs).values({ ...job, state: "running" }).then(
      () => "inserted",
      () => "refused",
    );
    expect(second).toBe("refused");
  }
});

test("PostgreSQL: when the LISTEN connection drops, it reconnects and drops every cache (what was announced meanwhile is lost)", async () => {
  const { startTestSpool } = await import("../helpers/spool.ts");
  const url = await pg.createDatabase();
  const spool = await startTestSpool({ databaseUrl: url, jobKinds: ["ingest"], cacheTtlMs: 600_000 });
  try {
    // Once the demo's HLS build is queued (the last write to it), it is cached for ten minutes.
    for (const end = Date.now() + 10_000; Date.now() < end && (await spool.ctx.library.get("demo"))?.hlsStatus !== "queued"; await Bun.sleep(50));
    const get = () => fetch(`${spool.url}/api/stream/demo`, { headers: { range: "bytes=0-1" } }).then((r) => r.status);
    expect(await get()).toBe(206);
    expect(spool.ctx.catalog.peek("demo")).toBeTruthy();
    const database = new URL(url).pathname.slice(1);
    const { SQL } = await import("bun");
    const admin = new SQL(pg.adminUrl, { max: 1 });
    try {
      const killed = await admin`SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = ${database} AND query ILIKE 'LISTEN%'`;
      expect(killed.length).toBe(1);
    } finally {
      await admin.close();
    }
    // While the listener is down, a change arrives unannounced (its notification would be lost).
    const other = new (await import("bun")).SQL(url, { max: 1 });
    await other`DELETE FROM videos WHERE id = 'demo'`;
    await other.close();
    let status = 206;
    for (const end = Date.now() + 15_000; Date.now() < end && status !== 404; await Bun.sleep(100)) status = await get();
    expect(status).toBe(404);
  } finally {
    await spool.stop();
  }
}, 30_000);

test("PostgreSQL: a process keeps at most DATABASE_POOL_SIZE connections (and one that listens), however many queries wait", async () => {
  const url = await pg.createDatabase();
  const database = new URL(url).pathname.slice(1);
  const small = await openDatabase(url, { poolSize: 2 });
  const admin = await openDatabase(pg.adminUrl);
  try {
    await small.listen(() => {});
    let most = 0;
    const count = async () => {
      const [row] = (await admin.pg!`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = ${database}`) as { n: number }[];
      most = Math.max(most, row!.n);
    };
    // Ten queries at once, each holding its connection for 300 ms.
    const waiting = Promise.all(Array.from({ length: 10 }, () => small.pg!`SELECT pg_sleep(0.3)`));
    for (let i = 0; i < 6; i++) {
      await count();
      await Bun.sleep(100);
    }
    await waiting;
    expect(most).toBe(3);
  } finally {
    await small.close();
    await admin.close();
  }
});

test("PostgreSQL: a database that held videos before the library migration is marked as an upgrade (it claims its media); a new one is not", async () => {
  // The committed migrations up to the one before the library's, as an older Spool left them.
  const folder = join(dir, "pg-before-library");
  await cp(join(MIGRATIONS_DIR, "pg"), folder, { recursive: true });
  const journal = JSON.parse(await readFile(join(folder, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };
  const at = journal.entries.findIndex((e) => e.tag.endsWith("_library_identity"));
  expect(at).toBeGreaterThan(0);
  journal.entries = journal.entries.slice(0, at);
  await writeFile(join(folder, "meta", "_journal.json"), JSON.stringify(journal));

  const [{ drizzle }, { migrate }] = await Promise.all([import("drizzle-orm/bun-sql"), import("drizzle-orm/bun-sql/migrator")]);
  const identities = [];
  for (const held of [true, false]) {
    const url = await pg.createDatabase();
    const client = new SQL(url, { max: 1 });
    try {
      await migrate(drizzle({ client }), { migrationsFolder: folder });
      if (held) await client`INSERT INTO videos (id, title, original_filename, storage_path, status, created_at, updated_at) VALUES ('v1', 't', 'a.mp4', 'videos/v1/source.mp4', 'ready', now(), now())`;
    } finally {
      await client.close();
    }
    // What Spool does at start: the rest of the migrations.
    const handle = await openDatabase(url);
    try {
      identities.push(await new VideoLibrary(handle, new Storage(dir)).identity());
    } finally {
      await handle.close();
    }
  }
  expect(identities.map((i) => i.hadVideos)).toEqual([true, false]);
  for (const { id } of identities) expect(id).toMatch(/^[0-9a-f]{32}$/);
  expect(identities[0]!.id).not.toBe(identities[1]!.id);
}, 30_000);

test("a database a newer Spool migrated (a migration this one does not know) is refused at start with what to do, on both; the data stays as it was", async () => {
  const newest = async (dialect: "sqlite" | "pg") =>
    Math.max(...(JSON.parse(await readFile(join(MIGRATIONS_DIR, dialect, "meta", "_journal.json"), "utf8")) as { entries: { when: number }[] }).entries.map((e) => e.when));
  // A day after this Spool's newest migration, as a later release would add.
  const later = { sqlite: (await newest("sqlite")) + 86_400_000, pg: (await newest("pg")) + 86_400_000 };
  const sqliteUrl = `file:${join(dir, "newer.db")}`;
  const pgUrl = await pg.createDatabase();
  for (const url of [sqliteUrl, pgUrl]) {
    const handle = await openDatabase(url);
    if (handle.dialect === "sqlite") handle.sqlite!.run("INSERT INTO __drizzle_migrations (hash, created_at) VALUES ('later', ?)", [later.sqlite]);
    else await handle.pg!`INSERT INTO drizzle.__drizzle_migrations (hash, created_at) VALUES ('later', ${later.pg})`;
    await handle.close();
  }
  for (const [url, day] of [[sqliteUrl, later.sqlite], [pgUrl, later.pg]] as const) {
    const refused = await openDatabase(url).then(
      async (handle) => (await handle.close(), null),
      (error: unknown) => error,
    );
    expect(refused).toMatchObject({ name: "StartupError", exitCode: 2 });
    expect((refused as Error).message).toContain(`was migrated by a newer Spool (its schema is of ${new Date(day).toISOString().slice(0, 10)}`);
    expect((refused as Error).message).toContain("restore the database from before the upgrade");
  }
  // Nothing was applied or undone: the newer migration's row is still the last.
  const sqlite = new (await import("bun:sqlite")).Database(join(dir, "newer.db"));
  expect(sqlite.query("SELECT hash FROM __drizzle_migrations ORDER BY created_at DESC LIMIT 1").get()).toEqual({ hash: "later" });
  sqlite.close();
}, 30_000);

test("a direct upload URL used before the settled marker's migration counts as settled after it (a repeat is told about its upload, not 423); an unused one stays unused", async () => {
  const usedAt = new Date(Date.UTC(2026, 11, 1, 9, 30, 0, 456));
  /** The committed migrations of `dialect` up to the one before the marker's, as an older Spool left them. */
  const before = async (dialect: "sqlite" | "pg") => {
    const folder = join(dir, `${dialect}-before-settled`);
    await cp(join(MIGRATIONS_DIR, dialect), folder, { recursive: true });
    const journal = JSON.parse(await readFile(join(folder, "meta", "_journal.json"), "utf8")) as { entries: { tag: string }[] };
    const at = journal.entries.findIndex((e) => e.tag.endsWith("_direct_upload_settled"));
    expect(at).toBeGreaterThan(0);
    journal.entries = journal.entries.slice(0, at);
    await writeFile(join(folder, "meta", "_journal.json"), JSON.stringify(journal));
    return folder;
  };
  /** One URL used before the upgrade, one not: id, video id, used_at. */
  const rows: [string, string, Date | null][] = [
    ["used-0123456789abcdefghij", "vid-used-0123456789ab", usedAt],
    ["unused-0123456789abcdefgh", "vid-unused-0123456789a", null],
  ];

  const sqlitePath = join(dir, "before-settled.db");
  const { Database } = await import("bun:sqlite");
  const [{ drizzle: sqliteDrizzle }, { migrate: sqliteMigrate }] = await Promise.all([import("drizzle-orm/bun-sqlite"), import("drizzle-orm/bun-sqlite/migrator")]);
  const old = new Database(sqlitePath);
  sqliteMigrate(sqliteDrizzle(old), { migrationsFolder: await before("sqlite") });
  for (const [id, video, at] of rows) {
    old.query("INSERT INTO direct_uploads (id, video_id, playback, created_at, expires_at, used_at) VALUES (?, ?, 'public', ?, ?, ?)").run(id, video, usedAt.getTime(), usedAt.getTime(), at?.getTime() ?? null);
  }
  old.close();

  const pgUrl = await pg.createDatabase();
  const [{ drizzle: pgDrizzle }, { migrate: pgMigrate }] = await Promise.all([import("drizzle-orm/bun-sql"), import("drizzle-orm/bun-sql/migrator")]);
  const client = new SQL(pgUrl, { max: 1 });
  try {
    await pgMigrate(pgDrizzle({ client }), { migrationsFolder: await before("pg") });
    for (const [id, video, at] of rows) {
      await client`INSERT INTO direct_uploads (id, video_id, playback, created_at, expires_at, used_at) VALUES (${id}, ${video}, 'public', ${usedAt.toISOString()}, ${usedAt.toISOString()}, ${at?.toISOString() ?? null})`;
    }
  } finally {
    await client.close();
  }

  // What Spool does at start: the rest of the migrations.
  for (const url of [`file:${sqlitePath}`, pgUrl]) {
    const handle = await openDatabase(url);
    try {
      const t = handle.tables.directUploads;
      const found = await handle.db.select({ id: t.id, usedAt: t.usedAt, settledAt: t.settledAt }).from(t).orderBy(t.id);
      expect({ url, found }).toEqual({
        url,
        found: [
          { id: "unused-0123456789abcdefgh", usedAt: null, settledAt: null },
          { id: "used-0123456789abcdefghij", usedAt, settledAt: usedAt },
        ],
      });
    } finally {
      await handle.close();
    }
  }
}, 30_000);

test("PostgreSQL: whether a direct upload creation is presumed dead is judged on the database's clock: a server ten minutes ahead does not take over a fresh one, and one behind does take over a stale one", async () => {
  const { DirectUploads, DIRECT_CREATION_STALE_MS } = await import("../../src/modules/uploads/direct.ts");
  const SKEW = 10 * 60_000;
  const here = new DirectUploads(handles.postgres);
  const ahead = new DirectUploads(handles.postgres, () => Date.now() + SKEW);
  const behind = new DirectUploads(handles.postgres, () => Date.now() - SKEW);
  const { uploadUrl } = await here.issue({ playback: "public", expiresIn: 3600 });
  const secret = uploadUrl.slice(uploadUrl.lastIndexOf("/") + 1);
  const claim = await here.consume(await here.issued(secret));
  const fresh = await here.issued(secret);
  expect(fresh.usedAt).toEqual(claim);
  expect(await ahead.stale(fresh)).toBe(false);
  expect(await ahead.release(fresh)).toBe(false);

  const t = handles.postgres.tables.directUploads;
  const old = new Date(claim.getTime() - DIRECT_CREATION_STALE_MS - 1000);
  await handles.postgres.db.update(t).set({ usedAt: old }).where(eq(t.id, fresh.id));
  const stale = await here.issued(secret);
  expect(await behind.stale(stale)).toBe(true);
  expect(await behind.release(stale)).toBe(true);
  // Given back once: the next one finds nothing to release.
  expect(await here.release(stale)).toBe(false);
  expect((await here.issued(secret)).usedAt).toBeNull();
});
