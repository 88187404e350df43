/**
 * The orphan sweep deletes only from a store (DATA_DIR, or a bucket) that belongs to the
 * server's database (src/library/ownership.ts): a server started with another DATABASE_URL on an
 * existing library's media deletes nothing, says why in its log, and leaves the marker alone; a
 * new library claims an empty store; an upgraded database (one that held videos before markers
 * existed) claims its unmarked store and sweeps it. Real servers, real files and buckets.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { uploadMultipart, waitUntilSettled, type VideoJson } from "../helpers/library.ts";
import { makeVideo } from "../helpers/media.ts";
import { databaseFor, startTestSpool, testBucketStorage, withCapturedLogs, type TestSpool } from "../helpers/spool.ts";
import { defaultStorageConfig, type StorageConfig } from "../../src/storage/index.ts";
import { LIBRARY_MARKER_KEY } from "../../src/library/ownership.ts";
import { videoKeys } from "../../src/storage/object-store.ts";
import { MIGRATIONS_DIR } from "../../src/paths.ts";

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots) await rm(root, { recursive: true, force: true });
});

/** A pass of the server's own orphan sweep, at a time when every file is past its grace. */
function sweepNow(spool: TestSpool): Promise<string[]> {
  return spool.orphans!.sweep(Date.now() + 2 * spool.orphans!.graceMs);
}

async function marker(spool: TestSpool): Promise<string | null> {
  const info = await spool.ctx.store.stat(LIBRARY_MARKER_KEY);
  if (!info) return null;
  return (await new Response((await spool.ctx.store.read(LIBRARY_MARKER_KEY, { start: 0, end: info.size - 1 })).stream).text()).trim();
}

const hasFiles = async (spool: TestSpool, id: string) => (await spool.ctx.store.exists(videoKeys.poster(id)));

async function upload(spool: TestSpool): Promise<VideoJson> {
  const response = await uploadMultipart(spool.url, await makeVideo({ seconds: 1, width: 160, height: 120, audio: false }), { name: "mine.mp4", type: "video/mp4" });
  expect(response.status).toBe(201);
  const video = await waitUntilSettled(spool.url, ((await response.json()) as VideoJson).id);
  expect(video.status).toBe("ready");
  return video;
}

/** A video directory or prefix with no row at all (what a crash mid-DELETE leaves). */
async function plantOrphan(spool: TestSpool, id: string): Promise<void> {
  const path = join(spool.dataDir, "orphan-poster.jpg");
  await Bun.write(path, "a poster nobody owns");
  await spool.ctx.store.putFile(videoKeys.poster(id), path);
}

/** As a database from before markers that held videos when it was upgraded, on a store with no marker yet. */
async function asUpgraded(spool: TestSpool): Promise<void> {
  await spool.ctx.library.db.update(spool.ctx.library.handle.tables.library).set({ hadVideos: true });
  await spool.ctx.store.delete(LIBRARY_MARKER_KEY);
}

/** A sweep that deletes nothing, leaves the store unclaimed and says once that it never knew `video`. */
async function expectUnclaimed(spool: TestSpool, video: string): Promise<void> {
  const logged = await withCapturedLogs(async (lines) => {
    expect(await sweepNow(spool)).toEqual([]);
    return lines().map((l) => String(l.msg));
  });
  expect(logged.filter((m) => m.includes("this database has never known") && m.includes(video))).toHaveLength(1);
  expect(await hasFiles(spool, video)).toBe(true);
  expect(await marker(spool)).toBeNull();
}

/** A sweep that claims the store for the server's library and deletes a planted orphan, and only it. */
async function expectClaimsAndSweeps(spool: TestSpool, video: string, orphan: string): Promise<void> {
  await plantOrphan(spool, orphan);
  expect(await sweepNow(spool)).toEqual([orphan]);
  expect(await marker(spool)).toBe((await spool.ctx.library.identity()).id);
  expect(await hasFiles(spool, video)).toBe(true);
}

for (const kind of ["local", "s3"] as const) {
  describe(`${kind} storage`, () => {
    async function servers() {
      const root = await mkdtemp(join(tmpdir(), "spool-owner-"));
      roots.push(root);
      const dataDir = join(root, "data");
      const storage: StorageConfig = kind === "s3" ? await testBucketStorage(dataDir) : defaultStorageConfig(dataDir);
      const start = (databaseUrl: string, seedDemo = false) => startTestSpool({ dataDir, storage, databaseUrl, seedDemo, jobKinds: ["ingest"] });
      return { start, first: await databaseFor(dataDir), second: await databaseFor(join(root, "another-database")) };
    }

    test("a new library claims its empty store; a server on another database deletes nothing of it and says why; the owner still sweeps its own orphans", async () => {
      const { start, first, second } = await servers();
      let spool = await start(first);
      let video: VideoJson;
      const { id: library } = await spool.ctx.library.identity();
      try {
        video = await upload(spool);
        expect(await sweepNow(spool)).toEqual([]);
        expect(await marker(spool)).toBe(library);
      } finally {
        await spool.stop();
      }

      // Another database (a new PostgreSQL, a typo in DATABASE_URL) on the same media.
      spool = await start(second);
      try {
        expect((await spool.ctx.library.identity()).id).not.toBe(library);
        const logged = await withCapturedLogs(async (lines) => {
          expect(await sweepNow(spool)).toEqual([]);
          return lines().map((l) => String(l.msg));
        });
        expect(logged.filter((m) => m.includes("belongs to another library"))).toHaveLength(1);
        expect(await hasFiles(spool, video.id)).toBe(true);
        expect(await marker(spool)).toBe(library);
      } finally {
        await spool.stop();
      }

      // Its own database again: what it does not know goes, its video stays.
      spool = await start(first);
      try {
        const orphan = "OOOOOOOOOOOOOOOOOOOOOO";
        await plantOrphan(spool, orphan);
        expect(await sweepNow(spool)).toEqual([orphan]);
        expect(await hasFiles(spool, video.id)).toBe(true);
        expect(await hasFiles(spool, orphan)).toBe(false);
      } finally {
        await spool.stop();
      }
    }, 60_000);

    test("media from before markers: a new database claims nothing and deletes nothing; the database that held videos when it was upgraded claims them and sweeps", async () => {
      const { start, first, second } = await servers();
      let spool = await start(first);
      let video: VideoJson;
      try {
        video = await upload(spool);
        await asUpgraded(spool);
      } finally {
        await spool.stop();
      }

      spool = await start(second);
      try {
        await expectUnclaimed(spool, video.id);
      } finally {
        await spool.stop();
      }

      spool = await start(first);
      try {
        await expectClaimsAndSweeps(spool, video.id, "PPPPPPPPPPPPPPPPPPPPPP");
      } finally {
        await spool.stop();
      }
    }, 60_000);

    test("media from before markers: another database from before markers, which only ever held the demo (a PostgreSQL tried on the same DATA_DIR), claims nothing and deletes nothing; the library's own database still does", async () => {
      const { start, first, second } = await servers();
      // Both databases from before markers: their migration found videos (the demo, at least).
      let spool = await start(first, true);
      let video: VideoJson;
      try {
        video = await upload(spool);
        await asUpgraded(spool);
      } finally {
        await spool.stop();
      }

      // The other database seeds its own demo (the same files, under the same id) into this store.
      spool = await start(second, true);
      try {
        expect((await spool.ctx.library.get("demo"))?.status).toBe("ready");
        await asUpgraded(spool);
        await expectUnclaimed(spool, video.id);
      } finally {
        await spool.stop();
      }

      spool = await start(first);
      try {
        await expectClaimsAndSweeps(spool, video.id, "QQQQQQQQQQQQQQQQQQQQQQ");
      } finally {
        await spool.stop();
      }
    }, 60_000);
  });
}

test("the SQLite migration marks a database that already held videos as an upgrade, a new one as new", async () => {
  const statement = (await readFile(join(MIGRATIONS_DIR, "sqlite", "0009_library_identity.sql"), "utf8")).split("--> statement-breakpoint")[1]!;
  const db = new Database(":memory:");
  db.exec("CREATE TABLE videos (id text primary key); CREATE TABLE library (id text primary key, had_videos integer not null, created_at integer not null)");
  db.exec(statement);
  db.exec("DELETE FROM library; INSERT INTO videos VALUES ('v');");
  db.exec(statement);
  const [row] = db.query<{ id: string; had_videos: number; created_at: number }, []>("SELECT * FROM library").all();
  expect(row!.had_videos).toBe(1);
  expect(row!.id).toMatch(/^[0-9a-f]{32}$/);
  expect(Math.abs(row!.created_at - Date.now())).toBeLessThan(60_000);
  db.exec("DELETE FROM library; DELETE FROM videos;");
  db.exec(statement);
  expect(db.query<{ had_videos: number }, []>("SELECT had_videos FROM library").get()!.had_videos).toBe(0);
});
